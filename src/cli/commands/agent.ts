import type { Command } from "commander";
import { CliError } from "../errors.js";
import type { GlobalOptions } from "../session.js";

/** `coder agent`, as a workspace's provisioner starts it (CODER_AGENT_URL, CODER_AGENT_TOKEN). */
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
  const { createLogger } = await import("../../logging/index.js");
  const { Agent } = await import("../../agent/index.js");
  const logger = createLogger({ human: "/dev/stderr", json: "", verbose: process.env.CODER_VERBOSE === "true", name: "agent" });
  const agent = new Agent({ url, token, logger });
  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) return;
    stopping = true;
    logger.info(`received ${sig}: running the shutdown script`);
    agent.shutdown().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  logger.info({ url: new URL(url).origin }, "agent starting");
  await agent.start();
}
