// The one typed client of the API, used by the CLI, the tests and the benchmarks.
import type { IncomingMessage } from "node:http";
import type WebSocket from "ws";
import { CoderSDKError } from "./errors.js";
import { httpRequest, readText } from "./http.js";
import type {
  AgentConnectionInfo,
  APIKey,
  AssignableRole,
  BuildInfo,
  CreateFirstUserRequest,
  CreateFirstUserResponse,
  CreateOrganizationRequest,
  CreateTokenRequest,
  CreateUserRequest,
  GenerateAPIKeyResponse,
  GetUsersResponse,
  HealthReport,
  Replica,
  LoginWithPasswordResponse,
  Organization,
  OrganizationMember,
  CreateTemplateRequest,
  CreateTemplateVersionRequest,
  CreateWorkspaceBuildRequest,
  CreateWorkspaceRequest,
  ProvisionerDaemon,
  ProvisionerJobLog,
  Template,
  TemplateVersion,
  TemplateVersionParameter,
  UpdateTemplateRequest,
  UploadResponse,
  Workspace,
  WorkspaceBuild,
  ListeningPortsResponse,
  WorkspaceAgent,
  WorkspaceAgentLog,
  WorkspaceResource,
  WorkspacesResponse,
  Response as APIResponse,
  UpdateOrganizationRequest,
  UpdateUserPasswordRequest,
  UpdateUserProfileRequest,
  User,
  UserRoles,
} from "./types.js";

export const SESSION_TOKEN_HEADER = "Coder-Session-Token";
export const SESSION_TOKEN_COOKIE = "coder_session_token";

export interface UsersQuery {
  q?: string;
  limit?: number;
  offset?: number;
  after_id?: string;
}

const enc = encodeURIComponent;

export class Client {
  readonly url: URL;
  sessionToken: string | undefined;

  constructor(url: string | URL, opts: { sessionToken?: string } = {}) {
    this.url = new URL(url);
    this.sessionToken = opts.sessionToken;
  }

  /** Sends one request; resolves with the decoded JSON body, or throws CoderSDKError. */
  async request<T>(method: string, path: string, body?: unknown, init: { headers?: Record<string, string>; raw?: Uint8Array } = {}): Promise<T> {
    const target = new URL(path, this.url);
    const headers: Record<string, string> = { Accept: "application/json", ...init.headers };
    if (this.sessionToken) headers[SESSION_TOKEN_HEADER] = this.sessionToken;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let status: number;
    let text: string;
    let statusMessage: string | undefined;
    try {
      const res = await httpRequest(target, {
        method,
        headers,
        body: init.raw ?? (body === undefined ? undefined : JSON.stringify(body)),
        credentialHeaders: [SESSION_TOKEN_HEADER],
      });
      ({ statusCode: status = 0, statusMessage } = res);
      text = await readText(res);
    } catch (err) {
      throw this.unreachable(err, method, target);
    }
    if (status < 200 || status > 299) {
      let parsed: APIResponse | undefined;
      try {
        parsed = JSON.parse(text) as APIResponse;
      } catch {
        // not our JSON (a proxy's error page, say)
      }
      throw new CoderSDKError(
        status,
        parsed?.message ? parsed : { message: `Unexpected ${status} ${statusMessage ?? ""} from ${method} ${target.pathname}`, detail: text.slice(0, 200) },
        method,
        target.toString(),
      );
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** The server could not be reached, the connection broke, or the server went silent: status 0, with the cause. */
  private unreachable(err: unknown, method: string, target: URL): CoderSDKError {
    const e = err as NodeJS.ErrnoException;
    const response = e.code === "ETIMEDOUT" ? { message: `No response from ${this.url.origin}`, detail: e.message } : { message: `Cannot reach ${this.url.origin}`, detail: e.code ?? e.message };
    return new CoderSDKError(0, response, method, target.toString());
  }

  // Deployment
  buildInfo() {
    return this.request<BuildInfo>("GET", "/api/v2/buildinfo");
  }

  /** The deployment's health report (owners only); force recomputes instead of using the cached one. */
  debugHealth(opts: { force?: boolean } = {}) {
    return this.request<HealthReport>("GET", `/api/v2/debug/health${opts.force ? "?force=true" : ""}`);
  }

  /** The alive replicas of the deployment (owners only). */
  replicas() {
    return this.request<Replica[]>("GET", "/api/v2/replicas");
  }

  // First user and authentication
  async hasFirstUser(): Promise<boolean> {
    try {
      await this.request("GET", "/api/v2/users/first");
      return true;
    } catch (err) {
      if (err instanceof CoderSDKError && err.status === 404) return false;
      throw err;
    }
  }
  createFirstUser(req: CreateFirstUserRequest) {
    return this.request<CreateFirstUserResponse>("POST", "/api/v2/users/first", req);
  }
  loginWithPassword(email: string, password: string) {
    return this.request<LoginWithPasswordResponse>("POST", "/api/v2/users/login", { email, password });
  }
  logout() {
    return this.request<APIResponse>("POST", "/api/v2/users/logout");
  }

  // Users
  user(user = "me") {
    return this.request<User>("GET", `/api/v2/users/${enc(user)}`);
  }
  users(query: UsersQuery = {}) {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== "") qs.set(k, String(v));
    const s = qs.toString();
    return this.request<GetUsersResponse>("GET", `/api/v2/users${s ? `?${s}` : ""}`);
  }
  createUser(req: CreateUserRequest) {
    return this.request<User>("POST", "/api/v2/users", req);
  }
  updateUserStatus(user: string, status: "suspend" | "activate") {
    return this.request<User>("PUT", `/api/v2/users/${enc(user)}/status/${status}`);
  }
  updateUserProfile(user: string, req: UpdateUserProfileRequest) {
    return this.request<User>("PUT", `/api/v2/users/${enc(user)}/profile`, req);
  }
  updateUserPassword(user: string, req: UpdateUserPasswordRequest) {
    return this.request<void>("PUT", `/api/v2/users/${enc(user)}/password`, req);
  }
  userRoles(user: string) {
    return this.request<UserRoles>("GET", `/api/v2/users/${enc(user)}/roles`);
  }
  updateUserRoles(user: string, roles: string[]) {
    return this.request<User>("PUT", `/api/v2/users/${enc(user)}/roles`, { roles });
  }
  assignableSiteRoles() {
    return this.request<AssignableRole[]>("GET", "/api/v2/users/roles");
  }
  deleteUser(user: string) {
    return this.request<void>("DELETE", `/api/v2/users/${enc(user)}`);
  }
  userOrganizations(user = "me") {
    return this.request<Organization[]>("GET", `/api/v2/users/${enc(user)}/organizations`);
  }

  // API tokens
  createToken(user: string, req: CreateTokenRequest) {
    return this.request<GenerateAPIKeyResponse>("POST", `/api/v2/users/${enc(user)}/keys/tokens`, req);
  }
  tokens(user = "me") {
    return this.request<APIKey[]>("GET", `/api/v2/users/${enc(user)}/keys/tokens`);
  }
  tokenByName(user: string, name: string) {
    return this.request<APIKey>("GET", `/api/v2/users/${enc(user)}/keys/tokens/${enc(name)}`);
  }
  deleteAPIKey(user: string, id: string) {
    return this.request<void>("DELETE", `/api/v2/users/${enc(user)}/keys/${enc(id)}`);
  }

  /**
   * A WebSocket to an API path with the session token. Attach listeners to `ws` as soon as this
   * resolves:
   * frames can arrive in the same packet as the upgrade, before `opened` resolves. `opened`
   * rejects with CoderSDKError when the server refuses the upgrade.
   */
  async socket(path: string): Promise<{ ws: WebSocket; opened: Promise<void> }> {
    const u = new URL(path, this.url);
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    const headers: Record<string, string> = this.sessionToken ? { [SESSION_TOKEN_HEADER]: this.sessionToken } : {};
    // Loaded on first use: most commands never open one, and it takes ~30 ms to load.
    const { default: WebSocket } = await import("ws");
    const ws = new WebSocket(u, { headers });
    const opened = new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("unexpected-response", (_req, res) => {
        let text = "";
        res.on("data", (d: Buffer) => (text += d));
        res.on("end", () => {
          let body: APIResponse = { message: `Unexpected ${res.statusCode} from ${u.pathname}` };
          try {
            body = JSON.parse(text) as APIResponse;
          } catch {
            // keep the generic message
          }
          reject(new CoderSDKError(res.statusCode ?? 0, body, "GET", u.toString()));
        });
      });
      ws.once("error", (err) => reject(new CoderSDKError(0, { message: `Cannot reach ${this.url.origin}`, detail: err.message }, "GET", u.toString())));
    });
    return { ws, opened };
  }

  /** Streams a job's logs (past, then live) until the job ends. */
  async *followLogs(path: string, after = 0): AsyncGenerator<ProvisionerJobLog> {
    const { ws, opened } = await this.socket(`${path}?follow&after=${after}`);
    const queue: ProvisionerJobLog[] = [];
    let wake: (() => void) | undefined;
    let done = false;
    let failure: Error | undefined;
    ws.on("message", (data) => {
      queue.push(JSON.parse(data.toString()) as ProvisionerJobLog);
      wake?.();
    });
    ws.on("close", (code, reason) => {
      done = true;
      if (code !== 1000) failure = new Error(`log stream closed: ${code} ${reason.toString()}`.trim());
      wake?.();
    });
    try {
      await opened;
      for (;;) {
        while (queue.length) yield queue.shift()!;
        if (done) break;
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
      if (failure) throw failure;
    } finally {
      ws.close();
    }
  }

  // Files, templates and template versions
  uploadFile(data: Uint8Array, contentType = "application/x-tar") {
    return this.request<UploadResponse>("POST", "/api/v2/files", undefined, { raw: data, headers: { "Content-Type": contentType } });
  }
  createTemplateVersion(org: string, req: CreateTemplateVersionRequest) {
    return this.request<TemplateVersion>("POST", `/api/v2/organizations/${enc(org)}/templateversions`, req);
  }
  templateVersion(id: string) {
    return this.request<TemplateVersion>("GET", `/api/v2/templateversions/${enc(id)}`);
  }
  templateVersionParameters(id: string) {
    return this.request<TemplateVersionParameter[]>("GET", `/api/v2/templateversions/${enc(id)}/parameters`);
  }
  templateVersionResources(id: string) {
    return this.request<WorkspaceResource[]>("GET", `/api/v2/templateversions/${enc(id)}/resources`);
  }
  templateVersionLogs(id: string) {
    return this.request<ProvisionerJobLog[]>("GET", `/api/v2/templateversions/${enc(id)}/logs`);
  }
  followTemplateVersionLogs(id: string, after = 0) {
    return this.followLogs(`/api/v2/templateversions/${enc(id)}/logs`, after);
  }
  cancelTemplateVersion(id: string) {
    return this.request<{ message: string }>("PATCH", `/api/v2/templateversions/${enc(id)}/cancel`);
  }
  createTemplate(org: string, req: CreateTemplateRequest) {
    return this.request<Template>("POST", `/api/v2/organizations/${enc(org)}/templates`, req);
  }
  templates(org: string) {
    return this.request<Template[]>("GET", `/api/v2/organizations/${enc(org)}/templates`);
  }
  templateByName(org: string, name: string) {
    return this.request<Template>("GET", `/api/v2/organizations/${enc(org)}/templates/${enc(name)}`);
  }
  template(id: string) {
    return this.request<Template>("GET", `/api/v2/templates/${enc(id)}`);
  }
  updateTemplate(id: string, req: UpdateTemplateRequest) {
    return this.request<Template>("PATCH", `/api/v2/templates/${enc(id)}`, req);
  }
  deleteTemplate(id: string) {
    return this.request<void>("DELETE", `/api/v2/templates/${enc(id)}`);
  }
  templateVersions(templateId: string) {
    return this.request<TemplateVersion[]>("GET", `/api/v2/templates/${enc(templateId)}/versions`);
  }
  promoteTemplateVersion(templateId: string, versionId: string) {
    return this.request<Template>("PATCH", `/api/v2/templates/${enc(templateId)}/versions`, { id: versionId });
  }

  // Workspaces and builds
  createWorkspace(user: string, req: CreateWorkspaceRequest) {
    return this.request<Workspace>("POST", `/api/v2/users/${enc(user)}/workspaces`, req);
  }
  workspaces(q?: string, page: { limit?: number; offset?: number } = {}) {
    const qs = new URLSearchParams();
    if (q) qs.set("q", q);
    if (page.limit !== undefined) qs.set("limit", String(page.limit));
    if (page.offset !== undefined) qs.set("offset", String(page.offset));
    const s = qs.toString();
    return this.request<WorkspacesResponse>("GET", `/api/v2/workspaces${s ? `?${s}` : ""}`);
  }
  workspace(id: string) {
    return this.request<Workspace>("GET", `/api/v2/workspaces/${enc(id)}`);
  }
  workspaceByOwnerAndName(owner: string, name: string) {
    return this.request<Workspace>("GET", `/api/v2/users/${enc(owner)}/workspace/${enc(name)}`);
  }
  createWorkspaceBuild(workspaceId: string, req: CreateWorkspaceBuildRequest) {
    return this.request<WorkspaceBuild>("POST", `/api/v2/workspaces/${enc(workspaceId)}/builds`, req);
  }
  workspaceBuilds(workspaceId: string) {
    return this.request<WorkspaceBuild[]>("GET", `/api/v2/workspaces/${enc(workspaceId)}/builds`);
  }
  workspaceBuild(id: string) {
    return this.request<WorkspaceBuild>("GET", `/api/v2/workspacebuilds/${enc(id)}`);
  }
  workspaceBuildLogs(id: string) {
    return this.request<ProvisionerJobLog[]>("GET", `/api/v2/workspacebuilds/${enc(id)}/logs`);
  }
  followWorkspaceBuildLogs(id: string, after = 0) {
    return this.followLogs(`/api/v2/workspacebuilds/${enc(id)}/logs`, after);
  }
  cancelWorkspaceBuild(id: string) {
    return this.request<{ message: string }>("PATCH", `/api/v2/workspacebuilds/${enc(id)}/cancel`);
  }
  /** Server-sent events: the workspace now, then after every change, until the signal aborts. */
  async *watchWorkspace(id: string, signal: AbortSignal): AsyncGenerator<Workspace> {
    const headers: Record<string, string> = { Accept: "text/event-stream" };
    if (this.sessionToken) headers[SESSION_TOKEN_HEADER] = this.sessionToken;
    const target = new URL(`/api/v2/workspaces/${enc(id)}/watch`, this.url);
    let res: IncomingMessage;
    try {
      res = await httpRequest(target, { method: "GET", headers, signal, credentialHeaders: [SESSION_TOKEN_HEADER] });
    } catch (err) {
      throw this.unreachable(err, "GET", target);
    }
    const status = res.statusCode ?? 0;
    if (status !== 200) {
      const text = await readText(res);
      let body: APIResponse = { message: `Unexpected ${status} watching workspace` };
      try {
        body = JSON.parse(text) as APIResponse;
      } catch {
        // keep the generic message
      }
      throw new CoderSDKError(status, body, "GET", target.toString());
    }
    const decoder = new TextDecoder();
    let buf = "";
    try {
      for await (const chunk of res) {
        buf += decoder.decode(chunk as Uint8Array, { stream: true });
        let end: number;
        while ((end = buf.indexOf("\n\n")) >= 0) {
          const event = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const data = event.split("\n").find((l) => l.startsWith("data: "));
          if (event.startsWith("event: data") && data) yield JSON.parse(data.slice(6)) as Workspace;
        }
      }
    } catch (err) {
      if (!signal.aborted) throw err;
    }
  }

  // Workspace agents
  /** The relays, and whether direct paths are allowed: what a client needs to reach agents. */
  agentConnectionInfo() {
    return this.request<AgentConnectionInfo>("GET", "/api/v2/workspaceagents/connection");
  }
  workspaceAgent(id: string) {
    return this.request<WorkspaceAgent>("GET", `/api/v2/workspaceagents/${enc(id)}`);
  }
  workspaceAgentListeningPorts(id: string) {
    return this.request<ListeningPortsResponse>("GET", `/api/v2/workspaceagents/${enc(id)}/listening-ports`);
  }
  workspaceAgentLogs(id: string, after = 0) {
    return this.request<WorkspaceAgentLog[]>("GET", `/api/v2/workspaceagents/${enc(id)}/logs?after=${after}`);
  }
  /** Streams an agent's logs (past, then live) until the agent is off or the caller stops. */
  async *followWorkspaceAgentLogs(id: string, after = 0): AsyncGenerator<WorkspaceAgentLog> {
    for await (const l of this.followLogs(`/api/v2/workspaceagents/${enc(id)}/logs`, after)) yield l as unknown as WorkspaceAgentLog;
  }

  // Provisioner daemons
  provisionerDaemons(org: string) {
    return this.request<ProvisionerDaemon[]>("GET", `/api/v2/organizations/${enc(org)}/provisionerdaemons`);
  }

  // Organizations
  organizations() {
    return this.request<Organization[]>("GET", "/api/v2/organizations");
  }
  organization(org: string) {
    return this.request<Organization>("GET", `/api/v2/organizations/${enc(org)}`);
  }
  createOrganization(req: CreateOrganizationRequest) {
    return this.request<Organization>("POST", "/api/v2/organizations", req);
  }
  updateOrganization(org: string, req: UpdateOrganizationRequest) {
    return this.request<Organization>("PATCH", `/api/v2/organizations/${enc(org)}`, req);
  }
  deleteOrganization(org: string) {
    return this.request<void>("DELETE", `/api/v2/organizations/${enc(org)}`);
  }
  organizationMembers(org: string) {
    return this.request<OrganizationMember[]>("GET", `/api/v2/organizations/${enc(org)}/members`);
  }
  addOrganizationMember(org: string, user: string) {
    return this.request<OrganizationMember>("POST", `/api/v2/organizations/${enc(org)}/members/${enc(user)}`);
  }
  removeOrganizationMember(org: string, user: string) {
    return this.request<void>("DELETE", `/api/v2/organizations/${enc(org)}/members/${enc(user)}`);
  }
  updateOrganizationMemberRoles(org: string, user: string, roles: string[]) {
    return this.request<OrganizationMember>("PUT", `/api/v2/organizations/${enc(org)}/members/${enc(user)}/roles`, { roles });
  }
}
