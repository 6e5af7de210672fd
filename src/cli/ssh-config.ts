// The block `coder config-ssh` manages inside ~/.ssh/config: everything between its two marker
// lines is ours and rewritten each time; everything outside is the user's and kept byte for byte.

export const BLOCK_START = "# ------------START-CODER-----------";
export const BLOCK_END = "# ------------END-CODER------------";

export interface SshHost {
  /** The Host alias, e.g. coder.dev or coder.dev.main. */
  alias: string;
  /** The argument `coder ssh --stdio` gets: <owner>/<workspace>[.<agent>]. */
  target: string;
}

/** Quotes one argument for the shell OpenSSH runs ProxyCommand with. */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

export function renderBlock(hosts: SshHost[], proxyCommand: string[], sshOptions: string[]): string {
  const lines = [
    BLOCK_START,
    "# This section is managed by coder. DO NOT EDIT.",
    "#",
    "# You should not hand-edit this section unless you are removing it, all",
    "# changes will be lost when running \"coder config-ssh\".",
    "#",
  ];
  for (const h of hosts) {
    lines.push(
      `Host ${h.alias}`,
      // The tunnel authenticates the agent (its key is pinned by the coordinator), so OpenSSH's
      // own host-key check adds nothing and would only break when a workspace is rebuilt.
      "  ConnectTimeout=0",
      "  StrictHostKeyChecking=no",
      "  UserKnownHostsFile=/dev/null",
      "  LogLevel ERROR",
      ...sshOptions.map((o) => `  ${o}`),
      `  ProxyCommand ${[...proxyCommand, h.target].map(shellQuote).join(" ")}`,
    );
  }
  lines.push(BLOCK_END);
  return lines.join("\n") + "\n";
}

function findBlock(text: string): { start: number; end: number } | undefined {
  const start = text.indexOf(BLOCK_START);
  if (start < 0) return undefined;
  const endMarker = text.indexOf(BLOCK_END, start);
  if (endMarker < 0) throw new Error(`the SSH config has "${BLOCK_START}" without "${BLOCK_END}": fix or remove that section by hand`);
  let end = endMarker + BLOCK_END.length;
  if (text[end] === "\n") end++;
  return { start, end };
}

/** The config with our block replaced (or appended when absent). */
export function upsertBlock(text: string, block: string): string {
  const found = findBlock(text);
  if (found) return text.slice(0, found.start) + block + text.slice(found.end);
  if (!text) return block;
  return text + (text.endsWith("\n") ? "\n" : "\n\n") + block;
}

/** The config without our block (and without the blank line we put before it). */
export function removeBlock(text: string): string {
  const found = findBlock(text);
  if (!found) return text;
  let start = found.start;
  if (text.slice(0, start).endsWith("\n\n")) start--;
  return text.slice(0, start) + text.slice(found.end);
}
