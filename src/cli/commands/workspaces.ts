import type { Command } from "commander";
import { isCoderSDKError, type Client, type Template, type Workspace, type WorkspaceBuild, type WorkspaceTransition } from "../../codersdk/index.js";
import { followWorkspaceBuild, jobSucceeded } from "../build-logs.js";
import { CliError } from "../errors.js";
import { confirm, parseKeyValues, parseWorkspaceRef } from "../flags.js";
import { outputFormat, render, shortTime, type Column } from "../output.js";
import { completeParameters } from "../parameters.js";
import { ask, interactive } from "../prompt.js";
import { authenticatedClient, type GlobalOptions } from "../session.js";
import { workspaceByRef } from "../workspace-target.js";

const label = (w: Pick<Workspace, "owner_name" | "name">) => `${w.owner_name}/${w.name}`;

async function chooseTemplate(client: Client, org: string, name: string | undefined): Promise<Template> {
  if (name) {
    try {
      return await client.templateByName(org, name);
    } catch (err) {
      if (isCoderSDKError(err, 404)) throw new CliError(`No template named "${name}" in organization "${org}". List them with: coder templates list`);
      throw err;
    }
  }
  if (!interactive()) throw new CliError("--template is required when not running interactively");
  const templates = await client.templates(org);
  if (!templates.length) throw new CliError(`No templates in organization "${org}" yet: push one with coder templates push`);
  templates.forEach((t, i) => process.stdout.write(`  ${i + 1}. ${t.name}${t.display_name ? ` (${t.display_name})` : ""}${t.description ? ` - ${t.description}` : ""}\n`));
  for (;;) {
    const answer = await ask("Template (number or name):", { flag: "--template" });
    const byIndex = templates[Number(answer) - 1];
    const chosen = (Number.isInteger(Number(answer)) ? byIndex : undefined) ?? templates.find((t) => t.name === answer);
    if (chosen) return chosen;
    process.stdout.write(`"${answer}" is not one of the templates above.\n`);
  }
}

/** Streams the build's logs, then says how it ended; a build that did not succeed fails the command. */
async function runBuild(client: Client, build: WorkspaceBuild, name: string, done: string): Promise<void> {
  const ended = await followWorkspaceBuild(client, build);
  if (!jobSucceeded(ended.job)) {
    throw new CliError(`Build #${ended.build_number} (${ended.transition}) of workspace "${name}" ${ended.job.status}: ${ended.job.error ?? "no error was reported"}`);
  }
  process.stdout.write(`\n${done}\n`);
}

export async function create(globals: GlobalOptions, cmd: Command, ref: string): Promise<void> {
  const o = cmd.opts() as { template?: string; parameter?: string[]; yes?: boolean; organization: string };
  const { owner, name } = parseWorkspaceRef(ref);
  const given = parseKeyValues(o.parameter, "--parameter");
  const client = authenticatedClient(globals);
  const template = await chooseTemplate(client, o.organization, o.template);
  const versionId = template.active_version_id;
  const values = await completeParameters(await client.templateVersionParameters(versionId), given);
  await confirm(`Create workspace "${ref}" from template "${template.name}"?`, { yes: o.yes, action: "Creating a workspace" });
  const ws = await client.createWorkspace(owner, { name, template_id: template.id, template_version_id: versionId, rich_parameter_values: values });
  await runBuild(client, ws.latest_build, label(ws), `Workspace "${label(ws)}" has been created and is running.`);
}

async function transition(globals: GlobalOptions, ref: string, t: WorkspaceTransition, opts: { yes?: boolean; parameter?: string[] }): Promise<void> {
  const given = parseKeyValues(opts.parameter, "--parameter");
  const client = authenticatedClient(globals);
  const ws = await workspaceByRef(client, ref);
  const name = label(ws);
  const status = ws.latest_build.status;
  if (t === "start" && status === "running") {
    if (!given.length) {
      process.stdout.write(`Workspace "${name}" is already running.\n`);
      return;
    }
    await confirm(`Workspace "${name}" is running: restart it with the new parameter values?`, { yes: opts.yes, action: "Restarting a workspace" });
  }
  if (t === "stop") {
    if (status === "stopped") {
      process.stdout.write(`Workspace "${name}" is already stopped.\n`);
      return;
    }
    await confirm(`Stop workspace "${name}"?`, { yes: opts.yes, action: "Stopping a workspace" });
  }
  if (t === "delete") await confirm(`Delete workspace "${name}"? Its files and running processes go too.`, { yes: opts.yes, required: true, action: "Deleting a workspace" });
  const build = await client.createWorkspaceBuild(ws.id, { transition: t, rich_parameter_values: given.length ? given : undefined });
  const done = { start: `Workspace "${name}" is running.`, stop: `Workspace "${name}" is stopped.`, delete: `Workspace "${name}" has been deleted.` }[t];
  await runBuild(client, build, name, done);
}

export const start = (g: GlobalOptions, cmd: Command, ref: string) => transition(g, ref, "start", cmd.opts());
export const stop = (g: GlobalOptions, cmd: Command, ref: string) => transition(g, ref, "stop", cmd.opts());
export const remove = (g: GlobalOptions, cmd: Command, ref: string) => transition(g, ref, "delete", cmd.opts());

const listColumns: Column<Workspace>[] = [
  { header: "WORKSPACE", value: label },
  { header: "TEMPLATE", value: (w) => w.template_name },
  { header: "STATUS", value: (w) => w.latest_build.status },
  { header: "LAST BUILT", value: (w) => shortTime(w.latest_build.created_at) },
  { header: "OUTDATED", value: (w) => String(w.outdated) },
];

export async function list(globals: GlobalOptions, cmd: Command): Promise<void> {
  const o = cmd.opts() as { all?: boolean; search?: string; output?: string };
  const format = outputFormat(o.output);
  const q = o.search ?? (o.all ? "" : "owner:me");
  const res = await authenticatedClient(globals).workspaces(q, { limit: 1000 });
  if (format === "table" && !res.workspaces.length) {
    process.stderr.write("No workspaces found! Create one:\n  coder create <name> --template <template>\n");
    return;
  }
  process.stdout.write(render(format, res.workspaces, listColumns));
}

export async function show(globals: GlobalOptions, cmd: Command, ref: string): Promise<void> {
  const format = outputFormat((cmd.opts() as { output?: string }).output);
  const ws = await workspaceByRef(authenticatedClient(globals), ref);
  if (format === "json") {
    process.stdout.write(JSON.stringify(ws, null, 2) + "\n");
    return;
  }
  const b = ws.latest_build;
  const lines = [
    `Workspace:  ${label(ws)}`,
    `Template:   ${ws.template_name} (version ${b.template_version_name}${ws.outdated ? ", outdated: a newer version is active" : ""})`,
    `Status:     ${b.status}`,
    `Last build: #${b.build_number} ${b.transition} by ${b.initiator_name} at ${shortTime(b.created_at)}${b.job.error ? ` (error: ${b.job.error})` : ""}`,
  ];
  const resources = b.resources;
  if (!resources.length) lines.push("Resources:  none");
  else {
    lines.push("Resources:");
    for (const r of resources) {
      lines.push(`  ${r.type}.${r.name}`);
      for (const a of r.agents) {
        lines.push(`    agent ${a.name}  ${a.status}, ${a.lifecycle_state.replace("_", " ")}${a.directory ? `  (${a.directory})` : ""}`);
        for (const app of a.apps) {
          const target = app.url || (app.command ? `command: ${app.command}` : "");
          lines.push(`      app ${app.slug}${app.display_name ? ` "${app.display_name}"` : ""}  ${target}  [shared with: ${app.sharing_level}]`.trimEnd());
        }
      }
    }
  }
  process.stdout.write(lines.join("\n") + "\n");
}

/** `coder logs <workspace>`: the agents' logs (startup and shutdown scripts); --follow streams new lines. */
export async function logs(globals: GlobalOptions, cmd: Command, ref: string): Promise<void> {
  const o = cmd.opts() as { follow?: boolean; agent?: string };
  const client = authenticatedClient(globals);
  const ws = await workspaceByRef(client, ref);
  const agents = ws.latest_build.resources.flatMap((r) => r.agents).filter((a) => !o.agent || a.name === o.agent);
  if (agents.length === 0) throw new CliError(o.agent ? `Workspace ${label(ws)} has no agent named "${o.agent}".` : `Workspace ${label(ws)} has no agents (is it stopped?).`);
  const prefix = (name: string) => (agents.length > 1 ? `[${name}] ` : "");
  if (!o.follow) {
    for (const a of agents) for (const l of await client.workspaceAgentLogs(a.id)) process.stdout.write(`${prefix(a.name)}${l.output}\n`);
    return;
  }
  await Promise.all(
    agents.map(async (a) => {
      for await (const l of client.followWorkspaceAgentLogs(a.id)) process.stdout.write(`${prefix(a.name)}${l.output}\n`);
    }),
  );
}
