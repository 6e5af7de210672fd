import type { Command } from "commander";
import { resolveDeploymentValues, serverOptions } from "../../codersdk/index.js";
import type { GlobalOptions } from "../session.js";

export async function run(globals: GlobalOptions, cmd: Command): Promise<void> {
  // The global --config-dir already folds in CODER_CONFIG_DIR and its default; other flags
  // override the environment only when given on the command line.
  const flags: Record<string, string | boolean | undefined> = { "config-dir": globals.configDir };
  const opts = cmd.opts() as Record<string, string | boolean | undefined>;
  for (const o of serverOptions) {
    const attr = o.flag.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
    if (cmd.getOptionValueSource(attr) === "cli") flags[o.flag] = opts[attr];
  }
  const { values, errors } = resolveDeploymentValues(flags, process.env);
  const { runServer, configErrors } = await import("../../coderd/server.js");
  const invalid = configErrors(errors);
  if (invalid) throw invalid;
  const { createLogger } = await import("../../logging/index.js");
  const logger = createLogger({ human: values.logHuman, json: values.logJson, verbose: values.verbose });

  const server = await runServer(values, logger);
  let signals = 0;
  const stop = (sig: string) => {
    if (++signals > 1) {
      logger.warn(`received ${sig} again: exiting now`);
      process.exit(1);
    }
    logger.info(`received ${sig}: shutting down gracefully (send it again to force)`);
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
}
