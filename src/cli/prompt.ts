// Interactive questions, only when a person is at the terminal.
import { createInterface } from "node:readline";
import { CliError } from "./errors.js";

export function interactive(): boolean {
  return Boolean(process.stdin.isTTY && process.stdout.isTTY);
}

export async function ask(question: string, opts: { secret?: boolean; flag: string }): Promise<string> {
  if (!interactive()) throw new CliError(`${opts.flag} is required when not running interactively`);
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: true });
  const out = rl as unknown as { _writeToOutput: (s: string) => void; output: NodeJS.WriteStream };
  if (opts.secret) {
    let prompted = false;
    out._writeToOutput = (s: string) => {
      if (!prompted) {
        process.stdout.write(s);
        prompted = true;
      }
    };
  }
  try {
    return await new Promise<string>((res) => rl.question(`${question} `, (a) => res(a.trim())));
  } finally {
    rl.close();
    if (opts.secret) process.stdout.write("\n");
  }
}
