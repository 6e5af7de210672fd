import type { Command } from "commander";
import { Client, isCoderSDKError } from "../../codersdk/index.js";
import { CliError } from "../errors.js";
import { ask } from "../prompt.js";
import { configDir, normalizeUrl, type GlobalOptions } from "../session.js";

interface LoginFlags {
  firstUserUsername?: string;
  firstUserEmail?: string;
  firstUserPassword?: string;
  firstUserFullName?: string;
  email?: string;
  password?: string;
}

export async function run(globals: GlobalOptions, cmd: Command, rawUrl?: string): Promise<void> {
  const f = cmd.opts() as LoginFlags;
  const dir = configDir(globals);
  const given = rawUrl ?? globals.url ?? process.env.CODER_URL ?? dir.read("url");
  if (!given) throw new CliError("Give the deployment's URL: coder login <url>");
  const url = normalizeUrl(given);
  const client = new Client(url);
  const env = process.env;

  let token: string;
  if (!(await client.hasFirstUser())) {
    process.stdout.write("Welcome to Coder! This deployment has no users yet: let's create the first (owner) account.\n");
    const username = f.firstUserUsername ?? env.CODER_FIRST_USER_USERNAME ?? (await ask("Username:", { flag: "--first-user-username" }));
    const email = f.firstUserEmail ?? env.CODER_FIRST_USER_EMAIL ?? (await ask("Email:", { flag: "--first-user-email" }));
    const name = f.firstUserFullName ?? env.CODER_FIRST_USER_FULL_NAME ?? "";
    const password =
      f.firstUserPassword ?? env.CODER_FIRST_USER_PASSWORD ?? (await ask("Password:", { secret: true, flag: "--first-user-password" }));
    await client.createFirstUser({ username, email, name, password });
    token = (await client.loginWithPassword(email, password)).session_token;
  } else if (globals.token ?? env.CODER_SESSION_TOKEN) {
    token = (globals.token ?? env.CODER_SESSION_TOKEN)!;
  } else {
    const email = f.email ?? env.CODER_EMAIL ?? (await ask("Email:", { flag: "--email" }));
    const password = f.password ?? env.CODER_PASSWORD ?? (await ask("Password:", { secret: true, flag: "--password" }));
    token = (await client.loginWithPassword(email, password)).session_token;
  }

  client.sessionToken = token;
  let me;
  try {
    me = await client.user("me");
  } catch (err) {
    if (isCoderSDKError(err, 401)) throw new CliError(`The session token was rejected: ${err.friendly()}`);
    throw err;
  }
  dir.write("url", url);
  dir.write("session", token);
  process.stdout.write(`Welcome to Coder, ${me.username}! You're authenticated.\n`);
}
