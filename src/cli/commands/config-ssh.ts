// `coder config-ssh`: a managed block in ~/.ssh/config with a Host entry per workspace (and per
// agent), each reaching the workspace through `coder ssh --stdio`, so ssh, scp, rsync and VS Code
// Remote-SSH work unmodified.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import type { Command } from "commander";
import { proxyCommand } from "../../buildinfo/index.js";
import { CliError } from "../errors.js";
import { confirm } from "../flags.js";
import { configDir, authenticatedClient, type GlobalOptions } from "../session.js";
import { removeBlock, renderBlock, upsertBlock, type SshHost } from "../ssh-config.js";

interface Options {
  sshConfigFile?: string;
  sshOption?: string[];
  sshHostPrefix: string;
  dryRun?: boolean;
  remove?: boolean;
  yes?: boolean;
}

export async function run(globals: GlobalOptions, cmd: Command): Promise<void> {
  const o = cmd.opts() as Options;
  const file = o.sshConfigFile ?? process.env.CODER_SSH_CONFIG_FILE ?? join(homedir(), ".ssh", "config");
  const before = existsSync(file) ? readFileSync(file, "utf8") : "";
  let after: string;
  let summary: string;
  try {
    if (o.remove) {
      after = removeBlock(before);
      summary = after === before ? `Nothing to remove: ${file} has no coder section.` : `Removed the coder section from ${file}.`;
    } else {
      const hosts = await workspaceHosts(globals, o.sshHostPrefix);
      // The ProxyCommand uses the session `coder login` stored, so it keeps working after this
      // shell's environment is gone.
      const dir = configDir(globals);
      if (!dir.read("url") || !dir.read("session")) throw new CliError(`config-ssh uses the session stored by \`coder login\` in ${dir.path}: log in first`);
      const proxy = [...proxyCommand, "--config-dir", dir.path, "ssh", "--stdio"];
      after = upsertBlock(before, renderBlock(hosts, proxy, o.sshOption ?? []));
      summary = `${hosts.length ? `Hosts: ${hosts.map((h) => h.alias).join(", ")}` : "No workspaces yet: run coder config-ssh again after creating one."}\nUpdated ${file}: try \`ssh ${hosts[0]?.alias ?? `${o.sshHostPrefix}<workspace>`}\`.`;
    }
  } catch (err) {
    if (err instanceof Error && !(err instanceof CliError) && /SSH config/.test(err.message)) throw new CliError(`${file}: ${err.message}`);
    throw err;
  }
  if (o.dryRun) {
    process.stdout.write(after === before ? `No changes to ${file}.\n` : `Dry run: ${file} would become:\n\n${after}`);
    return;
  }
  if (after === before) {
    process.stdout.write(`No changes to ${file}.\n`);
    return;
  }
  await confirm(`Update ${file}?`, { yes: o.yes, action: "Updating the SSH config" });
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  // Written whole, then renamed over: an interrupted run never leaves half a config.
  const tmp = `${file}.coder-${process.pid}.tmp`;
  writeFileSync(tmp, after, { mode: 0o600 });
  renameSync(tmp, file);
  process.stdout.write(`${summary}\n`);
}

async function workspaceHosts(globals: GlobalOptions, prefix: string): Promise<SshHost[]> {
  const client = authenticatedClient(globals);
  const hosts: SshHost[] = [];
  for (let offset = 0; ; ) {
    const page = await client.workspaces("owner:me", { limit: 100, offset });
    for (const w of page.workspaces) {
      const agents = w.latest_build.resources.flatMap((r) => r.agents);
      const target = `${w.owner_name}/${w.name}`;
      hosts.push({ alias: `${prefix}${w.name}`, target });
      for (const a of agents) hosts.push({ alias: `${prefix}${w.name}.${a.name}`, target: `${target}.${a.name}` });
    }
    offset += page.workspaces.length;
    if (!page.workspaces.length || offset >= page.count) break;
  }
  return hosts;
}
