// Subdomain apps: CODER_WILDCARD_ACCESS_URL is a host pattern such as "*.apps.example.com" or
// "*.apps.127.0.0.1.nip.io:3000"; an app's host puts "<slug>--<agent>--<workspace>--<username>"
// where the "*" is.

export interface WildcardHost {
  /** What follows the "*", lowercased (e.g. ".apps.example.com"). */
  suffix: string;
  /** The port hosts must name, when the pattern gives one. */
  port: string | undefined;
  /** The pattern as configured, normalized. */
  pattern: string;
}

export interface AppHostLabel {
  slug: string;
  agent: string;
  workspace: string;
  username: string;
}

const PATTERN_RE = /^\*([a-z0-9_.-]*[a-z0-9])(?::(\d{1,5}))?$/;

/** Parses the setting; throws an Error saying what is wrong. "" means subdomain apps are off. */
export function parseWildcardAccessUrl(raw: string): WildcardHost | undefined {
  let text = raw.trim().toLowerCase();
  if (!text) return undefined;
  // A URL form ("https://*.example.com") is accepted too; the scheme comes from the access URL.
  text = text.replace(/^https?:\/\//, "").replace(/\/+$/, "");
  const m = PATTERN_RE.exec(text);
  if (!m) throw new Error(`"${raw}" is not a wildcard host such as *.apps.example.com (optionally with :port)`);
  const suffix = m[1]!;
  if (!suffix.includes(".") || suffix.startsWith("..") || suffix.includes("..")) {
    throw new Error(`"${raw}": the part after "*" must be a domain with at least one dot, such as .apps.example.com`);
  }
  const port = m[2];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) throw new Error(`"${raw}": port ${port} is out of range`);
  return { suffix, port, pattern: `*${suffix}${port ? `:${port}` : ""}` };
}

/**
 * The app label of a Host header that falls under the pattern ("web--main--dev--alice" for
 * "web--main--dev--alice.apps.example.com"), or undefined for any other host.
 */
export function matchAppHost(w: WildcardHost, hostHeader: string | undefined): string | undefined {
  if (!hostHeader) return undefined;
  const host = hostHeader.toLowerCase();
  const colon = host.lastIndexOf(":");
  const name = colon >= 0 && !host.includes("]") ? host.slice(0, colon) : host;
  const port = colon >= 0 && !host.includes("]") ? host.slice(colon + 1) : undefined;
  if (w.port !== undefined && port !== w.port) return undefined;
  if (!name.endsWith(w.suffix) || name.length === w.suffix.length) return undefined;
  const label = name.slice(0, -w.suffix.length);
  return label.includes(".") ? undefined : label;
}

/** Splits an app label; undefined when it does not name an app. */
export function parseAppLabel(label: string): AppHostLabel | undefined {
  const parts = label.split("--");
  if (parts.length < 4 || parts.some((p) => !p)) return undefined;
  return { slug: parts[0]!, agent: parts.slice(1, -2).join("--"), workspace: parts.at(-2)!, username: parts.at(-1)! };
}

/** The host (with the pattern's port, if any) of an app. */
export function appHost(w: WildcardHost, a: AppHostLabel): string {
  return `${a.slug}--${a.agent}--${a.workspace}--${a.username}${w.suffix}${w.port ? `:${w.port}` : ""}`.toLowerCase();
}
