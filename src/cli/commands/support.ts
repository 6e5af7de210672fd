// `coder support bundle [workspace]`: a zip of diagnostics to attach to a support request (owners
// only): build info, the health report, replicas, the relay map and connection info, this CLI's
// environment, and with a workspace its build logs, agent and agent logs. A part that cannot be
// fetched is recorded as `<part>.error.txt`; the session token never goes into the bundle.
import { writeFileSync } from "node:fs";
import { arch, platform, release } from "node:os";
import { resolve } from "node:path";
import type { Command } from "commander";
import { zipSync, strToU8, type Zippable } from "fflate";
import { build } from "../../buildinfo/index.js";
import { CoderSDKError, type AgentConnectionInfo, type Client, type Workspace } from "../../codersdk/index.js";
import { describeError } from "../describe-error.js";
import { CliError } from "../errors.js";
import { confirm } from "../flags.js";
import { authenticatedClient, type GlobalOptions } from "../session.js";
import { workspaceByRef } from "../workspace-target.js";

interface BundleFlags {
  outputFile?: string;
  yes?: boolean;
}

/** What a failed part records: enough to see what was asked and what came back. */
function errorText(err: unknown): string {
  if (err instanceof CoderSDKError) {
    const lines = [`${err.method} ${err.url}`, `status: ${err.status}`, `message: ${err.response.message}`];
    if (err.response.detail) lines.push(`detail: ${err.response.detail}`);
    for (const v of err.validations) lines.push(`field ${v.field}: ${v.detail}`);
    return lines.join("\n") + "\n";
  }
  return `${describeError(err)}\n`;
}

const json = (v: unknown) => JSON.stringify(v, null, 2) + "\n";

class Bundle {
  readonly files: Record<string, string> = {};
  failures = 0;

  constructor(private readonly secrets: string[]) {}

  /** Fetches one part; a failure is written as `<part without extension>.error.txt`. */
  async add<T>(name: string, fetch: () => Promise<T>, format: (v: T) => string = json): Promise<T | undefined> {
    try {
      const value = await fetch();
      this.put(name, format(value));
      process.stderr.write(`  ${name}\n`);
      return value;
    } catch (err) {
      this.failures++;
      const errorName = `${name.replace(/\.[a-z]+$/, "")}.error.txt`;
      this.put(errorName, errorText(err));
      process.stderr.write(`  ${errorName}: ${describeError(err)}\n`);
      return undefined;
    }
  }

  private put(name: string, text: string): void {
    // Nothing the API returns should hold the caller's token; make sure of it all the same.
    for (const s of this.secrets) if (s) text = text.split(s).join("[REDACTED]");
    this.files[name] = text;
  }

  zip(): Uint8Array {
    const tree: Zippable = {};
    const mtime = new Date();
    for (const [name, text] of Object.entries(this.files)) tree[name] = [strToU8(text), { mtime }];
    return zipSync(tree, { level: 6 });
  }
}

function agentsOf(w: Workspace) {
  return w.latest_build.resources.flatMap((r) => r.agents);
}

export async function bundle(globals: GlobalOptions, cmd: Command, target?: string): Promise<void> {
  const f = cmd.opts<BundleFlags>();
  const client = authenticatedClient(globals);
  const me = await client.user("me");
  if (!me.roles.some((r) => r.name === "owner")) {
    throw new CliError(
      `coder support bundle needs the owner role: ${me.username} is not an owner of ${client.url.origin} (the health report, replicas and relays are visible to owners only). Ask an owner to run it.`,
    );
  }
  const output = resolve(f.outputFile ?? `coder-support-${Math.floor(Date.now() / 1000)}.zip`);
  await confirm(
    `This collects diagnostics of ${client.url.origin}${target ? ` and of the workspace "${target}" (its build and agent logs)` : ""} into ${output}. Continue?`,
    { yes: f.yes, action: "Writing a support bundle" },
  );

  const token = client.sessionToken ?? "";
  const b = new Bundle([token, token.split("-")[1] ?? ""]);
  process.stderr.write(`Collecting diagnostics from ${client.url.origin}...\n`);
  await b.add("cli/info.json", async () => ({
    version: build.version,
    commit: build.commit,
    os: platform(),
    os_release: release(),
    arch: arch(),
    node: process.version,
    url: client.url.origin,
    user: me.username,
    time: new Date().toISOString(),
    argv: process.argv.slice(2),
  }));
  await b.add("deployment/buildinfo.json", () => client.buildInfo());
  await b.add("deployment/health.json", () => client.debugHealth({ force: true }));
  await b.add("deployment/replicas.json", () => client.replicas());
  await b.add("network/derp-map.json", () => client.request<AgentConnectionInfo["relay_map"]>("GET", "/api/v2/derp-map"));
  await b.add("network/connection-info.json", () => client.agentConnectionInfo());
  if (target) await collectWorkspace(b, client, target);

  const zip = b.zip();
  try {
    writeFileSync(output, zip, { mode: 0o600 });
  } catch (err) {
    throw new CliError(`Cannot write the support bundle to ${output}: ${(err as Error).message}`);
  }
  const count = Object.keys(b.files).length;
  process.stderr.write(
    `Wrote ${output} (${count} files, ${(zip.length / 1024).toFixed(1)} KiB${b.failures ? `; ${b.failures} part(s) could not be collected, see the .error.txt files` : ""}).\n`,
  );
}

async function collectWorkspace(b: Bundle, client: Client, target: string): Promise<void> {
  const dot = target.indexOf(".", target.indexOf("/") + 1);
  const ref = dot < 0 ? target : target.slice(0, dot);
  const agentName = dot < 0 ? undefined : target.slice(dot + 1);
  const workspace = await b.add("workspace/workspace.json", () => workspaceByRef(client, ref));
  if (!workspace) return;
  await b.add(
    "workspace/build-logs.txt",
    () => client.workspaceBuildLogs(workspace.latest_build.id),
    (logs) => logs.map((l) => `${l.created_at} [${l.level}] ${l.stage ? `${l.stage}: ` : ""}${l.output.replace(/\n$/, "")}\n`).join(""),
  );
  const agents = agentsOf(workspace);
  const chosen = agentName === undefined ? agents[0] : agents.find((a) => a.name === agentName);
  const agent = await b.add("workspace/agent.json", async () => {
    if (!chosen) {
      const b = workspace.latest_build;
      if (agentName !== undefined) throw new Error(`the workspace has no agent "${agentName}" (it has ${agents.map((a) => a.name).join(", ") || "none"})`);
      throw new Error(`the workspace has no agent: its latest build is a ${b.transition} (${b.job.status})`);
    }
    return client.workspaceAgent(chosen.id);
  });
  if (agents.length > 1 && agentName === undefined) process.stderr.write(`  (the workspace has ${agents.length} agents; collected "${chosen!.name}": name another as ${ref}.<agent>)\n`);
  if (!agent) return;
  await b.add(
    "workspace/agent-logs.txt",
    () => client.workspaceAgentLogs(agent.id),
    (logs) => logs.map((l) => `${l.created_at} [${l.level}] ${l.source}: ${l.output.replace(/\n$/, "")}\n`).join(""),
  );
}
