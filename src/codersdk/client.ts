// The one typed client of the API, used by the CLI, the tests and the benchmarks.
import { CoderSDKError } from "./errors.js";
import type {
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
  LoginWithPasswordResponse,
  Organization,
  OrganizationMember,
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
  async request<T>(method: string, path: string, body?: unknown, init: { headers?: Record<string, string> } = {}): Promise<T> {
    const target = new URL(path, this.url);
    const headers: Record<string, string> = { Accept: "application/json", ...init.headers };
    if (this.sessionToken) headers[SESSION_TOKEN_HEADER] = this.sessionToken;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let res: globalThis.Response;
    try {
      res = await fetch(target, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new CoderSDKError(
        0,
        { message: `Cannot reach ${this.url.origin}`, detail: cause?.code ?? cause?.message ?? (err as Error).message },
        method,
        target.toString(),
      );
    }
    const text = await res.text();
    if (!res.ok) {
      let parsed: APIResponse | undefined;
      try {
        parsed = JSON.parse(text) as APIResponse;
      } catch {
        // not our JSON (a proxy's error page, say)
      }
      throw new CoderSDKError(
        res.status,
        parsed?.message ? parsed : { message: `Unexpected ${res.status} ${res.statusText} from ${method} ${target.pathname}`, detail: text.slice(0, 200) },
        method,
        target.toString(),
      );
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }

  // Deployment
  buildInfo() {
    return this.request<BuildInfo>("GET", "/api/v2/buildinfo");
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
