// Which app a request names, and whether the caller may open it. Sharing levels: "owner" (the
// workspace's owner, and whoever RBAC lets reach the workspace, i.e. "ssh" on it), "authenticated"
// (any logged-in user), "public" (anyone). Path-based apps live on the dashboard's origin, where
// an app's scripts would act with the visitor's session: by default they are owner-only and
// closed to site owners too (CODER_DANGEROUS_ALLOW_PATH_APP_* lift that, as in Coder).
import type { User, Workspace, WorkspaceAgent, WorkspaceApp } from "../../database/index.js";
import { agentStatus } from "../agents/status.js";
import type { Ctx } from "../context.js";
import { authorize, type RbacObject, type Subject } from "../rbac/index.js";

export interface AppRef {
  username: string;
  workspace: string;
  /** Optional for path-based apps when only one agent has the slug. */
  agent?: string;
  slug: string;
}

export interface ResolvedApp {
  owner: User;
  workspace: Workspace;
  agent: WorkspaceAgent;
  app: WorkspaceApp;
  url: URL;
}

export type Access =
  | { kind: "ok"; app: ResolvedApp }
  /** Nobody is logged in and the app is not public (nor is it told whether it exists). */
  | { kind: "login" }
  | { kind: "error"; status: number; message: string; detail?: string };

const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]", "0.0.0.0"]);

const workspaceObject = (w: Workspace): RbacObject => ({ type: "workspace", id: w.id, ownerId: w.owner_id, orgId: w.organization_id });

export async function checkAppAccess(ctx: Ctx, subject: Subject | undefined, ref: AppRef, pathBased: boolean): Promise<Access> {
  const owner = await ctx.store.getUserByUsername(ref.username);
  const workspace = owner && (await ctx.store.getWorkspaceByOwnerAndName(owner.id, ref.workspace));
  if (!owner || !workspace) return subject ? { kind: "error", status: 404, message: "Workspace not found or you do not have access to it." } : { kind: "login" };

  const build = await ctx.store.getLatestWorkspaceBuild(workspace.id);
  const resources = build && build.transition === "start" ? await ctx.store.getJobResources([build.job_id]) : [];
  let agents = resources.flatMap((r) => r.agents);
  if (ref.agent !== undefined) agents = agents.filter((a) => a.name.toLowerCase() === ref.agent!.toLowerCase());
  const withApp = agents.filter((a) => a.apps.some((p) => p.slug === ref.slug));
  const agent = withApp.length === 1 ? withApp[0] : undefined;
  const app = agent?.apps.find((p) => p.slug === ref.slug);

  // An app that cannot be found counts as owner-only: only those who may reach the workspace
  // learn why it is missing.
  let level = app?.sharing_level ?? "owner";
  if (pathBased && !ctx.dangerousAllowPathAppSharing) level = "owner";
  const obj = workspaceObject(workspace);
  const bySharing = level === "public" || (level === "authenticated" && subject !== undefined);
  const byRbac = subject !== undefined && authorize(subject, "ssh", obj);
  if (byRbac && !bySharing && pathBased && subject.id !== workspace.owner_id && !ctx.dangerousAllowPathAppSiteOwnerAccess) {
    return {
      kind: "error",
      status: 403,
      message: "Path-based apps can be opened only by the workspace's owner.",
      detail: "They run on the dashboard's origin, with your session. Use a subdomain app, or set CODER_DANGEROUS_ALLOW_PATH_APP_SITE_OWNER_ACCESS.",
    };
  }
  if (!byRbac && !bySharing) {
    if (!subject) return { kind: "login" };
    if (authorize(subject, "read", obj)) return { kind: "error", status: 403, message: "You may not open this app.", detail: `Its sharing level is "${level}".` };
    return { kind: "error", status: 404, message: "Workspace not found or you do not have access to it." };
  }

  if (!app || !agent) {
    if (!build || build.transition !== "start" || resources.length === 0) {
      return { kind: "error", status: 404, message: `Workspace "${workspace.name}" is not running.`, detail: "Start it, then open the app again." };
    }
    if (ref.agent !== undefined && agents.length === 0) return { kind: "error", status: 404, message: `Workspace "${workspace.name}" has no agent "${ref.agent}".` };
    if (withApp.length > 1) {
      return {
        kind: "error",
        status: 400,
        message: `Several agents of workspace "${workspace.name}" have an app "${ref.slug}".`,
        detail: `Name the agent: /@${owner.username}/${workspace.name}.<agent>/apps/${ref.slug}/`,
      };
    }
    return { kind: "error", status: 404, message: `Workspace "${workspace.name}" has no app "${ref.slug}".` };
  }
  let url: URL;
  try {
    url = new URL(app.url);
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error("not http");
  } catch {
    return { kind: "error", status: 404, message: `App "${app.slug}" has no http(s) URL to open.`, detail: app.command ? "It is a command app: open it in a terminal." : undefined };
  }
  if (!LOOPBACK.has(url.hostname)) {
    return { kind: "error", status: 502, message: `App "${app.slug}" is not on the workspace's loopback address.`, detail: `Its URL ${app.url} must name localhost or 127.0.0.1.` };
  }
  const status = agentStatus(agent);
  if (status !== "connected") {
    return { kind: "error", status: 502, message: `The workspace agent is not connected (${status}).`, detail: "The app cannot be reached until the agent connects." };
  }
  return { kind: "ok", app: { owner, workspace, agent, app, url } };
}
