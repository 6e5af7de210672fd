import type { Command } from "commander";
import { CliError } from "../errors.js";
import type { GlobalOptions } from "../session.js";

/**
 * `coder agent`, as a workspace's provisioner starts it. This is the process skeleton only:
 * it checks its settings and lives until SIGTERM/SIGINT. Connecting to coderd, scripts, logs,
 * stats and the SSH server arrive with the agent itself.
 */
export async function run(_globals: GlobalOptions, _cmd: Command): Promise<void> {
  const url = process.env.CODER_AGENT_URL;
  const token = process.env.CODER_AGENT_TOKEN;
  if (!url) throw new CliError("CODER_AGENT_URL is not set: the workspace's provisioner sets it to the deployment's URL.");
  if (!token) throw new CliError("CODER_AGENT_TOKEN is not set: the workspace's provisioner sets it to the agent's token.");
  try {
    new URL(url);
  } catch {
    throw new CliError(`CODER_AGENT_URL: "${url}" is not a valid URL`);
  }
  process.stderr.write(`agent: started for ${new URL(url).origin} (pid ${process.pid})\n`);
  await new Promise<void>((resolve) => {
    const done = (sig: string) => {
      process.stderr.write(`agent: received ${sig}, exiting\n`);
      resolve();
    };
    process.once("SIGTERM", () => done("SIGTERM"));
    process.once("SIGINT", () => done("SIGINT"));
    // Keeps the event loop alive until a signal arrives.
    setInterval(() => {}, 1 << 30);
  });
  process.exit(0);
}
