import type { Command } from "commander";
import { outputFormat } from "../output.js";
import { authenticatedClient, type GlobalOptions } from "../session.js";

export async function run(globals: GlobalOptions, cmd: Command): Promise<void> {
  const client = authenticatedClient(globals);
  const me = await client.user("me");
  if (outputFormat(cmd.opts().output) === "json") {
    process.stdout.write(JSON.stringify({ url: client.url.origin, username: me.username, id: me.id }, null, 2) + "\n");
    return;
  }
  process.stdout.write(`Coder is running at ${client.url.origin}, You're authenticated as ${me.username} !\n`);
}
