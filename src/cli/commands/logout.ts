import type { Command } from "commander";
import { isCoderSDKError } from "../../codersdk/index.js";
import { CliError } from "../errors.js";
import { authenticatedClient, configDir, type GlobalOptions } from "../session.js";

export async function run(globals: GlobalOptions, _cmd: Command): Promise<void> {
  const dir = configDir(globals);
  if (!dir.read("session")) throw new CliError("You are not logged in.");
  const client = authenticatedClient(globals);
  try {
    await client.logout();
  } catch (err) {
    // An already-ended session or an unreachable server still leaves this machine logged out.
    if (!isCoderSDKError(err, 401) && !isCoderSDKError(err, 0)) throw err;
  }
  dir.remove("session");
  dir.remove("url");
  process.stdout.write("You are no longer logged in. You can log in using 'coder login <url>'.\n");
}
