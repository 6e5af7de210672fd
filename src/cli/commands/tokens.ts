import type { Command } from "commander";
import { isCoderSDKError, parseDuration, type APIKey } from "../../codersdk/index.js";
import { CliError } from "../errors.js";
import { outputFormat, render, shortTime, type Column } from "../output.js";
import { authenticatedClient, type GlobalOptions } from "../session.js";

const columns: Column<APIKey>[] = [
  { header: "ID", value: (k) => k.id },
  { header: "NAME", value: (k) => k.token_name },
  { header: "LAST USED", value: (k) => shortTime(k.last_used) },
  { header: "EXPIRES AT", value: (k) => shortTime(k.expires_at) },
  { header: "CREATED AT", value: (k) => shortTime(k.created_at) },
];

export async function create(globals: GlobalOptions, cmd: Command): Promise<void> {
  const o = cmd.opts() as { name?: string; lifetime?: string; user: string };
  let lifetimeSeconds: number | undefined;
  if (o.lifetime !== undefined) {
    const ms = parseDuration(o.lifetime);
    if (!ms || ms < 1000) throw new CliError(`--lifetime must be a duration such as 30d or 720h, not "${o.lifetime}"`);
    lifetimeSeconds = Math.floor(ms / 1000);
  }
  const res = await authenticatedClient(globals).createToken(o.user, { token_name: o.name, lifetime_seconds: lifetimeSeconds });
  process.stdout.write(`${res.key}\n`);
}

export async function list(globals: GlobalOptions, cmd: Command): Promise<void> {
  const o = cmd.opts() as { user: string; output?: string };
  const format = outputFormat(o.output);
  process.stdout.write(render(format, await authenticatedClient(globals).tokens(o.user), columns));
}

export async function remove(globals: GlobalOptions, cmd: Command, nameOrId: string): Promise<void> {
  const o = cmd.opts() as { user: string };
  const client = authenticatedClient(globals);
  let id = nameOrId;
  try {
    id = (await client.tokenByName(o.user, nameOrId)).id;
  } catch (err) {
    if (!isCoderSDKError(err, 404)) throw err;
  }
  try {
    await client.deleteAPIKey(o.user, id);
  } catch (err) {
    if (isCoderSDKError(err, 404)) throw new CliError(`No token named or with id "${nameOrId}".`);
    throw err;
  }
  process.stdout.write(`Token ${nameOrId} deleted.\n`);
}
