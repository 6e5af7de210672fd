// The client a command uses: URL and token from flags, CODER_URL / CODER_SESSION_TOKEN, or the
// config dir written by `coder login`.
import { Client } from "../codersdk/index.js";
import { ConfigDir } from "./config-dir.js";
import { CliError } from "./errors.js";

export interface GlobalOptions {
  url?: string;
  token?: string;
  configDir: string;
}

export function configDir(g: GlobalOptions): ConfigDir {
  return new ConfigDir(g.configDir);
}

export function normalizeUrl(raw: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `https://${raw}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw new CliError(`"${raw}" is not a valid URL`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new CliError(`"${raw}" must be an http:// or https:// URL`);
  return u.toString().replace(/\/$/, "");
}

export function authenticatedClient(g: GlobalOptions): Client {
  const dir = configDir(g);
  const url = g.url ?? process.env.CODER_URL ?? dir.read("url");
  if (!url) throw new CliError("You are not logged in. Try running `coder login <url>`.");
  const token = g.token ?? process.env.CODER_SESSION_TOKEN ?? dir.read("session");
  if (!token) throw new CliError("You are not logged in. Try running `coder login <url>`.");
  return new Client(normalizeUrl(url), { sessionToken: token });
}
