// Small pieces shared by the template and workspace commands: repeatable key=value flags,
// "owner/name" references and yes/no confirmations.
import { CliError } from "./errors.js";
import { ask, interactive } from "./prompt.js";

/** For repeatable options: commander calls this with each value and the list so far. */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** "key=value" pairs (the value may contain "="); a later pair overrides an earlier one. */
export function parseKeyValues(values: string[] | undefined, flag: string): Array<{ name: string; value: string }> {
  const out = new Map<string, string>();
  for (const raw of values ?? []) {
    const eq = raw.indexOf("=");
    const name = eq < 0 ? "" : raw.slice(0, eq).trim();
    if (!name) throw new CliError(`${flag} must look like name=value, not "${raw}"`);
    out.set(name, raw.slice(eq + 1));
  }
  return [...out].map(([name, value]) => ({ name, value }));
}

/** "name" (the caller's) or "owner/name". */
export function parseWorkspaceRef(ref: string): { owner: string; name: string } {
  const parts = ref.split("/");
  if (parts.length === 1 && parts[0]) return { owner: "me", name: parts[0] };
  if (parts.length === 2 && parts[0] && parts[1]) return { owner: parts[0], name: parts[1] };
  throw new CliError(`"${ref}" is not a workspace: use <name> or <owner>/<name>`);
}

/**
 * Asks before doing something. With -y it does not ask. Without a terminal it goes ahead, unless
 * the action is destructive (`required`): then it fails and asks for -y.
 */
export async function confirm(question: string, opts: { yes?: boolean; required?: boolean; action: string }): Promise<void> {
  if (opts.yes) return;
  if (!interactive()) {
    if (opts.required) throw new CliError(`${opts.action} needs confirmation: pass -y (--yes) to go ahead without a terminal`);
    return;
  }
  const answer = (await ask(`${question} (yes/no)`, { flag: "-y" })).toLowerCase();
  if (answer !== "y" && answer !== "yes") throw new CliError("Canceled.");
}
