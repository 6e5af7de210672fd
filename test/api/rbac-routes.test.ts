// Every route × every role: the status each gets. The table is the policy, written down; a
// route added without a row fails the coverage test at the bottom.
import { randomBytes, randomUUID } from "node:crypto";
import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Client } from "../../src/codersdk/index.js";
import { packDirectory } from "../../src/archive/index.js";
import { EXAMPLE_TEMPLATE } from "../../src/provisioners/index.js";
import { createFirstUser, createUserWithRoles, DEFAULT_PASSWORD, startTestServer, type TestServer } from "../helpers/coderd.js";
import { pushTemplate, waitForBuild, writeTemplateDir } from "../helpers/templates.js";


const ROLES = ["anonymous", "member", "auditor", "template-admin", "user-admin", "owner"] as const;
type Role = (typeof ROLES)[number];

/** Objects a request acts on, made fresh for each cell of a mutating route. */
interface Fixture {
  victim: { id: string; username: string };
  victimToken: { id: string; name: string };
  otherOrg: { id: string; name: string };
  defaultOrg: string;
  /** Template archive, uploaded by the owner. */
  fileId: string;
  template: { id: string; name: string; activeVersionId: string };
  /** A version whose import waits forever (no daemon runs after setup). */
  pendingVersionId: string;
  /** The victim's workspace; its only build was canceled, so a new one may start. */
  workspace: { id: string; name: string; buildId: string };
  /** The victim's workspace with a build still pending. */
  pendingWorkspace: { id: string; buildId: string };
  /** An agent of a built workspace of another member (its process stopped after setup). */
  agentId: string;
}

interface Case {
  method: string;
  /** The route pattern, as registered. */
  route: string;
  path: (f: Fixture) => string;
  body?: (f: Fixture) => unknown;
  /** Statuses for anonymous, member, auditor, template-admin, user-admin, owner. */
  expect: [number, number, number, number, number, number];
  /** Needs fresh objects for every role (the request changes or deletes them). */
  mutates?: boolean;
  /** The caller's own session is consumed (logout): use a fresh one. */
  freshSession?: boolean;
  /** A non-JSON body. */
  raw?: () => { body: Uint8Array; type: string };
  /** The response streams (server-sent events): only its status is read. */
  stream?: boolean;
}

const pw = { password: "brand-new-password" };

const CASES: Case[] = [
  { method: "GET", route: "/healthz", path: () => "/healthz", expect: [200, 200, 200, 200, 200, 200] },
  { method: "GET", route: "/api/v2/buildinfo", path: () => "/api/v2/buildinfo", expect: [200, 200, 200, 200, 200, 200] },
  // Debug endpoints are hidden from all but owners (404, as in Coder).
  { method: "GET", route: "/api/v2/debug/health", path: () => "/api/v2/debug/health", expect: [401, 404, 404, 404, 404, 200] },
  { method: "GET", route: "/api/v2/replicas", path: () => "/api/v2/replicas", expect: [401, 404, 404, 404, 404, 200] },
  { method: "GET", route: "/api/v2/users/first", path: () => "/api/v2/users/first", expect: [200, 200, 200, 200, 200, 200] },
  {
    method: "POST",
    route: "/api/v2/users/first",
    path: () => "/api/v2/users/first",
    body: () => ({ email: "late@example.com", username: "late", password: DEFAULT_PASSWORD }),
    expect: [409, 409, 409, 409, 409, 409],
  },
  {
    method: "POST",
    route: "/api/v2/users/login",
    path: () => "/api/v2/users/login",
    body: (f) => ({ email: `${f.victim.username}@example.com`, password: DEFAULT_PASSWORD }),
    expect: [201, 201, 201, 201, 201, 201],
  },
  { method: "POST", route: "/api/v2/users/logout", path: () => "/api/v2/users/logout", expect: [401, 200, 200, 200, 200, 200], freshSession: true },
  { method: "GET", route: "/api/v2/users", path: () => "/api/v2/users", expect: [401, 200, 200, 200, 200, 200] },
  {
    method: "POST",
    route: "/api/v2/users",
    path: () => "/api/v2/users",
    body: () => ({ email: `n${randomBytes(4).toString("hex")}@example.com`, username: `n${randomBytes(4).toString("hex")}`, login_type: "none" }),
    expect: [401, 403, 403, 403, 201, 201],
  },
  { method: "GET", route: "/api/v2/users/roles", path: () => "/api/v2/users/roles", expect: [401, 200, 200, 200, 200, 200] },
  { method: "GET", route: "/api/v2/users/:user", path: (f) => `/api/v2/users/${f.victim.id}`, expect: [401, 404, 200, 200, 200, 200] },
  { method: "DELETE", route: "/api/v2/users/:user", path: (f) => `/api/v2/users/${f.victim.id}`, expect: [401, 404, 403, 403, 204, 204], mutates: true },
  {
    method: "PUT",
    route: "/api/v2/users/:user/profile",
    path: (f) => `/api/v2/users/${f.victim.username}/profile`,
    body: (f) => ({ username: `${f.victim.username}x`, name: "Renamed" }),
    expect: [401, 404, 403, 403, 200, 200],
    mutates: true,
  },
  { method: "PUT", route: "/api/v2/users/:user/status/suspend", path: (f) => `/api/v2/users/${f.victim.id}/status/suspend`, expect: [401, 404, 403, 403, 200, 200], mutates: true },
  { method: "PUT", route: "/api/v2/users/:user/status/activate", path: (f) => `/api/v2/users/${f.victim.id}/status/activate`, expect: [401, 404, 403, 403, 200, 200], mutates: true },
  { method: "PUT", route: "/api/v2/users/:user/password", path: (f) => `/api/v2/users/${f.victim.id}/password`, body: () => pw, expect: [401, 404, 403, 403, 204, 204], mutates: true },
  { method: "GET", route: "/api/v2/users/:user/roles", path: (f) => `/api/v2/users/${f.victim.id}/roles`, expect: [401, 404, 200, 200, 200, 200] },
  {
    method: "PUT",
    route: "/api/v2/users/:user/roles",
    path: (f) => `/api/v2/users/${f.victim.id}/roles`,
    body: () => ({ roles: ["auditor"] }),
    expect: [401, 404, 403, 403, 200, 200],
    mutates: true,
  },
  { method: "GET", route: "/api/v2/users/:user/organizations", path: (f) => `/api/v2/users/${f.victim.id}/organizations`, expect: [401, 404, 200, 200, 200, 200] },
  {
    method: "POST",
    route: "/api/v2/users/:user/keys/tokens",
    path: (f) => `/api/v2/users/${f.victim.id}/keys/tokens`,
    body: () => ({}),
    // Reading a user does not let an admin mint credentials for them; only an owner can.
    expect: [401, 404, 403, 403, 403, 201],
  },
  { method: "GET", route: "/api/v2/users/:user/keys/tokens", path: (f) => `/api/v2/users/${f.victim.id}/keys/tokens`, expect: [401, 404, 404, 404, 404, 200] },
  {
    method: "GET",
    route: "/api/v2/users/:user/keys/tokens/:name",
    path: (f) => `/api/v2/users/${f.victim.id}/keys/tokens/${f.victimToken.name}`,
    expect: [401, 404, 404, 404, 404, 200],
  },
  {
    method: "DELETE",
    route: "/api/v2/users/:user/keys/:id",
    path: (f) => `/api/v2/users/${f.victim.id}/keys/${f.victimToken.id}`,
    expect: [401, 404, 404, 404, 404, 204],
    mutates: true,
  },
  { method: "GET", route: "/api/v2/organizations", path: () => "/api/v2/organizations", expect: [401, 200, 200, 200, 200, 200] },
  {
    method: "POST",
    route: "/api/v2/organizations",
    path: () => "/api/v2/organizations",
    body: () => ({ name: `org-${randomBytes(4).toString("hex")}` }),
    expect: [401, 403, 403, 403, 403, 201],
  },
  { method: "GET", route: "/api/v2/organizations/:org", path: (f) => `/api/v2/organizations/${f.otherOrg.id}`, expect: [401, 404, 200, 200, 200, 200] },
  {
    method: "PATCH",
    route: "/api/v2/organizations/:org",
    path: (f) => `/api/v2/organizations/${f.otherOrg.name}`,
    body: () => ({ description: "changed" }),
    expect: [401, 404, 403, 403, 403, 200],
    mutates: true,
  },
  { method: "DELETE", route: "/api/v2/organizations/:org", path: (f) => `/api/v2/organizations/${f.otherOrg.id}`, expect: [401, 404, 403, 403, 403, 204], mutates: true },
  { method: "GET", route: "/api/v2/organizations/:org/members", path: (f) => `/api/v2/organizations/${f.defaultOrg}/members`, expect: [401, 200, 200, 200, 200, 200] },
  {
    method: "POST",
    route: "/api/v2/organizations/:org/members/:user",
    path: (f) => `/api/v2/organizations/${f.otherOrg.id}/members/${f.victim.username}`,
    expect: [401, 404, 403, 403, 201, 201],
    mutates: true,
  },
  {
    method: "DELETE",
    route: "/api/v2/organizations/:org/members/:user",
    path: (f) => `/api/v2/organizations/${f.defaultOrg}/members/${f.victim.id}`,
    // Every member may see the member list of their organization, so this is 403, not 404.
    expect: [401, 403, 403, 403, 204, 204],
    mutates: true,
  },
  {
    method: "PUT",
    route: "/api/v2/organizations/:org/members/:user/roles",
    path: (f) => `/api/v2/organizations/${f.defaultOrg}/members/${f.victim.id}/roles`,
    body: () => ({ roles: ["organization-admin"] }),
    expect: [401, 403, 403, 403, 200, 200],
    mutates: true,
  },
  {
    method: "POST",
    route: "/api/v2/files",
    path: () => "/api/v2/files",
    raw: () => ({ body: templateArchive, type: "application/x-tar" }),
    expect: [401, 403, 403, 201, 403, 201],
  },
  { method: "GET", route: "/api/v2/files/:id", path: (f) => `/api/v2/files/${f.fileId}`, expect: [401, 404, 404, 200, 404, 200] },
  {
    method: "POST",
    route: "/api/v2/organizations/:org/templateversions",
    path: (f) => `/api/v2/organizations/${f.defaultOrg}/templateversions`,
    body: (f) => ({ file_id: f.fileId }),
    expect: [401, 403, 403, 201, 403, 201],
  },
  { method: "GET", route: "/api/v2/templateversions/:id", path: (f) => `/api/v2/templateversions/${f.template.activeVersionId}`, expect: [401, 200, 200, 200, 200, 200] },
  { method: "GET", route: "/api/v2/templateversions/:id/parameters", path: (f) => `/api/v2/templateversions/${f.template.activeVersionId}/parameters`, expect: [401, 200, 200, 200, 200, 200] },
  { method: "GET", route: "/api/v2/templateversions/:id/resources", path: (f) => `/api/v2/templateversions/${f.template.activeVersionId}/resources`, expect: [401, 200, 200, 200, 200, 200] },
  { method: "GET", route: "/api/v2/templateversions/:id/logs", path: (f) => `/api/v2/templateversions/${f.template.activeVersionId}/logs`, expect: [401, 200, 200, 200, 200, 200] },
  { method: "PATCH", route: "/api/v2/templateversions/:id/cancel", path: (f) => `/api/v2/templateversions/${f.pendingVersionId}/cancel`, expect: [401, 403, 403, 200, 403, 200], mutates: true },
  {
    method: "POST",
    route: "/api/v2/organizations/:org/templates",
    path: (f) => `/api/v2/organizations/${f.defaultOrg}/templates`,
    // The version's import never ran: whoever may create templates gets the validation error.
    body: (f) => ({ name: `t-${randomBytes(3).toString("hex")}`, template_version_id: f.pendingVersionId }),
    expect: [401, 403, 403, 400, 403, 400],
  },
  { method: "GET", route: "/api/v2/organizations/:org/templates", path: (f) => `/api/v2/organizations/${f.defaultOrg}/templates`, expect: [401, 200, 200, 200, 200, 200] },
  { method: "GET", route: "/api/v2/organizations/:org/templates/:name", path: (f) => `/api/v2/organizations/${f.defaultOrg}/templates/${f.template.name}`, expect: [401, 200, 200, 200, 200, 200] },
  { method: "GET", route: "/api/v2/templates/:id", path: (f) => `/api/v2/templates/${f.template.id}`, expect: [401, 200, 200, 200, 200, 200] },
  { method: "PATCH", route: "/api/v2/templates/:id", path: (f) => `/api/v2/templates/${f.template.id}`, body: () => ({ description: "changed" }), expect: [401, 403, 403, 200, 403, 200] },
  // The template has a workspace: those who may delete it get 409.
  { method: "DELETE", route: "/api/v2/templates/:id", path: (f) => `/api/v2/templates/${f.template.id}`, expect: [401, 403, 403, 409, 403, 409] },
  { method: "GET", route: "/api/v2/templates/:id/versions", path: (f) => `/api/v2/templates/${f.template.id}/versions`, expect: [401, 200, 200, 200, 200, 200] },
  {
    method: "PATCH",
    route: "/api/v2/templates/:id/versions",
    path: (f) => `/api/v2/templates/${f.template.id}/versions`,
    body: (f) => ({ id: f.template.activeVersionId }),
    expect: [401, 403, 403, 200, 403, 200],
  },
  {
    method: "POST",
    route: "/api/v2/users/:user/workspaces",
    path: (f) => `/api/v2/users/${f.victim.id}/workspaces`,
    body: (f) => ({ name: `w-${randomBytes(3).toString("hex")}`, template_id: f.template.id }),
    // Only an owner creates workspaces for someone else.
    expect: [401, 404, 404, 403, 404, 201],
  },
  { method: "GET", route: "/api/v2/workspaces", path: () => "/api/v2/workspaces", expect: [401, 200, 200, 200, 200, 200] },
  { method: "GET", route: "/api/v2/workspaces/:id", path: (f) => `/api/v2/workspaces/${f.workspace.id}`, expect: [401, 404, 404, 200, 404, 200] },
  {
    method: "GET",
    route: "/api/v2/users/:user/workspace/:name",
    path: (f) => `/api/v2/users/${f.victim.username}/workspace/${f.workspace.name}`,
    expect: [401, 404, 404, 200, 404, 200],
  },
  { method: "GET", route: "/api/v2/workspaces/:id/watch", path: (f) => `/api/v2/workspaces/${f.workspace.id}/watch`, expect: [401, 404, 404, 200, 404, 200], stream: true },
  {
    method: "POST",
    route: "/api/v2/workspaces/:id/builds",
    path: (f) => `/api/v2/workspaces/${f.workspace.id}/builds`,
    body: () => ({ transition: "stop" }),
    expect: [401, 404, 404, 403, 404, 201],
    mutates: true,
  },
  { method: "GET", route: "/api/v2/workspaces/:id/builds", path: (f) => `/api/v2/workspaces/${f.workspace.id}/builds`, expect: [401, 404, 404, 200, 404, 200] },
  { method: "GET", route: "/api/v2/workspacebuilds/:id", path: (f) => `/api/v2/workspacebuilds/${f.workspace.buildId}`, expect: [401, 404, 404, 200, 404, 200] },
  { method: "GET", route: "/api/v2/workspacebuilds/:id/logs", path: (f) => `/api/v2/workspacebuilds/${f.workspace.buildId}/logs`, expect: [401, 404, 404, 200, 404, 200] },
  {
    method: "PATCH",
    route: "/api/v2/workspacebuilds/:id/cancel",
    path: (f) => `/api/v2/workspacebuilds/${f.pendingWorkspace.buildId}/cancel`,
    expect: [401, 404, 404, 403, 404, 200],
    mutates: true,
  },
  { method: "GET", route: "/api/v2/organizations/:org/provisionerdaemons", path: (f) => `/api/v2/organizations/${f.defaultOrg}/provisionerdaemons`, expect: [401, 404, 404, 200, 404, 200] },
  {
    method: "GET",
    route: "/api/v2/organizations/:org/provisionerdaemons/serve",
    path: (f) => `/api/v2/organizations/${f.defaultOrg}/provisionerdaemons/serve`,
    // Without a WebSocket upgrade even an owner gets 400, after the permission check.
    expect: [401, 404, 404, 403, 404, 400],
  },
  // An agent's own API takes its agent token; users' tokens are refused.
  { method: "GET", route: "/api/v2/workspaceagents/me/manifest", path: () => "/api/v2/workspaceagents/me/manifest", expect: [401, 401, 401, 401, 401, 401] },
  { method: "GET", route: "/api/v2/workspaceagents/me/rpc", path: () => "/api/v2/workspaceagents/me/rpc", expect: [401, 401, 401, 401, 401, 401] },
  { method: "GET", route: "/api/v2/workspaceagents/:id", path: (f) => `/api/v2/workspaceagents/${f.agentId}`, expect: [401, 404, 404, 200, 404, 200] },
  { method: "GET", route: "/api/v2/workspaceagents/:id/listening-ports", path: (f) => `/api/v2/workspaceagents/${f.agentId}/listening-ports`, expect: [401, 404, 404, 200, 404, 200] },
  { method: "GET", route: "/api/v2/workspaceagents/:id/logs", path: (f) => `/api/v2/workspaceagents/${f.agentId}/logs`, expect: [401, 404, 404, 200, 404, 200] },
  // Coordination: agents with their token only; a user needs "ssh" on the workspace (a template
  // admin may read it but not reach it). Allowed callers get 400 here: the route wants a WebSocket.
  { method: "GET", route: "/api/v2/workspaceagents/me/coordinate", path: () => "/api/v2/workspaceagents/me/coordinate", expect: [401, 401, 401, 401, 401, 401] },
  { method: "GET", route: "/api/v2/workspaceagents/:id/coordinate", path: (f) => `/api/v2/workspaceagents/${f.agentId}/coordinate`, expect: [401, 404, 404, 403, 404, 400] },
  { method: "GET", route: "/api/v2/workspaceagents/connection", path: () => "/api/v2/workspaceagents/connection", expect: [401, 200, 200, 200, 200, 200] },
  { method: "GET", route: "/api/v2/derp-map", path: () => "/api/v2/derp-map", expect: [401, 200, 200, 200, 200, 200] },
  // The relay authenticates peers by their keys, inside the WebSocket.
  { method: "GET", route: "/derp", path: () => "/derp", expect: [400, 400, 400, 400, 400, 400] },
  // Replicas prove the mesh key from the database; a user's session is not a mesh key.
  { method: "GET", route: "/derp/mesh", path: () => "/derp/mesh", expect: [401, 401, 401, 401, 401, 401] },
  { method: "GET", route: "/derp/latency-check", path: () => "/derp/latency-check", expect: [200, 200, 200, 200, 200, 200] },
  // The web terminal needs "ssh" on the workspace; allowed callers get 400 (no WebSocket upgrade).
  {
    method: "GET",
    route: "/api/v2/workspaceagents/:id/pty",
    path: (f) => `/api/v2/workspaceagents/${f.agentId}/pty?reconnect=${randomUUID()}&width=80&height=24`,
    expect: [401, 404, 404, 403, 404, 400],
  },
  // Subdomain apps are not enabled on this server (no CODER_WILDCARD_ACCESS_URL).
  { method: "GET", route: "/api/v2/applications/auth-redirect", path: () => "/api/v2/applications/auth-redirect?redirect_uri=http%3A%2F%2Fx", expect: [404, 404, 404, 404, 404, 404] },
  // Path-based apps (the agent owner's owner-only "web" app): only the workspace's owner may open
  // them, not even a site owner, since they run on the dashboard's origin.
  ...["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"].flatMap((method): Case[] => [
    { method, route: "/@:user/:workspace_and_agent/apps/:app", path: () => "/@agent-owner/with-agent/apps/web/", expect: [401, 404, 404, 403, 404, 403] },
    { method, route: "/@:user/:workspace_and_agent/apps/:app/*", path: () => "/@agent-owner/with-agent.main/apps/web/x?y=1", expect: [401, 404, 404, 403, 404, 403] },
  ]),
];

/** The same routes on one's own user: everyone who is logged in may do these. */
const SELF_CASES: Array<{ method: string; path: (tokenId: string) => string; body?: unknown; expect: number }> = [
  { method: "GET", path: () => "/api/v2/users/me", expect: 200 },
  { method: "PUT", path: () => "/api/v2/users/me/profile", body: { username: "placeholder" }, expect: 200 },
  { method: "GET", path: () => "/api/v2/users/me/roles", expect: 200 },
  { method: "PUT", path: () => "/api/v2/users/me/roles", body: { roles: ["owner"] }, expect: 400 },
  { method: "PUT", path: () => "/api/v2/users/me/status/suspend", expect: 400 },
  { method: "GET", path: () => "/api/v2/users/me/organizations", expect: 200 },
  { method: "POST", path: () => "/api/v2/users/me/keys/tokens", body: {}, expect: 201 },
  { method: "GET", path: () => "/api/v2/users/me/keys/tokens", expect: 200 },
  { method: "DELETE", path: (id) => `/api/v2/users/me/keys/${id}`, expect: 204 },
  { method: "DELETE", path: () => "/api/v2/users/me", expect: 400 },
];

let srv: TestServer;
let owner: Client;
let defaultOrg: string;
const clients = new Map<Role, Client>();
let shared: Fixture;
let templateArchive: Uint8Array;
let base: { fileId: string; template: Fixture["template"]; agentId: string };

async function makeFixture(): Promise<Fixture> {
  const suffix = randomBytes(4).toString("hex");
  const victim = await owner.createUser({ email: `victim-${suffix}@example.com`, username: `victim-${suffix}`, password: DEFAULT_PASSWORD });
  const name = `tok-${suffix}`;
  await owner.createToken(victim.id, { token_name: name });
  const token = await owner.tokenByName(victim.id, name);
  const org = await owner.createOrganization({ name: `other-${suffix}` });
  const pendingVersion = await owner.createTemplateVersion("default", { file_id: base.fileId });
  const ws = await owner.createWorkspace(victim.id, { name: `ws-${suffix}`, template_id: base.template.id });
  await owner.cancelWorkspaceBuild(ws.latest_build.id);
  const pending = await owner.createWorkspace(victim.id, { name: `pending-${suffix}`, template_id: base.template.id });
  return {
    victim: { id: victim.id, username: victim.username },
    victimToken: { id: token.id, name },
    otherOrg: { id: org.id, name: org.name },
    defaultOrg,
    ...base,
    pendingVersionId: pendingVersion.id,
    workspace: { id: ws.id, name: ws.name, buildId: ws.latest_build.id },
    pendingWorkspace: { id: pending.id, buildId: pending.latest_build.id },
  };
}

async function freshLogin(role: Role): Promise<string | undefined> {
  if (role === "anonymous") return undefined;
  const email = role === "owner" ? "owner@example.com" : `${role}@example.com`;
  return (await srv.anonymous().loginWithPassword(email, DEFAULT_PASSWORD)).session_token;
}

async function send(
  token: string | undefined,
  method: string,
  path: string,
  body?: unknown,
  opts: { raw?: { body: Uint8Array; type: string }; stream?: boolean } = {},
): Promise<{ status: number; text: string }> {
  const headers: Record<string, string> = {};
  if (token) headers["Coder-Session-Token"] = token;
  if (body !== undefined) headers["content-type"] = "application/json";
  if (opts.raw) headers["content-type"] = opts.raw.type;
  const abort = new AbortController();
  const res = await fetch(srv.url + path, { method, headers, body: opts.raw?.body ?? (body === undefined ? undefined : JSON.stringify(body)), signal: abort.signal });
  if (opts.stream && res.ok) {
    abort.abort();
    return { status: res.status, text: "" };
  }
  return { status: res.status, text: await res.text() };
}

beforeAll(async () => {
  // One daemon imports the template; after that none runs, so builds stay pending (no agents).
  srv = await startTestServer({ manualClose: true, provisionerDaemons: 1 });
  const first = await createFirstUser(srv);
  owner = first.client;
  defaultOrg = first.organizationId;
  const pushed = await pushTemplate(owner, "rbac", undefined, { outsideTest: true });
  const agentOwner = await owner.createUser({ email: "agent-owner@example.com", username: "agent-owner", login_type: "none" });
  const built = await owner.createWorkspace(agentOwner.id, { name: "with-agent", template_id: pushed.template.id });
  const agentId = (await waitForBuild(owner, built.latest_build.id)).resources[0]!.agents[0]!.id;
  // The table needs the agent's row, not its process: stop it by the pid the driver recorded.
  const state = (await srv.db.store.getWorkspaceBuildById(built.latest_build.id))!.provisioner_state!;
  for (const { pid } of (JSON.parse(state.toString("utf8")) as { agents: Array<{ pid: number }> }).agents) process.kill(-pid, "SIGKILL");
  await srv.coderd.builtinDaemons.shutdown();
  const dir = writeTemplateDir(EXAMPLE_TEMPLATE, { cleanup: false });
  templateArchive = await packDirectory(dir);
  rmSync(dir, { recursive: true, force: true });
  base = { fileId: pushed.version.job.file_id, template: { id: pushed.template.id, name: pushed.template.name, activeVersionId: pushed.version.id }, agentId };
  clients.set("owner", owner);
  clients.set("anonymous", srv.anonymous());
  for (const role of ["member", "auditor", "template-admin", "user-admin"] as const) {
    clients.set(role, (await createUserWithRoles(srv, owner, role, role === "member" ? [] : [role])).client);
  }
  shared = await makeFixture();
});

afterAll(async () => {
  await srv?.close();
});

describe("RBAC: every route × every role", () => {
  it.each(CASES.map((c) => [`${c.method} ${c.route}`, c] as const))("%s", async (_name, c) => {
    const got: Record<string, number> = {};
    const want: Record<string, number> = {};
    for (const [i, role] of ROLES.entries()) {
      const f = c.mutates ? await makeFixture() : shared;
      const token = c.freshSession ? await freshLogin(role) : clients.get(role)!.sessionToken;
      const res = await send(token, c.method, c.path(f), c.body?.(f), { raw: c.raw?.(), stream: c.stream });
      got[role] = res.status;
      want[role] = c.expect[i]!;
      if (res.status >= 400) expect(JSON.parse(res.text).message, `${role}: ${res.text}`).toEqual(expect.any(String));
    }
    expect(got).toEqual(want);
  });

  it.each(ROLES.filter((r) => r !== "anonymous").map((r) => [r]))("self-service routes as %s", async (role) => {
    const token = await freshLogin(role);
    const me = JSON.parse((await send(token, "GET", "/api/v2/users/me")).text) as { username: string };
    const keyName = `self-${randomBytes(3).toString("hex")}`;
    await send(token, "POST", "/api/v2/users/me/keys/tokens", { token_name: keyName });
    const key = JSON.parse((await send(token, "GET", `/api/v2/users/me/keys/tokens/${keyName}`)).text) as { id: string };
    for (const c of SELF_CASES) {
      const body = c.path("") === "/api/v2/users/me/profile" ? { username: me.username } : c.body;
      const res = await send(token, c.method, c.path(key.id), body);
      expect(res.status, `${role} ${c.method} ${c.path(key.id)}: ${res.text}`).toBe(c.expect);
    }
  });

  it("covers every registered route", () => {
    const registered = srv.coderd.routes.map((r) => `${r.method} ${r.url}`).sort();
    const covered = [...new Set(CASES.map((c) => `${c.method} ${c.route}`))].sort();
    expect(covered).toEqual(registered);
  });
});
