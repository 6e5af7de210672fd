// A running workspace with a connected agent, and a CLI logged in to reach it: what the
// networking tests start from.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Client, Workspace, WorkspaceAgent } from "../../src/codersdk/index.js";
import { EXAMPLE_TEMPLATE } from "../../src/provisioners/index.js";
import { agentWhen } from "./agents.js";
import { pushTemplate, waitForBuild } from "./templates.js";

export async function runningWorkspace(client: Client, name: string, template = EXAMPLE_TEMPLATE): Promise<{ workspace: Workspace; agent: WorkspaceAgent }> {
  const { template: t } = await pushTemplate(client, `tpl-${name}`, template, { outsideTest: true });
  const workspace = await client.createWorkspace("me", { name, template_id: t.id });
  await waitForBuild(client, workspace.latest_build.id);
  const agent = await agentWhen(client, workspace.id, (a) => a.status === "connected" && a.lifecycle_state === "ready");
  return { workspace, agent };
}

/** Deletes the workspace (its agent stops with it) and waits for the build to end. */
export async function deleteWorkspace(client: Client, workspace: Workspace): Promise<void> {
  const b = await client.createWorkspaceBuild(workspace.id, { transition: "delete" });
  await waitForBuild(client, b.id);
}

/** A CLI config dir holding the client's session, as `coder login` leaves it; removed by the caller. */
export function loggedInConfigDir(client: Client): string {
  const dir = mkdtempSync(join(tmpdir(), "coder-cli-"));
  writeFileSync(join(dir, "url"), client.url.toString().replace(/\/$/, ""), { mode: 0o600 });
  writeFileSync(join(dir, "session"), client.sessionToken!, { mode: 0o600 });
  return dir;
}

export function removeDir(dir: string | undefined): void {
  if (dir) rmSync(dir, { recursive: true, force: true });
}
