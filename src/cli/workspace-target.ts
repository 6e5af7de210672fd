// Naming a workspace (and one of its agents) on the command line: <name>, <owner>/<name>, and
// for commands that reach an agent, <workspace>.<agent>.
import { isCoderSDKError, type Client, type Workspace, type WorkspaceAgent } from "../codersdk/index.js";
import { CliError } from "./errors.js";
import { parseWorkspaceRef } from "./flags.js";

export async function workspaceByRef(client: Client, ref: string): Promise<Workspace> {
  const { owner, name } = parseWorkspaceRef(ref);
  try {
    return await client.workspaceByOwnerAndName(owner, name);
  } catch (err) {
    if (isCoderSDKError(err, 404)) throw new CliError(`No workspace "${ref}"${owner === "me" ? "" : ` owned by ${owner}`}. List yours with: coder list`);
    throw err;
  }
}

const agentsOf = (w: Workspace) => w.latest_build.resources.flatMap((r) => r.agents);

/** The workspace and agent that "<workspace>[.<agent>]" names; the agent may be omitted when there is one. */
export async function agentByRef(client: Client, target: string): Promise<{ workspace: Workspace; agent: WorkspaceAgent }> {
  const dot = target.indexOf(".", target.indexOf("/") + 1);
  const ref = dot < 0 ? target : target.slice(0, dot);
  const agentName = dot < 0 ? undefined : target.slice(dot + 1);
  const workspace = await workspaceByRef(client, ref);
  const agents = agentsOf(workspace);
  const b = workspace.latest_build;
  if (b.transition !== "start" || agents.length === 0) {
    if (b.transition === "start" && b.job.status !== "succeeded") throw new CliError(`Workspace "${ref}" is still being built (${b.job.status}): wait for it with coder show ${ref}`);
    throw new CliError(`Workspace "${ref}" is not running (its last build was a ${b.transition}): start it with coder start ${ref}`);
  }
  if (agentName === undefined) {
    if (agents.length > 1) throw new CliError(`Workspace "${ref}" has several agents (${agents.map((a) => a.name).join(", ")}): name one as ${ref}.<agent>`);
    return { workspace, agent: agents[0]! };
  }
  const agent = agents.find((a) => a.name === agentName);
  if (!agent) throw new CliError(`Workspace "${ref}" has no agent "${agentName}" (it has ${agents.map((a) => a.name).join(", ")})`);
  return { workspace, agent };
}

/**
 * Waits until the agent is connected (and, when its startup script blocks logins, has finished
 * starting), saying so on stderr; fails clearly when it will not get there.
 */
export async function waitForAgent(client: Client, workspace: Workspace, agent: WorkspaceAgent, quiet = false): Promise<WorkspaceAgent> {
  const usable = (a: WorkspaceAgent) =>
    a.status === "connected" && (a.startup_script_behavior !== "blocking" || !["created", "starting"].includes(a.lifecycle_state));
  if (usable(agent)) return agent;
  const say = (msg: string) => quiet || process.stderr.write(`${msg}\n`);
  let said = "";
  const abort = new AbortController();
  try {
    for await (const w of client.watchWorkspace(workspace.id, abort.signal)) {
      const a = agentsOf(w).find((x) => x.id === agent.id);
      if (!a) throw new CliError(`The agent "${agent.name}" is gone: the workspace was rebuilt or stopped`);
      if (usable(a)) return a;
      if (a.status === "timeout") throw new CliError(`The agent "${agent.name}" did not connect in time: check the workspace with coder show ${workspace.name}`);
      const now = a.status !== "connected" ? `Waiting for the agent "${a.name}" to connect (${a.status})...` : `Waiting for the agent's startup script to finish (${a.lifecycle_state})...`;
      if (now !== said) say((said = now));
    }
  } finally {
    abort.abort();
  }
  throw new CliError("The workspace watch ended before the agent was ready");
}
