// The real `coder` binary (bin/coder.js over dist/, built by `npm run build`) as a child process.
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Writable } from "node:stream";
import { onTestFinished } from "vitest";
import { nodeFlags } from "../../src/buildinfo/index.js";

export const CODER_BIN = resolve(import.meta.dirname, "../../bin/coder.js");

/** A config dir the postgres system user can reach (the suite may run as root). */
export function tempConfigDir(): string {
  const dir = mkdtempSync(join(process.env.CODER_TEST_RUN_DIR ?? tmpdir(), "coder-cfg-"));
  chmodSync(dir, 0o755);
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment without CODER_* settings that a developer's shell might carry. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("CODER_")) env[k] = v;
  return { ...env, ...extra };
}

export function runCli(args: string[], env: Record<string, string> = {}, timeoutMs = 30_000): Promise<CliResult> {
  return startCli(args, env, timeoutMs).done;
}

/**
 * A CLI run whose output can be read while it runs; `done` settles when it exits (killed after
 * timeoutMs). With `stdin`, its standard input is `input` (else it has none).
 */
export function startCli(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 30_000,
  opts: { stdin?: boolean } = {},
): { output: CliResult; done: Promise<CliResult>; input: Writable | null } {
  const output: CliResult = { code: null, stdout: "", stderr: "" };
  const child = spawn(process.execPath, [...nodeFlags, CODER_BIN, ...args], { env: cleanEnv(env), stdio: [opts.stdin ? "pipe" : "ignore", "pipe", "pipe"] });
  const done = new Promise<CliResult>((res, rej) => {
    child.stdout!.on("data", (d) => (output.stdout += d));
    child.stderr!.on("data", (d) => (output.stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", rej);
    child.on("close", (code) => {
      clearTimeout(timer);
      output.code = code;
      res(output);
    });
  });
  return { output, done, input: child.stdin };
}

export interface ServerProcess {
  url: string;
  proc: ChildProcess;
  /** Everything the server wrote so far (stdout and stderr). */
  output(): string;
  /** Sends the signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
  /** Resolves once the process has written the text. */
  waitFor(text: string): Promise<void>;
}

function waiter(proc: ChildProcess, output: () => string): (text: string) => Promise<void> {
  return (text) =>
    new Promise<void>((res, rej) => {
      if (output().includes(text)) return res();
      const check = () => {
        if (output().includes(text)) {
          proc.stdout!.off("data", check);
          proc.stderr!.off("data", check);
          res();
        }
      };
      proc.stdout!.on("data", check);
      proc.stderr!.on("data", check);
      proc.once("exit", () => (output().includes(text) ? res() : rej(new Error(`exited without writing "${text}":\n${output()}`))));
    });
}

/** Starts `coder server` and resolves once it listens (or rejects with its output when it exits first). */
export async function startServerProcess(args: string[], env: Record<string, string> = {}): Promise<ServerProcess> {
  const proc = spawn(process.execPath, [...nodeFlags, CODER_BIN, "server", "--http-address", "127.0.0.1:0", ...args], {
    env: cleanEnv(env),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const exited = new Promise<number | null>((res) => proc.on("exit", (code) => res(code)));
  const url = await new Promise<string>((res, rej) => {
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /Started HTTP listener at (http:\/\/[^\s"]+)/.exec(out);
      if (m) res(m[1]!);
    };
    proc.stdout!.on("data", onData);
    proc.stderr!.on("data", onData);
    exited.then((code) => rej(new Error(`coder server exited (${code}) before listening:\n${out}`)));
  });
  const stop = async (signal: NodeJS.Signals = "SIGTERM") => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    return exited;
  };
  onTestFinished(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill("SIGTERM");
      await exited;
    }
  });
  return { url, proc, output: () => out, stop, exited, waitFor: waiter(proc, () => out) };
}

/** Starts `coder provisioner start` and resolves once it is connected and waiting for jobs. */
export async function startProvisionerProcess(args: string[], env: Record<string, string> = {}): Promise<ServerProcess> {
  const proc = spawn(process.execPath, [...nodeFlags, CODER_BIN, "provisioner", "start", ...args], { env: cleanEnv(env), stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const exited = new Promise<number | null>((res) => proc.on("exit", (code) => res(code)));
  await new Promise<void>((res, rej) => {
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.includes("waiting for jobs")) res();
    };
    proc.stdout!.on("data", onData);
    proc.stderr!.on("data", onData);
    exited.then((code) => rej(new Error(`coder provisioner start exited (${code}) before connecting:\n${out}`)));
  });
  const stop = async (signal: NodeJS.Signals = "SIGTERM") => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    return exited;
  };
  onTestFinished(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill("SIGKILL");
      await exited;
    }
  });
  return { url: "", proc, output: () => out, stop, exited, waitFor: waiter(proc, () => out) };
}
