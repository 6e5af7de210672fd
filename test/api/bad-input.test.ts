// Bad input across the API: malformed and mistyped bodies, wrong content types, oversized
// bodies, out-of-range fields and query parameters, bad tokens, other users' objects and
// unknown routes. Every error must be the API's JSON error shape with the right status, never
// a 500 or a stack trace, and a rejected request must change nothing.
//
// Most checks share one deployment (started in beforeAll); each test snapshots the database
// first and compares afterwards. Tests that need an empty database, a small body limit, or
// that expire and delete their actors' tokens get servers of their own.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { SESSION_TOKEN_COOKIE, SESSION_TOKEN_HEADER, type Client, type Organization, type User } from "../../src/codersdk/index.js";
import { createFirstUser, createUserWithRoles, DEFAULT_PASSWORD, invalidateAuthCache, startTestServer, type TestServer } from "../helpers/coderd.js";

// ---------------------------------------------------------------------------------------------
// Helpers

interface ApiErrorBody {
  message: string;
  detail?: string;
  validations?: Array<{ field: string; detail: string }>;
}

/** A stack frame such as "at foo (/src/x.ts:1:2)" or "at file:///x.js:3:4". */
const STACK_FRAME = /\bat\s+(?:[\w$.<>[\]]+\s+)?\(?(?:file:|node:|\/|[A-Za-z]:\\)[^\s)]*:\d+:\d+\)?|\n\s+at\s/;
/** The head line of a thrown error: "Error:", "TypeError:", "PostgresError:" ... */
const ERROR_HEAD = /\b\w*Error:/;
const CONTRACT_KEYS = ["message", "detail", "validations"];

/**
 * Checks a raw fetch Response is one of the API's JSON errors: the status, a JSON object with a
 * non-empty message and nothing but the contract's keys, an optional string detail, well-formed
 * validations naming `field` (exactly, or as the parent of a nested path like "roles.0") when
 * given, and no stack trace anywhere.
 */
async function expectApiError(res: Response, status: number | readonly number[], field?: string): Promise<ApiErrorBody> {
  const text = await res.text();
  const where = `${res.status} ${new URL(res.url).pathname}: ${text.slice(0, 400)}`;
  const statuses = typeof status === "number" ? [status] : status;
  expect(statuses, where).toContain(res.status);
  expect(res.headers.get("content-type") ?? "", where).toMatch(/^application\/json/);
  let parsed: unknown;
  expect(() => (parsed = JSON.parse(text)), where).not.toThrow();
  expect(parsed, where).toBeTypeOf("object");
  expect(parsed, where).not.toBeNull();
  expect(Array.isArray(parsed), where).toBe(false);
  const body = parsed as ApiErrorBody;
  expect(typeof body.message, where).toBe("string");
  expect(body.message.length, where).toBeGreaterThan(0);
  if (body.detail !== undefined) expect(typeof body.detail, where).toBe("string");
  // Only the contract's keys: nothing of a framework's own error shape (code, statusCode, error, stack).
  expect(Object.keys(body).filter((k) => !CONTRACT_KEYS.includes(k)), where).toEqual([]);
  expect(text, where).not.toMatch(STACK_FRAME);
  expect(text, where).not.toMatch(ERROR_HEAD);
  if (body.validations !== undefined) {
    expect(Array.isArray(body.validations), where).toBe(true);
    for (const v of body.validations) {
      expect(typeof v.field, where).toBe("string");
      expect(typeof v.detail, where).toBe("string");
      expect(v.detail.length, where).toBeGreaterThan(0);
    }
  }
  if (field !== undefined) {
    const fields = (body.validations ?? []).map((v) => v.field);
    expect(
      fields.some((f) => f === field || f.startsWith(`${field}.`)),
      `${where} -- expected validations to name "${field}", got ${JSON.stringify(fields)}`,
    ).toBe(true);
  }
  return body;
}

/**
 * Runs every case, then fails (softly: the test goes on to its later checks) listing each case
 * that failed with its first line, so one broken case does not hide the others.
 */
async function checkAll<T>(cases: readonly T[], label: (c: T) => string, run: (c: T) => Promise<unknown>): Promise<void> {
  const failures: string[] = [];
  for (const c of cases) {
    try {
      await run(c);
    } catch (e) {
      failures.push(`${label(c)} => ${(e as Error).message.split("\n")[0]}`);
    }
  }
  expect.soft(failures).toEqual([]);
}

interface RawOptions {
  token?: string;
  cookie?: string;
  /** Sent byte for byte; fetch adds no Content-Type of its own. */
  body?: string | Buffer;
  /** Defaults to application/json when there is a body; null sends none. */
  contentType?: string | null;
}

/** A request with full control over the body and headers (the typed Client would refuse most of these). */
function raw(srv: TestServer, method: string, path: string, opts: RawOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (opts.token !== undefined) headers[SESSION_TOKEN_HEADER] = opts.token;
  if (opts.cookie !== undefined) headers.cookie = opts.cookie;
  let body: Buffer | undefined;
  if (opts.body !== undefined) {
    body = typeof opts.body === "string" ? Buffer.from(opts.body, "utf8") : opts.body;
    const ct = opts.contentType === undefined ? "application/json" : opts.contentType;
    if (ct !== null) headers["content-type"] = ct;
  } else if (opts.contentType) {
    headers["content-type"] = opts.contentType;
  }
  return fetch(`${srv.url}${path}`, { method, headers, body });
}

/** A JSON request: `body` is serialized as is, whatever its type; undefined sends no body. */
function send(srv: TestServer, method: string, path: string, token: string | undefined, body?: unknown): Promise<Response> {
  return raw(srv, method, path, { token, body: body === undefined ? undefined : JSON.stringify(body) });
}

function tokenOf(c: Client): string {
  const t = c.sessionToken;
  if (!t) throw new Error("client has no session token");
  return t;
}

const keyIdOf = (token: string) => token.split("-")[0]!;

/** Everything a request could change, minus the columns that move on every successful use. */
async function snapshot(srv: TestServer) {
  const k = srv.db.store.kysely;
  return {
    users: await k
      .selectFrom("users")
      .select(["id", "email", "username", "name", "hashed_password", "login_type", "status", "rbac_roles", "deleted", "created_at", "updated_at"])
      .orderBy("id")
      .execute(),
    organizations: await k.selectFrom("organizations").selectAll().orderBy("id").execute(),
    members: await k.selectFrom("organization_members").selectAll().orderBy("organization_id").orderBy("user_id").execute(),
    apiKeys: await k
      .selectFrom("api_keys")
      .select(["id", "user_id", "hashed_secret", "login_type", "token_name", "scope", "lifetime_seconds", "created_at", "updated_at"])
      .orderBy("id")
      .execute(),
  };
}

async function lastUsed(srv: TestServer, keyId: string): Promise<Date> {
  const row = await srv.db.store.kysely.selectFrom("api_keys").select("last_used").where("id", "=", keyId).executeTakeFirstOrThrow();
  return row.last_used;
}

const long = (n: number, c = "a") => c.repeat(n);
const UNKNOWN_UUID = "5a4e3c2b-1d0f-4e9a-8b7c-6d5e4f3a2b1c";
/** Shaped like one of our tokens (10 + "-" + 22 alphanumerics) but never issued. */
const WELL_FORMED_UNKNOWN_TOKEN = "Zz9Zz9Zz9Z-Qq1Qq1Qq1Qq1Qq1Qq1Qq1Qq";
const MAX_TOKEN_LIFETIME_S = 30 * 24 * 3600; // startTestServer's default

interface Actor {
  client: Client;
  userId: string;
  token: string;
}

/**
 * The actors: an owner; plain members alice and bob; an auditor and a user admin; a user that
 * cannot log in with a password; and an organization "secret" that the owner administers and
 * bob belongs to, but alice does not.
 */
interface Deployment {
  srv: TestServer;
  owner: Actor;
  defaultOrgId: string;
  alice: Actor;
  bob: Actor;
  auditor: Actor;
  userAdmin: Actor;
  robot: User;
  secret: Organization;
}

async function deploy(srv: TestServer): Promise<Deployment> {
  const first = await createFirstUser(srv);
  const owner = first.client;
  const actor = async (name: string, roles: string[] = []): Promise<Actor> => {
    const a = await createUserWithRoles(srv, owner, name, roles);
    return { ...a, token: tokenOf(a.client) };
  };
  const alice = await actor("alice");
  const bob = await actor("bob");
  const auditor = await actor("audit", ["auditor"]);
  const userAdmin = await actor("uadmin", ["user-admin"]);
  const robot = await owner.createUser({ email: "robot@example.com", username: "robot", login_type: "none" });
  const secret = await owner.createOrganization({ name: "secret", display_name: "Secret" });
  await owner.addOrganizationMember(secret.id, "bob");
  return {
    srv,
    owner: { client: owner, userId: first.userId, token: tokenOf(owner) },
    defaultOrgId: first.organizationId,
    alice,
    bob,
    auditor,
    userAdmin,
    robot,
    secret,
  };
}

/** A table of bad bodies for one route: [what, body, field the 400 must name]. */
type FieldCases = Array<[string, unknown, string]>;

async function expectFieldErrors(srv: TestServer, method: string, path: string, token: string | undefined, cases: FieldCases) {
  await checkAll(
    cases,
    ([what]) => `${method} ${path} with ${what}`,
    async ([, body, field]) => expectApiError(await send(srv, method, path, token, body), 400, field),
  );
}

// ---------------------------------------------------------------------------------------------
// Routes that take a body, and the ways their framing can be wrong

interface BodyRoute {
  method: string;
  path: string;
  token?: string;
  /** A body the route would accept, used where only the framing is wrong. */
  valid: unknown;
}

function bodyRoutes(d: Deployment): BodyRoute[] {
  const token = d.owner.token;
  const bob = d.bob.userId;
  return [
    { method: "POST", path: "/api/v2/users/first", valid: { email: "x@example.com", username: "x", password: DEFAULT_PASSWORD } },
    { method: "POST", path: "/api/v2/users/login", valid: { email: "owner@example.com", password: DEFAULT_PASSWORD } },
    { method: "POST", path: "/api/v2/users", token, valid: { email: "new@example.com", username: "newuser", password: DEFAULT_PASSWORD } },
    { method: "PUT", path: `/api/v2/users/${bob}/profile`, token, valid: { username: "bobby", name: "Bobby" } },
    { method: "PUT", path: `/api/v2/users/${bob}/password`, token, valid: { password: "another-password-1" } },
    { method: "PUT", path: `/api/v2/users/${bob}/roles`, token, valid: { roles: ["auditor"] } },
    { method: "POST", path: `/api/v2/users/${bob}/keys/tokens`, token, valid: { token_name: "fresh", lifetime_seconds: 3600 } },
    { method: "POST", path: "/api/v2/organizations", token, valid: { name: "neworg" } },
    { method: "PATCH", path: `/api/v2/organizations/${d.secret.id}`, token, valid: { display_name: "Renamed" } },
    { method: "PUT", path: `/api/v2/organizations/${d.defaultOrgId}/members/${bob}/roles`, token, valid: { roles: ["organization-admin"] } },
  ];
}

interface FramingCase {
  name: string;
  /** undefined: no body at all. */
  body?: string | ((valid: unknown) => string);
  contentType?: string | null;
  status: number;
  field?: string;
}

const FRAMING_CASES: FramingCase[] = [
  { name: "truncated JSON", body: '{"email":', status: 400 },
  { name: "trailing garbage after JSON", body: '{"email":"a@b.co"}}', status: 400 },
  { name: "single-quoted pseudo-JSON", body: "{'email':'a@b.co'}", status: 400 },
  { name: "a bare word", body: "hello", status: 400 },
  { name: "empty body with application/json", body: "", status: 400 },
  { name: "whitespace-only body with application/json", body: "   \n", status: 400 },
  { name: "a JSON array", body: "[]", status: 400, field: "body" },
  { name: "a JSON array holding the valid object", body: (v) => JSON.stringify([v]), status: 400, field: "body" },
  { name: "a JSON string", body: '"hello"', status: 400, field: "body" },
  { name: "a JSON number", body: "42", status: 400, field: "body" },
  { name: "JSON true", body: "true", status: 400, field: "body" },
  { name: "JSON null", body: "null", status: 400, field: "body" },
  { name: "a deeply nested JSON array", body: `${"[".repeat(5000)}${"]".repeat(5000)}`, status: 400, field: "body" },
  { name: "a __proto__ key", body: '{"__proto__":{"rbac_roles":["owner"]}}', status: 400 },
  { name: "a constructor.prototype key", body: '{"constructor":{"prototype":{"admin":true}}}', status: 400 },
  { name: "text/plain with a valid JSON body", body: (v) => JSON.stringify(v), contentType: "text/plain", status: 415 },
  { name: "text/plain;charset=utf-8 with a valid JSON body", body: (v) => JSON.stringify(v), contentType: "text/plain; charset=utf-8", status: 415 },
  { name: "form-urlencoded", body: "email=a%40b.co&password=x", contentType: "application/x-www-form-urlencoded", status: 415 },
  { name: "application/xml", body: "<user/>", contentType: "application/xml", status: 415 },
  { name: "multipart/form-data", body: "--b\r\n\r\nx\r\n--b--", contentType: "multipart/form-data; boundary=b", status: 415 },
  { name: "a valid JSON body without Content-Type", body: (v) => JSON.stringify(v), contentType: null, status: 415 },
  { name: "no body and no Content-Type", status: 400 },
];

// ---------------------------------------------------------------------------------------------

describe("on a shared deployment", () => {
  let d: Deployment;
  let srv: TestServer;

  beforeAll(async () => {
    srv = await startTestServer({ manualClose: true });
    d = await deploy(srv);
  });
  afterAll(async () => {
    await srv?.close();
  });

  describe("routing", () => {
    it("answers unknown routes, wrong methods and malformed URLs with JSON errors", async () => {
      const before = await snapshot(srv);
      const token = d.owner.token;
      const unknown = [
        ["GET", "/api/v2/nope"],
        ["POST", "/api/v2/nope"],
        ["GET", "/api/v2"],
        ["GET", "/api/v2/users/me/whatever"],
        ["POST", "/api/v2/users/me/whatever"],
        ["GET", "/api/v3/users/me"],
        ["GET", "/nope"],
      ] as const;
      await checkAll(
        unknown.flatMap(([m, p]) => [
          [m, p, undefined],
          [m, p, token],
        ] as const),
        ([m, p, t]) => `${m} ${p} ${t ? "with" : "without"} a token`,
        async ([method, path, t]) => {
          const body = await expectApiError(await raw(srv, method, path, { token: t, ...(method === "POST" ? { body: "{}" } : {}) }), 404);
          expect(body.message).toContain(path);
        },
      );

      // A known path with a method it does not have: 404 or 405, as JSON.
      const wrongMethod = [
        ["DELETE", "/api/v2/buildinfo"],
        ["PUT", "/api/v2/users"],
        ["PATCH", "/api/v2/users/me"],
        ["POST", "/api/v2/users/me/keys/tokens/whatever"],
        ["PUT", "/api/v2/organizations"],
        ["POST", "/api/v2/users/me/status/suspend"],
        ["OPTIONS", "/api/v2/users"],
      ] as const;
      await checkAll(
        wrongMethod,
        ([m, p]) => `${m} ${p}`,
        async ([method, path]) => expectApiError(await raw(srv, method, path, { token }), [404, 405]),
      );

      const lookups: Array<[string, string, number | number[]]> = [
        // A percent-encoding that does not decode is a client's mistake.
        ["GET", "/api/v2/users/%E0%A4%A", 400],
        ["GET", "/api/v2/organizations/%ZZ", 400],
        // A path parameter longer than the router accepts.
        ["GET", `/api/v2/users/${long(300)}`, [404, 414]],
        // Neither ids nor names of anything.
        ["GET", "/api/v2/users/no-such-user", 404],
        ["GET", `/api/v2/users/${UNKNOWN_UUID}`, 404],
        ["GET", "/api/v2/users/00000000-0000-0000-0000-000000000000", 404],
        ["GET", "/api/v2/users/not-a-uuid-but-long-and-hyphenated-xx", 404],
        ["GET", "/api/v2/organizations/no-such-org", 404],
        ["GET", `/api/v2/organizations/${UNKNOWN_UUID}`, 404],
        ["GET", "/api/v2/users/me/keys/tokens/no-such-token", 404],
        ["DELETE", "/api/v2/users/me/keys/NoSuchKey1", 404],
        ["DELETE", `/api/v2/users/me/keys/${long(200)}`, 404],
      ];
      await checkAll(
        lookups,
        ([m, p]) => `${m} ${p.slice(0, 80)}`,
        async ([method, path, status]) => expectApiError(await raw(srv, method, path, { token }), status),
      );
      expect(await snapshot(srv)).toEqual(before);
    });
  });

  describe("request body framing, on every route that takes a body", () => {
    it("rejects malformed JSON, non-objects and non-JSON content types, and changes nothing", async () => {
      const before = await snapshot(srv);
      const cases = bodyRoutes(d).flatMap((route) => FRAMING_CASES.map((c) => ({ route, c })));
      await checkAll(
        cases,
        ({ route, c }) => `${route.method} ${route.path} with ${c.name}`,
        async ({ route, c }) => {
          const body = typeof c.body === "function" ? c.body(route.valid) : c.body;
          return expectApiError(await raw(srv, route.method, route.path, { token: route.token, body, contentType: c.contentType }), c.status, c.field);
        },
      );
      expect(await snapshot(srv)).toEqual(before);
    });
  });

  describe("POST /api/v2/users/login", () => {
    it("validates the body, answers 401 for wrong credentials and creates no session", async () => {
      const before = await snapshot(srv);
      const email = "owner@example.com";
      await expectFieldErrors(srv, "POST", "/api/v2/users/login", undefined, [
        ["empty object", {}, "email"],
        ["missing password", { email }, "password"],
        ["missing email", { password: DEFAULT_PASSWORD }, "email"],
        ["email as a number", { email: 1, password: DEFAULT_PASSWORD }, "email"],
        ["email null", { email: null, password: DEFAULT_PASSWORD }, "email"],
        ["email as an array", { email: [email], password: DEFAULT_PASSWORD }, "email"],
        ["email as an operator object", { email: { $ne: "" }, password: DEFAULT_PASSWORD }, "email"],
        ["email empty", { email: "", password: DEFAULT_PASSWORD }, "email"],
        ["password empty", { email, password: "" }, "password"],
        ["password as a number", { email, password: 12345678 }, "password"],
        ["password as an operator object", { email, password: { $ne: "" } }, "password"],
        ["password too long", { email, password: long(257) }, "password"],
      ]);
      const both = await expectApiError(await send(srv, "POST", "/api/v2/users/login", undefined, {}), 400);
      expect(both.validations?.map((v) => v.field).sort()).toEqual(["email", "password"]);

      // Wrong credentials: 401 with the same message whether or not the email exists.
      const wrong = await expectApiError(await send(srv, "POST", "/api/v2/users/login", undefined, { email, password: "wrong-password" }), 401);
      const nobody = await expectApiError(
        await send(srv, "POST", "/api/v2/users/login", undefined, { email: "nobody@example.com", password: "wrong-password" }),
        401,
      );
      expect(wrong.message).toBe(nobody.message);
      expect(wrong.validations).toBeUndefined();
      // A user without a password login cannot log in with one.
      await expectApiError(await send(srv, "POST", "/api/v2/users/login", undefined, { email: "robot@example.com", password: "anything-at-all" }), 401);

      expect(await snapshot(srv)).toEqual(before);
    });
  });

  describe("POST /api/v2/users", () => {
    it("validates fields, refuses duplicates and unknown organizations, and creates nothing", async () => {
      const before = await snapshot(srv);
      const ok = { email: "carol@example.com", username: "carol", password: DEFAULT_PASSWORD };
      await expectFieldErrors(srv, "POST", "/api/v2/users", d.owner.token, [
        ["empty object", {}, "email"],
        ["missing username", { email: ok.email, password: ok.password }, "username"],
        ["email as a number", { ...ok, email: 7 }, "email"],
        ["email null", { ...ok, email: null }, "email"],
        ["email not an address", { ...ok, email: "carol" }, "email"],
        ["email too long", { ...ok, email: `${long(320)}@example.com` }, "email"],
        ["username as a number", { ...ok, username: 7 }, "username"],
        ["username too long", { ...ok, username: long(33) }, "username"],
        ["username with odd characters", { ...ok, username: "carol_!" }, "username"],
        ["username reserved", { ...ok, username: "me" }, "username"],
        ["name as an object", { ...ok, name: { first: "Carol" } }, "name"],
        ["name too long", { ...ok, name: long(129) }, "name"],
        ["password too short", { ...ok, password: "1234567" }, "password"],
        ["password too long", { ...ok, password: long(257) }, "password"],
        ["password as a number", { ...ok, password: 123456789 }, "password"],
        ["password missing for a password login", { email: ok.email, username: ok.username }, "password"],
        ["password given for login_type none", { ...ok, login_type: "none" }, "password"],
        ["login_type unknown", { ...ok, login_type: "github" }, "login_type"],
        ["login_type token (not for users)", { ...ok, login_type: "token" }, "login_type"],
        ["login_type as a number", { ...ok, login_type: 1 }, "login_type"],
        ["organization_ids as a string", { ...ok, organization_ids: d.defaultOrgId }, "organization_ids"],
        ["organization_ids with a non-UUID", { ...ok, organization_ids: ["coder"] }, "organization_ids"],
        ["organization_ids with null", { ...ok, organization_ids: [null] }, "organization_ids"],
        ["organization_ids with an unknown organization", { ...ok, organization_ids: [UNKNOWN_UUID] }, "organization_ids"],
        ["organization_ids mixing a real and an unknown organization", { ...ok, organization_ids: [d.defaultOrgId, UNKNOWN_UUID] }, "organization_ids"],
        ["organization_ids with too many entries", { ...ok, organization_ids: Array.from({ length: 101 }, () => randomUUID()) }, "organization_ids"],
      ]);

      // Taken username or email, in any case: 409 naming the field.
      await checkAll(
        [
          [{ ...ok, username: "bob" }, "username"],
          [{ ...ok, username: "BOB" }, "username"],
          [{ ...ok, email: "bob@example.com" }, "email"],
          [{ ...ok, email: "Bob@Example.COM" }, "email"],
        ] as const,
        ([body]) => JSON.stringify(body),
        async ([body, field]) => expectApiError(await send(srv, "POST", "/api/v2/users", d.owner.token, body), 409, field),
      );

      // A plain member may not create users, whatever the body.
      await expectApiError(await send(srv, "POST", "/api/v2/users", d.alice.token, ok), 403);
      await expectApiError(await send(srv, "POST", "/api/v2/users", d.alice.token, {}), 403);

      expect(await snapshot(srv)).toEqual(before);
    });
  });

  describe("PUT /api/v2/users/:user/profile", () => {
    it("validates the username and name, refuses taken names and ignores fields it does not own", async () => {
      const before = await snapshot(srv);
      const cases: FieldCases = [
        ["empty object", {}, "username"],
        ["username as a number", { username: 5 }, "username"],
        ["username null", { username: null }, "username"],
        ["username as an array", { username: ["bob"] }, "username"],
        ["username empty", { username: "" }, "username"],
        ["username too long", { username: long(33) }, "username"],
        ["username with a space", { username: "bob smith" }, "username"],
        ["username with a trailing hyphen", { username: "bob-" }, "username"],
        ["username reserved", { username: "me" }, "username"],
        ["username reserved, other case", { username: "Me" }, "username"],
        ["name as a number", { username: "bob", name: 7 }, "name"],
        ["name null", { username: "bob", name: null }, "name"],
        ["name too long", { username: "bob", name: long(129) }, "name"],
      ];
      await expectFieldErrors(srv, "PUT", `/api/v2/users/${d.bob.userId}/profile`, d.owner.token, cases);
      await expectFieldErrors(srv, "PUT", "/api/v2/users/me/profile", d.bob.token, cases);
      await checkAll(
        ["alice", "ALICE", "owner"],
        (username) => `username ${username}`,
        async (username) => expectApiError(await send(srv, "PUT", `/api/v2/users/${d.bob.userId}/profile`, d.owner.token, { username }), 409, "username"),
      );
      await expectApiError(await send(srv, "PUT", `/api/v2/users/${UNKNOWN_UUID}/profile`, d.owner.token, { username: "ghost" }), 404);
      await expectApiError(await send(srv, "PUT", "/api/v2/users/ghost/profile", d.owner.token, { username: "ghost" }), 404);
      // A user admin may not change an owner.
      await expectApiError(await send(srv, "PUT", `/api/v2/users/${d.owner.userId}/profile`, d.userAdmin.token, { username: "pwned" }), 403);
      expect(await snapshot(srv)).toEqual(before);

      // Unknown fields are ignored: a profile update cannot change email, roles, status or login type.
      const res = await send(srv, "PUT", "/api/v2/users/me/profile", d.bob.token, {
        username: "bob",
        name: "Bob",
        email: "evil@example.com",
        rbac_roles: ["owner"],
        roles: ["owner"],
        status: "suspended",
        login_type: "none",
        deleted: true,
        id: d.owner.userId,
      });
      expect(res.status).toBe(200);
      await res.json();
      expect(await d.owner.client.user(d.bob.userId)).toMatchObject({
        id: d.bob.userId,
        username: "bob",
        name: "Bob",
        email: "bob@example.com",
        status: "active",
        login_type: "password",
        roles: [],
      });
      expect((await d.owner.client.user(d.owner.userId)).username).toBe("owner");
    });
  });

  describe("PUT /api/v2/users/:user/password", () => {
    it("validates the new and old passwords and keeps the old password and sessions on failure", async () => {
      const before = await snapshot(srv);
      const good = "a-good-new-password";
      await expectFieldErrors(srv, "PUT", `/api/v2/users/${d.bob.userId}/password`, d.owner.token, [
        ["empty object", {}, "password"],
        ["password too short", { password: "short" }, "password"],
        ["password too long", { password: long(257) }, "password"],
        ["password as a number", { password: 123456789 }, "password"],
        ["password null", { password: null }, "password"],
        ["password as an object", { password: { value: good } }, "password"],
        ["old_password as a number", { old_password: 5, password: good }, "old_password"],
        ["old_password too long", { old_password: long(257), password: good }, "old_password"],
      ]);
      // For oneself the old password is required and must be right.
      await expectFieldErrors(srv, "PUT", "/api/v2/users/me/password", d.bob.token, [
        ["no old password", { password: good }, "old_password"],
        ["an empty old password", { old_password: "", password: good }, "old_password"],
        ["a wrong old password", { old_password: "not-the-password", password: good }, "old_password"],
        ["a right old password but a short new one", { old_password: DEFAULT_PASSWORD, password: "short" }, "password"],
      ]);
      // A user without a password login has no password to set.
      await expectApiError(await send(srv, "PUT", `/api/v2/users/${d.robot.id}/password`, d.owner.token, { password: good }), 400);
      await expectApiError(await send(srv, "PUT", `/api/v2/users/${UNKNOWN_UUID}/password`, d.owner.token, { password: good }), 404);
      // A user admin may not reset an owner's password.
      await expectApiError(await send(srv, "PUT", `/api/v2/users/${d.owner.userId}/password`, d.userAdmin.token, { password: good }), 403);

      expect(await snapshot(srv)).toEqual(before);
      // The old password still logs in and the existing session still works.
      const again = srv.anonymous();
      again.sessionToken = (await again.loginWithPassword("bob@example.com", DEFAULT_PASSWORD)).session_token;
      await again.logout();
      expect((await d.bob.client.user("me")).username).toBe("bob");
    });
  });

  describe("PUT /api/v2/users/:user/roles", () => {
    it("refuses malformed and unknown roles and changes no one's roles", async () => {
      const before = await snapshot(srv);
      const path = `/api/v2/users/${d.bob.userId}/roles`;
      await expectFieldErrors(srv, "PUT", path, d.owner.token, [
        ["empty object", {}, "roles"],
        ["roles null", { roles: null }, "roles"],
        ["roles as a string", { roles: "owner" }, "roles"],
        ["roles as an object", { roles: { owner: true } }, "roles"],
        ["a number among the roles", { roles: [1] }, "roles"],
        ["null among the roles", { roles: [null] }, "roles"],
        ["an unknown role", { roles: ["wizard"] }, "roles"],
        ["an unknown role next to a known one", { roles: ["auditor", "wizard"] }, "roles"],
        ["an organization role as a site role", { roles: ["organization-admin"] }, "roles"],
        ["an empty role name", { roles: [""] }, "roles"],
        ["a role name of the wrong case", { roles: ["Owner"] }, "roles"],
        ["a role name that is too long", { roles: [long(65)] }, "roles"],
        ["too many roles", { roles: Array.from({ length: 21 }, () => "auditor") }, "roles"],
      ]);
      // One's own roles cannot be changed, not even by an owner.
      await expectApiError(await send(srv, "PUT", "/api/v2/users/me/roles", d.owner.token, { roles: ["auditor"] }), 400);
      // A user admin may not grant owner, nor touch an owner.
      await expectApiError(await send(srv, "PUT", path, d.userAdmin.token, { roles: ["owner"] }), 403);
      await expectApiError(await send(srv, "PUT", `/api/v2/users/${d.owner.userId}/roles`, d.userAdmin.token, { roles: [] }), 403);
      // A plain member may not grant anything, not even to itself.
      await expectApiError(await send(srv, "PUT", "/api/v2/users/me/roles", d.bob.token, { roles: ["owner"] }), [400, 403]);
      await expectApiError(await send(srv, "PUT", `/api/v2/users/${UNKNOWN_UUID}/roles`, d.owner.token, { roles: [] }), 404);

      expect(await snapshot(srv)).toEqual(before);
      expect((await d.owner.client.userRoles(d.bob.userId)).roles).toEqual([]);
    });
  });

  describe("DELETE /api/v2/users/:user and status changes", () => {
    it("refuse unknown users, oneself and owners (for non-owners), and change nothing", async () => {
      const before = await snapshot(srv);
      const token = d.owner.token;
      const cases: Array<[string, string, string, number]> = [
        ["DELETE", `/api/v2/users/${UNKNOWN_UUID}`, token, 404],
        ["DELETE", "/api/v2/users/ghost", token, 404],
        ["DELETE", "/api/v2/users/me", token, 400],
        ["DELETE", `/api/v2/users/${d.owner.userId}`, token, 400],
        ["DELETE", "/api/v2/users/me", d.alice.token, 400],
        ["DELETE", `/api/v2/users/${d.owner.userId}`, d.userAdmin.token, 403],
        ["DELETE", `/api/v2/users/${d.bob.userId}`, d.alice.token, 404],
        ["PUT", "/api/v2/users/me/status/suspend", token, 400],
        ["PUT", "/api/v2/users/me/status/suspend", d.alice.token, 400],
        ["PUT", `/api/v2/users/${UNKNOWN_UUID}/status/suspend`, token, 404],
        ["PUT", `/api/v2/users/${d.owner.userId}/status/suspend`, d.userAdmin.token, 403],
      ];
      await checkAll(
        cases,
        ([m, p]) => `${m} ${p}`,
        async ([method, path, t, status]) => expectApiError(await raw(srv, method, path, { token: t }), status),
      );
      expect(await snapshot(srv)).toEqual(before);
    });
  });

  describe("GET /api/v2/users query parameters", () => {
    it("rejects unknown filters and out-of-range paging with 400 naming the parameter", async () => {
      const cases: Array<[string, string]> = [
        ["q=foo:bar", "q"],
        ["q=alice%20foo:bar", "q"],
        ["q=:alice", "q"],
        ["q=status:bogus", "q"],
        ["q=status:", "q"],
        ["q=role:wizard", "q"],
        ["q=role:organization-admin", "q"],
        ["q=login_type:github", "q"],
        [`q=${long(1025)}`, "q"],
        ["q=a&q=b", "q"],
        ["limit=-1", "limit"],
        ["limit=abc", "limit"],
        ["limit=1.5", "limit"],
        ["limit=1001", "limit"],
        ["limit=1e400", "limit"],
        ["limit=99999999999999999999", "limit"],
        ["limit=1&limit=2", "limit"],
        ["offset=-1", "offset"],
        ["offset=abc", "offset"],
        ["offset=0.5", "offset"],
        ["offset=1e30", "offset"],
        ["after_id=not-a-uuid", "after_id"],
        ["after_id=123", "after_id"],
        ["after_id=00000000-0000-0000-0000-00000000000g", "after_id"],
        [`after_id=${d.bob.userId}x`, "after_id"],
        ["after_id=bob", "after_id"],
      ];
      for (const [who, token] of [
        ["owner", d.owner.token],
        ["member", d.alice.token],
      ] as const) {
        await checkAll(
          cases,
          ([qs]) => `${who}: ?${qs.slice(0, 60)}`,
          async ([qs, field]) => expectApiError(await raw(srv, "GET", `/api/v2/users?${qs}`, { token }), 400, field),
        );
      }

      // Edges that are valid.
      const all = await d.owner.client.users();
      expect((await d.owner.client.users({ limit: 1000 })).users).toHaveLength(all.count);
      expect((await d.owner.client.users({ q: "status:active role:owner" })).users.map((u) => u.username)).toEqual(["owner"]);
      expect((await d.owner.client.users({ q: "%_\\'\"" })).users).toEqual([]);
      expect((await d.owner.client.users({ offset: 1_000_000 })).users).toEqual([]);
      // A well-formed id of no user: an empty page or a 400, never a 500.
      const unknownAfter = await raw(srv, "GET", `/api/v2/users?after_id=${UNKNOWN_UUID}`, { token: d.owner.token });
      if (unknownAfter.status === 200) expect(((await unknownAfter.json()) as { users: unknown[] }).users).toEqual([]);
      else await expectApiError(unknownAfter, 400, "after_id");
    });
  });

  describe("POST /api/v2/users/:user/keys/tokens", () => {
    it("validates name, lifetime and scope, refuses duplicates and issues nothing", async () => {
      const alice = d.alice.client;
      await alice.createToken("me", { token_name: "ci", lifetime_seconds: 3600 });
      const before = await snapshot(srv);
      const tokensBefore = await alice.tokens("me");
      await expectFieldErrors(srv, "POST", "/api/v2/users/me/keys/tokens", d.alice.token, [
        ["lifetime above the maximum", { lifetime_seconds: MAX_TOKEN_LIFETIME_S + 1 }, "lifetime_seconds"],
        ["lifetime far above the maximum", { lifetime_seconds: Number.MAX_SAFE_INTEGER }, "lifetime_seconds"],
        ["lifetime beyond safe integers", { lifetime_seconds: 1e300 }, "lifetime_seconds"],
        ["lifetime negative", { lifetime_seconds: -1 }, "lifetime_seconds"],
        ["lifetime zero", { lifetime_seconds: 0 }, "lifetime_seconds"],
        ["lifetime fractional", { lifetime_seconds: 1.5 }, "lifetime_seconds"],
        ["lifetime as a string", { lifetime_seconds: "3600" }, "lifetime_seconds"],
        ["lifetime null", { lifetime_seconds: null }, "lifetime_seconds"],
        ["lifetime as a boolean", { lifetime_seconds: true }, "lifetime_seconds"],
        ["token_name empty", { token_name: "" }, "token_name"],
        ["token_name too long", { token_name: long(65) }, "token_name"],
        ["token_name with a space", { token_name: "my token" }, "token_name"],
        ["token_name with a leading dot", { token_name: ".hidden" }, "token_name"],
        ["token_name with a slash", { token_name: "a/b" }, "token_name"],
        ["token_name non-ASCII", { token_name: "tökén" }, "token_name"],
        ["token_name as a number", { token_name: 5 }, "token_name"],
        ["token_name null", { token_name: null }, "token_name"],
        ["scope unknown", { scope: "admin" }, "scope"],
        ["scope as a number", { scope: 1 }, "scope"],
        ["scope as an array", { scope: ["all"] }, "scope"],
      ]);
      const over = await expectApiError(
        await send(srv, "POST", "/api/v2/users/me/keys/tokens", d.alice.token, { lifetime_seconds: MAX_TOKEN_LIFETIME_S + 1 }),
        400,
      );
      expect(over.validations?.[0]?.detail).toContain(String(MAX_TOKEN_LIFETIME_S));
      // Names are unique per user regardless of case.
      await checkAll(
        ["ci", "CI", "Ci"],
        (n) => `token_name ${n}`,
        async (token_name) => expectApiError(await send(srv, "POST", "/api/v2/users/me/keys/tokens", d.alice.token, { token_name }), 409, "token_name"),
      );
      await expectApiError(await send(srv, "POST", `/api/v2/users/${UNKNOWN_UUID}/keys/tokens`, d.owner.token, { token_name: "x" }), 404);
      // Someone who can see the user but not create keys for them: 403, and no validation first.
      await expectApiError(await send(srv, "POST", `/api/v2/users/${d.alice.userId}/keys/tokens`, d.auditor.token, { token_name: "planted" }), 403);
      await expectApiError(await send(srv, "POST", `/api/v2/users/${d.alice.userId}/keys/tokens`, d.auditor.token, { token_name: "" }), 403);

      expect(await snapshot(srv)).toEqual(before);
      expect(await alice.tokens("me")).toEqual(tokensBefore);
      // The maximum itself is fine.
      await alice.createToken("me", { token_name: "max", lifetime_seconds: MAX_TOKEN_LIFETIME_S });
    });
  });

  describe("POST /api/v2/organizations and PATCH /api/v2/organizations/:org", () => {
    it("validate fields, refuse taken names and non-admins, and change nothing", async () => {
      const before = await snapshot(srv);
      const token = d.owner.token;
      await expectFieldErrors(srv, "POST", "/api/v2/organizations", token, [
        ["empty object", {}, "name"],
        ["name as a number", { name: 5 }, "name"],
        ["name null", { name: null }, "name"],
        ["name empty", { name: "" }, "name"],
        ["name too long", { name: long(33) }, "name"],
        ["name with a space", { name: "my org" }, "name"],
        ["name with an underscore", { name: "my_org" }, "name"],
        ["display_name as a number", { name: "okorg", display_name: 1 }, "display_name"],
        ["display_name too long", { name: "okorg", display_name: long(129) }, "display_name"],
        ["description as an array", { name: "okorg", description: ["x"] }, "description"],
        ["description too long", { name: "okorg", description: long(1025) }, "description"],
      ]);
      await checkAll(
        ["coder", "CODER", "Secret"],
        (name) => `name ${name}`,
        async (name) => expectApiError(await send(srv, "POST", "/api/v2/organizations", token, { name }), 409, "name"),
      );

      const path = `/api/v2/organizations/${d.secret.id}`;
      await expectFieldErrors(srv, "PATCH", path, token, [
        ["name as a number", { name: 5 }, "name"],
        ["name null", { name: null }, "name"],
        ["name empty", { name: "" }, "name"],
        ["name too long", { name: long(33) }, "name"],
        ["name with a space", { name: "my org" }, "name"],
        ["display_name as a boolean", { display_name: false }, "display_name"],
        ["display_name too long", { display_name: long(129) }, "display_name"],
        ["description as a number", { description: 5 }, "description"],
        ["description too long", { description: long(1025) }, "description"],
        ["a good field next to a bad one", { display_name: "Fine", name: "bad name" }, "name"],
      ]);
      await expectApiError(await send(srv, "PATCH", path, token, { name: "CODER" }), 409, "name");
      await expectApiError(await send(srv, "PATCH", `/api/v2/organizations/${UNKNOWN_UUID}`, token, { display_name: "x" }), 404);
      await expectApiError(await send(srv, "PATCH", "/api/v2/organizations/no-such-org", token, { display_name: "x" }), 404);
      // Members may see but not change their organizations, nor create others.
      await expectApiError(await send(srv, "PATCH", `/api/v2/organizations/${d.defaultOrgId}`, d.alice.token, { display_name: "Mine" }), 403);
      await expectApiError(await send(srv, "PATCH", path, d.bob.token, { display_name: "Mine" }), 403);
      await expectApiError(await send(srv, "PATCH", path, d.bob.token, { name: "bad name" }), 403);
      await expectApiError(await raw(srv, "DELETE", `/api/v2/organizations/${d.defaultOrgId}`, { token: d.alice.token }), 403);
      await expectApiError(await send(srv, "POST", "/api/v2/organizations", d.alice.token, { name: "aliceorg" }), 403);
      await expectApiError(await send(srv, "POST", "/api/v2/organizations", d.alice.token, {}), 403);
      // The default organization cannot be deleted.
      await expectApiError(await raw(srv, "DELETE", `/api/v2/organizations/${d.defaultOrgId}`, { token }), 400);

      expect(await snapshot(srv)).toEqual(before);
      // Fields PATCH does not own are ignored.
      const res = await send(srv, "PATCH", path, token, { is_default: true, id: UNKNOWN_UUID, created_at: "2000-01-01T00:00:00Z" });
      expect(res.status).toBe(200);
      await res.json();
      expect(await d.owner.client.organization(d.secret.id)).toMatchObject({ id: d.secret.id, name: "secret", is_default: false });
    });
  });

  describe("PUT /api/v2/organizations/:org/members/:user/roles", () => {
    it("refuses malformed and unknown roles, non-members and non-admins, and changes nothing", async () => {
      const before = await snapshot(srv);
      const token = d.owner.token;
      await expectFieldErrors(srv, "PUT", `/api/v2/organizations/${d.defaultOrgId}/members/${d.bob.userId}/roles`, token, [
        ["empty object", {}, "roles"],
        ["roles null", { roles: null }, "roles"],
        ["roles as a string", { roles: "organization-admin" }, "roles"],
        ["a number among the roles", { roles: [3] }, "roles"],
        ["null among the roles", { roles: [null] }, "roles"],
        ["an unknown role", { roles: ["wizard"] }, "roles"],
        ["a site role as an organization role", { roles: ["owner"] }, "roles"],
        ["an unknown role next to a known one", { roles: ["organization-admin", "org-wizard"] }, "roles"],
        ["a role name that is too long", { roles: [long(65)] }, "roles"],
        ["too many roles", { roles: Array.from({ length: 21 }, () => "organization-admin") }, "roles"],
      ]);
      const org = `/api/v2/organizations/${d.defaultOrgId}`;
      const cases: Array<[string, string, string, unknown, number]> = [
        ["an unknown organization", `/api/v2/organizations/${UNKNOWN_UUID}/members/${d.bob.userId}/roles`, token, { roles: [] }, 404],
        ["an unknown user", `${org}/members/${UNKNOWN_UUID}/roles`, token, { roles: [] }, 404],
        ["an unknown username", `${org}/members/ghost/roles`, token, { roles: [] }, 404],
        ["a user who is not a member", `/api/v2/organizations/${d.secret.id}/members/${d.alice.userId}/roles`, token, { roles: [] }, 404],
        ["oneself", `${org}/members/${d.owner.userId}/roles`, token, { roles: [] }, 400],
        ["a plain member handing out roles", `${org}/members/${d.bob.userId}/roles`, d.alice.token, { roles: ["organization-admin"] }, 403],
        ["a plain member raising itself", `${org}/members/${d.alice.userId}/roles`, d.alice.token, { roles: ["organization-admin"] }, 400],
      ];
      await checkAll(
        cases,
        ([what]) => what,
        async ([, path, t, body, status]) => expectApiError(await send(srv, "PUT", path, t, body), status),
      );
      expect(await snapshot(srv)).toEqual(before);
    });
  });

  describe("objects the caller may not see", () => {
    it("answers 404 for other users and their keys, exactly as for ids that do not exist, and changes nothing", async () => {
      const bobId = d.bob.userId;
      await d.bob.client.createToken("me", { token_name: "bob-ci" });
      const bobKey = (await d.bob.client.tokens("me")).find((k) => k.token_name === "bob-ci")!;
      const bobSessionKeyId = keyIdOf(d.bob.token);
      const alice = d.alice.token;
      const before = await snapshot(srv);
      const bobTokensBefore = await d.bob.client.tokens("me");

      // The 404 for a hidden user is indistinguishable from one for a user that does not exist.
      const hidden = await expectApiError(await raw(srv, "GET", `/api/v2/users/${bobId}`, { token: alice }), 404);
      expect(hidden).toEqual(await expectApiError(await raw(srv, "GET", `/api/v2/users/${UNKNOWN_UUID}`, { token: alice }), 404));
      const hiddenByName = await expectApiError(await raw(srv, "GET", "/api/v2/users/bob", { token: alice }), 404);
      expect(hiddenByName).toEqual(await expectApiError(await raw(srv, "GET", "/api/v2/users/nobody", { token: alice }), 404));

      const requests = [bobId, "bob", "BOB"].flatMap((target): Array<[string, string, unknown]> => {
        const u = `/api/v2/users/${target}`;
        return [
          ["GET", u, undefined],
          ["GET", `${u}/roles`, undefined],
          ["GET", `${u}/organizations`, undefined],
          ["GET", `${u}/keys/tokens`, undefined],
          ["GET", `${u}/keys/tokens/bob-ci`, undefined],
          ["POST", `${u}/keys/tokens`, { token_name: "planted" }],
          ["POST", `${u}/keys/tokens`, { token_name: "" }],
          ["DELETE", `${u}/keys/${bobKey.id}`, undefined],
          ["DELETE", `${u}/keys/${bobSessionKeyId}`, undefined],
          ["PUT", `${u}/profile`, { username: "hacked" }],
          ["PUT", `${u}/profile`, { username: "" }],
          ["PUT", `${u}/password`, { password: "hijacked-password" }],
          ["PUT", `${u}/password`, { old_password: DEFAULT_PASSWORD, password: "hijacked-password" }],
          ["PUT", `${u}/roles`, { roles: ["owner"] }],
          ["PUT", `${u}/roles`, { roles: [] }],
          ["PUT", `${u}/roles`, { roles: ["wizard"] }],
          ["PUT", `${u}/status/suspend`, undefined],
          ["PUT", `${u}/status/activate`, undefined],
          ["DELETE", u, undefined],
        ];
      });
      // Someone else's key id through one's own path (and the owner through the wrong user's path).
      requests.push(
        ["DELETE", `/api/v2/users/me/keys/${bobKey.id}`, undefined],
        ["DELETE", `/api/v2/users/me/keys/${bobSessionKeyId}`, undefined],
        ["DELETE", `/api/v2/users/${d.alice.userId}/keys/${bobKey.id}`, undefined],
      );
      await checkAll(
        requests,
        ([m, p, b]) => `alice: ${m} ${p} ${b === undefined ? "" : JSON.stringify(b)}`,
        async ([method, path, body]) => expectApiError(await send(srv, method, path, alice, body), 404),
      );
      await expectApiError(await raw(srv, "DELETE", `/api/v2/users/alice/keys/${bobKey.id}`, { token: d.owner.token }), 404);

      // A plain member lists only itself.
      const list = await raw(srv, "GET", "/api/v2/users", { token: alice });
      expect(list.status).toBe(200);
      expect(((await list.json()) as { users: Array<{ username: string }> }).users.map((u) => u.username)).toEqual(["alice"]);

      // An auditor sees users (so changing one is 403) but not their API keys (404).
      const aud = d.auditor.token;
      expect((await d.auditor.client.user(bobId)).username).toBe("bob");
      await checkAll(
        [
          ["PUT", `/api/v2/users/${bobId}/profile`, { username: "hacked" }, 403],
          ["PUT", `/api/v2/users/${bobId}/password`, { password: "hijacked-password" }, 403],
          ["PUT", `/api/v2/users/${bobId}/status/suspend`, undefined, 403],
          ["PUT", `/api/v2/users/${bobId}/roles`, { roles: ["auditor"] }, 403],
          ["DELETE", `/api/v2/users/${bobId}`, undefined, 403],
          ["GET", `/api/v2/users/${bobId}/keys/tokens`, undefined, 404],
          ["GET", `/api/v2/users/${bobId}/keys/tokens/bob-ci`, undefined, 404],
          ["DELETE", `/api/v2/users/${bobId}/keys/${bobKey.id}`, undefined, 404],
        ] as Array<[string, string, unknown, number]>,
        ([m, p]) => `auditor: ${m} ${p}`,
        async ([method, path, body, status]) => expectApiError(await send(srv, method, path, aud, body), status),
      );

      expect(await snapshot(srv)).toEqual(before);
      expect(await d.bob.client.tokens("me")).toEqual(bobTokensBefore);
      expect((await d.bob.client.user("me")).username).toBe("bob");
    });

    it("answers 404 for an organization the caller is not a member of, and changes nothing", async () => {
      const alice = d.alice.token;
      const before = await snapshot(srv);

      const hidden = await expectApiError(await raw(srv, "GET", `/api/v2/organizations/${d.secret.id}`, { token: alice }), 404);
      expect(hidden).toEqual(await expectApiError(await raw(srv, "GET", `/api/v2/organizations/${UNKNOWN_UUID}`, { token: alice }), 404));
      expect(await expectApiError(await raw(srv, "GET", "/api/v2/organizations/secret", { token: alice }), 404)).toEqual(
        await expectApiError(await raw(srv, "GET", "/api/v2/organizations/nothere", { token: alice }), 404),
      );

      const requests = [d.secret.id, "secret", "SECRET"].flatMap((org): Array<[string, string, unknown]> => {
        const o = `/api/v2/organizations/${org}`;
        return [
          ["GET", o, undefined],
          ["PATCH", o, { display_name: "Hacked" }],
          ["PATCH", o, { name: "bad name" }],
          ["DELETE", o, undefined],
          ["GET", `${o}/members`, undefined],
          ["POST", `${o}/members/alice`, undefined],
          ["POST", `${o}/members/${d.alice.userId}`, undefined],
          ["DELETE", `${o}/members/bob`, undefined],
          ["DELETE", `${o}/members/owner`, undefined],
          ["PUT", `${o}/members/bob/roles`, { roles: ["organization-admin"] }],
          ["PUT", `${o}/members/alice/roles`, { roles: ["organization-admin"] }],
          ["PUT", `${o}/members/bob/roles`, { roles: ["wizard"] }],
        ];
      });
      await checkAll(
        requests,
        ([m, p, b]) => `alice: ${m} ${p} ${b === undefined ? "" : JSON.stringify(b)}`,
        async ([method, path, body]) => expectApiError(await send(srv, method, path, alice, body), 404),
      );
      // The listing does not mention it either, nor does bob's organization list to alice.
      expect((await d.alice.client.organizations()).map((o) => o.name)).toEqual(["coder"]);
      await expectApiError(await raw(srv, "GET", `/api/v2/users/${d.bob.userId}/organizations`, { token: alice }), 404);

      expect(await snapshot(srv)).toEqual(before);
      expect((await d.owner.client.organization(d.secret.id)).display_name).toBe("Secret");
      expect((await d.owner.client.organizationMembers(d.secret.id)).map((m) => m.username).sort()).toEqual(["bob", "owner"]);
    });
  });

  describe("NUL characters", () => {
    // Postgres text cannot hold U+0000: the value must be refused as bad input, not reach the database.
    it("are refused as bad input in bodies, paths and queries, never a 500", async () => {
      const before = await snapshot(srv);
      const token = d.owner.token;
      const nul = "a\u0000b";
      const bodies: Array<[string, string, string | undefined, unknown, number | number[], string | undefined]> = [
        ["POST", "/api/v2/users/login", undefined, { email: "owner\u0000@example.com", password: DEFAULT_PASSWORD }, [400, 401], undefined],
        ["POST", "/api/v2/users/login", undefined, { email: "owner@example.com", password: "pass\u0000word" }, [400, 401], undefined],
        ["POST", "/api/v2/users", token, { email: "c@example.com", username: "carol", name: nul, password: DEFAULT_PASSWORD }, 400, "name"],
        ["PUT", `/api/v2/users/${d.bob.userId}/profile`, token, { username: "bob", name: nul }, 400, "name"],
        ["POST", "/api/v2/organizations", token, { name: "nulorg", display_name: nul }, 400, "display_name"],
        ["POST", "/api/v2/organizations", token, { name: "nulorg", description: nul }, 400, "description"],
        ["PATCH", `/api/v2/organizations/${d.secret.id}`, token, { display_name: nul }, 400, "display_name"],
        ["PATCH", `/api/v2/organizations/${d.secret.id}`, token, { description: nul }, 400, "description"],
      ];
      const others: Array<[string, string, undefined, undefined, number | number[], string | undefined]> = [
        ["GET", "/api/v2/users/a%00b", undefined, undefined, [400, 404], undefined],
        ["GET", "/api/v2/organizations/a%00b", undefined, undefined, [400, 404], undefined],
        ["GET", "/api/v2/users/me/keys/tokens/a%00b", undefined, undefined, [400, 404], undefined],
        ["DELETE", "/api/v2/users/me/keys/a%00b", undefined, undefined, [400, 404], undefined],
        ["GET", "/api/v2/users?q=a%00b", undefined, undefined, 400, "q"],
        ["GET", "/api/v2/users?q=username:a%00b", undefined, undefined, 400, "q"],
      ];
      await checkAll(
        [...bodies, ...others],
        ([m, p, , b]) => `${m} ${p} ${b === undefined ? "" : JSON.stringify(b)}`,
        async ([method, path, t, body, status, field]) =>
          expectApiError(await send(srv, method, path, body === undefined ? token : t, body), status, field),
      );
      expect(await snapshot(srv)).toEqual(before);
    });
  });
});

// ---------------------------------------------------------------------------------------------

describe("POST /api/v2/users/first (on an empty deployment)", () => {
  it("validates every field before creating anything", async () => {
    const srv = await startTestServer();
    const ok = { email: "first@example.com", username: "first", password: DEFAULT_PASSWORD };
    // A new deployment has only its default organization.
    const orgsBefore = await srv.db.store.kysely.selectFrom("organizations").selectAll().execute();
    expect(orgsBefore.map((o) => o.is_default)).toEqual([true]);
    await expectFieldErrors(srv, "POST", "/api/v2/users/first", undefined, [
      ["empty object", {}, "email"],
      ["missing username", { email: ok.email, password: ok.password }, "username"],
      ["missing password", { email: ok.email, username: ok.username }, "password"],
      ["email as a number", { ...ok, email: 42 }, "email"],
      ["email null", { ...ok, email: null }, "email"],
      ["email not an address", { ...ok, email: "not-an-email" }, "email"],
      ["email too long", { ...ok, email: `${long(320)}@example.com` }, "email"],
      ["username as a number", { ...ok, username: 123 }, "username"],
      ["username null", { ...ok, username: null }, "username"],
      ["username empty", { ...ok, username: "" }, "username"],
      ["username too long", { ...ok, username: long(33) }, "username"],
      ["username with a space", { ...ok, username: "has space" }, "username"],
      ["username with a leading hyphen", { ...ok, username: "-lead" }, "username"],
      ["username with a double hyphen", { ...ok, username: "a--b" }, "username"],
      ["username reserved", { ...ok, username: "me" }, "username"],
      ["username reserved, other case", { ...ok, username: "ME" }, "username"],
      ["name as a number", { ...ok, name: 5 }, "name"],
      ["name too long", { ...ok, name: long(129) }, "name"],
      ["name with a NUL character", { ...ok, name: "a\u0000b" }, "name"],
      ["password too short", { ...ok, password: "short" }, "password"],
      ["password too long", { ...ok, password: long(257) }, "password"],
      ["password as a number", { ...ok, password: 12345678 }, "password"],
      ["password null", { ...ok, password: null }, "password"],
    ]);
    const all = await expectApiError(await send(srv, "POST", "/api/v2/users/first", undefined, {}), 400);
    expect(all.validations?.map((v) => v.field).sort()).toEqual(["email", "password", "username"]);
    await checkAll(
      FRAMING_CASES,
      (c) => c.name,
      async (c) => {
        const body = typeof c.body === "function" ? c.body(ok) : c.body;
        return expectApiError(await raw(srv, "POST", "/api/v2/users/first", { body, contentType: c.contentType }), c.status, c.field);
      },
    );

    // Nothing was created or changed: no user, the organizations as they were.
    expect(await srv.db.store.countUsers()).toBe(0);
    expect(await srv.anonymous().hasFirstUser()).toBe(false);
    expect(await srv.db.store.kysely.selectFrom("organizations").selectAll().execute()).toEqual(orgsBefore);
    // Nothing to log in to yet.
    await expectApiError(await send(srv, "POST", "/api/v2/users/login", undefined, { email: ok.email, password: ok.password }), 401);

    await srv.anonymous().createFirstUser(ok);
    const before = await snapshot(srv);
    // Validation still comes first once the first user exists; a valid second attempt is a conflict.
    await expectApiError(await send(srv, "POST", "/api/v2/users/first", undefined, { ...ok, username: long(40) }), 400, "username");
    await expectApiError(await send(srv, "POST", "/api/v2/users/first", undefined, { ...ok, email: "other@example.com", username: "other" }), 409);
    expect(await snapshot(srv)).toEqual(before);
  });
});

describe("oversized bodies", () => {
  it("answer 413 past the server's limit, by Content-Length or chunked, and change nothing", async () => {
    const limit = 2048;
    const srv = await startTestServer({ maxRequestBodyBytes: limit });
    const d = await deploy(srv);
    const before = await snapshot(srv);

    await checkAll(
      bodyRoutes(d),
      (r) => `${r.method} ${r.path}`,
      async (route) => {
        // The valid body, padded with an extra field well past the limit.
        const body = JSON.stringify({ ...(route.valid as object), padding: long(limit * 2, "x") });
        return expectApiError(await raw(srv, route.method, route.path, { token: route.token, body }), 413);
      },
    );
    // Also when the body is not JSON at all.
    await expectApiError(await raw(srv, "POST", "/api/v2/users/login", { body: long(limit * 2, "x") }), [413, 400]);

    // Without a Content-Length: the limit is enforced while reading.
    const enc = new TextEncoder();
    const chunk = enc.encode(`{"email":"owner@example.com","password":"${long(1024, "p")}`);
    const stream = new ReadableStream<Uint8Array>({
      start(ctl) {
        for (let i = 0; i < 4; i++) ctl.enqueue(chunk);
        ctl.enqueue(enc.encode('"}'));
        ctl.close();
      },
    });
    const chunked = await fetch(`${srv.url}/api/v2/users/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: stream,
      duplex: "half",
    } as RequestInit & { duplex: "half" });
    await expectApiError(chunked, 413);

    // Just under the limit is fine (a wrong password here, so 401, not 413).
    const small = JSON.stringify({ email: "owner@example.com", password: long(200, "p") });
    expect(small.length).toBeLessThan(limit);
    await expectApiError(await raw(srv, "POST", "/api/v2/users/login", { body: small }), 401);

    expect(await snapshot(srv)).toEqual(before);
  });
});

// ---------------------------------------------------------------------------------------------

describe("session tokens", () => {
  let d: Deployment;
  let srv: TestServer;

  beforeAll(async () => {
    srv = await startTestServer({ manualClose: true });
    d = await deploy(srv);
  });
  afterAll(async () => {
    await srv?.close();
  });

  it("answers 401 for missing, malformed, unknown and forged tokens, by header or cookie, without touching the real key", async () => {
    const bobSession = d.bob.token;
    const bobApi = (await d.bob.client.createToken("me", { token_name: "ci" })).key;
    const sessionId = keyIdOf(bobSession);
    const swapCase = (s: string) => [...s].map((ch) => (ch === ch.toUpperCase() ? ch.toLowerCase() : ch.toUpperCase())).join("");
    // Make the keys "unused for minutes", so that an accepted request would move last_used.
    const old = new Date(Date.now() - 5 * 60_000);
    await srv.db.store.kysely.updateTable("api_keys").set({ last_used: old }).where("user_id", "=", d.bob.userId).execute();
    await invalidateAuthCache(srv, d.bob.userId);
    const before = await snapshot(srv);

    const bad: Array<[string, string]> = [
      ["malformed", "abc"],
      ["only an id", sessionId],
      ["id and dash", `${sessionId}-`],
      ["a secret too short", `${sessionId}-${"x".repeat(21)}`],
      ["a secret too long", `${bobSession}x`],
      ["non-alphanumeric", `${sessionId}-${"x".repeat(21)}_`],
      ["a bearer prefix", `Bearer ${bobSession}`],
      ["two tokens", `${bobSession},${bobSession}`],
      ["well-formed but unknown", WELL_FORMED_UNKNOWN_TOKEN],
      ["a real session id with a wrong secret", `${sessionId}-${"x".repeat(22)}`],
      ["a real API key id with a wrong secret", `${keyIdOf(bobApi)}-${swapCase(bobApi.split("-")[1]!)}`],
      ["a real id in the wrong case", `${swapCase(sessionId)}-${bobSession.split("-")[1]!}`],
      ["the id and secret swapped", `${bobSession.split("-")[1]!}-${sessionId}`],
    ];
    const requests = [
      ["GET", "/api/v2/users/me", undefined],
      ["GET", "/api/v2/users", undefined],
      ["POST", "/api/v2/users/me/keys/tokens", JSON.stringify({ token_name: "sneaky" })],
      ["POST", "/api/v2/users", JSON.stringify({ email: "x@example.com", username: "x", password: DEFAULT_PASSWORD })],
      // Validation must not run (nor leak) before authentication.
      ["POST", "/api/v2/organizations", "{}"],
      ["PUT", "/api/v2/users/me/profile", JSON.stringify({ username: "" })],
    ] as const;
    const cases = bad.flatMap(([what, token]) =>
      (
        [
          ["header", { token }],
          ["cookie", { cookie: `${SESSION_TOKEN_COOKIE}=${token}` }],
        ] as const
      ).flatMap(([via, opts]) => requests.map(([method, path, body]) => ({ what, via, opts, method, path, body }))),
    );
    // Missing altogether, or somewhere else than where the server looks.
    const missing: Array<[string, RawOptions]> = [
      ["no token", {}],
      ["an empty header", { token: "" }],
      ["an empty cookie", { cookie: `${SESSION_TOKEN_COOKIE}=` }],
      ["the token in another cookie", { cookie: `other=${bobSession}` }],
    ];
    await checkAll(
      [...missing.flatMap(([what, opts]) => requests.map(([method, path, body]) => ({ what, via: "-", opts, method, path, body }))), ...cases],
      (c) => `${c.what} by ${c.via}: ${c.method} ${c.path}`,
      async (c) => {
        const err = await expectApiError(await raw(srv, c.method, c.path, { ...c.opts, body: c.body }), 401);
        expect(err.validations).toBeUndefined();
      },
    );
    // A failed authentication is not a use of the real key, and nothing else changed.
    expect(await lastUsed(srv, sessionId)).toEqual(old);
    expect(await lastUsed(srv, keyIdOf(bobApi))).toEqual(old);
    expect(await snapshot(srv)).toEqual(before);

    // The cookie works when the token is good, also among other cookies.
    for (const cookie of [`${SESSION_TOKEN_COOKIE}=${d.alice.token}`, `theme=dark; ${SESSION_TOKEN_COOKIE}=${d.alice.token}; lang=en`]) {
      const res = await raw(srv, "GET", "/api/v2/users/me", { cookie });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { username: string }).username).toBe("alice");
    }
    // A good request does count as a use (so the last_used checks above prove something).
    expect((await d.bob.client.user("me")).username).toBe("bob");
    await vi.waitFor(async () => expect((await lastUsed(srv, sessionId)).getTime()).toBeGreaterThan(old.getTime()));
  });

  it("answers 401 for expired tokens and sessions, and does not revive them", async () => {
    const alice = d.alice;
    const api = (await alice.client.createToken("me", { token_name: "short" })).key;
    const session = alice.token;
    const old = new Date(Date.now() - 5 * 60_000);
    const past = new Date(Date.now() - 1000);
    await srv.db.store.kysely
      .updateTable("api_keys")
      .set({ expires_at: past, last_used: old })
      .where("id", "in", [keyIdOf(api), keyIdOf(session)])
      .execute();
    await invalidateAuthCache(srv, alice.userId);
    const before = await snapshot(srv);

    await checkAll(
      [api, session].flatMap((token) => [
        ["GET", "/api/v2/users/me", { token }],
        ["GET", "/api/v2/users/me", { cookie: `${SESSION_TOKEN_COOKIE}=${token}` }],
        ["POST", "/api/v2/users/me/keys/tokens", { token, body: JSON.stringify({ token_name: "renewed" }) }],
        ["PUT", "/api/v2/users/me/profile", { token, body: JSON.stringify({ username: "alice2" }) }],
        ["POST", "/api/v2/users/logout", { token }],
      ] as Array<[string, string, RawOptions]>),
      ([m, p, o]) => `${o.token === api ? "API token" : "session"} ${o.cookie ? "cookie" : "header"}: ${m} ${p}`,
      async ([method, path, opts]) => expectApiError(await raw(srv, method, path, opts), 401),
    );
    // Rejected requests neither slide the expiry forward nor count as a use.
    const rows = await srv.db.store.kysely.selectFrom("api_keys").select(["expires_at", "last_used"]).where("id", "in", [keyIdOf(api), keyIdOf(session)]).execute();
    expect(rows).toEqual([
      { expires_at: past, last_used: old },
      { expires_at: past, last_used: old },
    ]);
    expect(await snapshot(srv)).toEqual(before);
  });

  it("answers 401 for the tokens of a deleted user and of a logged-out session", async () => {
    const carol = await createUserWithRoles(srv, d.owner.client, "carol");
    const carolSession = tokenOf(carol.client);
    const carolApi = (await carol.client.createToken("me", { token_name: "ci" })).key;
    const viaApi = srv.anonymous();
    viaApi.sessionToken = carolApi;
    expect((await viaApi.user("me")).username).toBe("carol");

    await d.owner.client.deleteUser(carol.userId);
    await checkAll(
      [carolSession, carolApi].flatMap((token) => [
        ["GET", "/api/v2/users/me", { token }],
        ["GET", "/api/v2/users/me", { cookie: `${SESSION_TOKEN_COOKIE}=${token}` }],
        ["POST", "/api/v2/users/me/keys/tokens", { token, body: JSON.stringify({ token_name: "again" }) }],
        ["PUT", "/api/v2/users/me/profile", { token, body: JSON.stringify({ username: "zombie" }) }],
      ] as Array<[string, string, RawOptions]>),
      ([m, p, o]) => `${o.token === carolApi ? "API token" : "session"} ${o.cookie ? "cookie" : "header"}: ${m} ${p}`,
      async ([method, path, opts]) => expectApiError(await raw(srv, method, path, opts), 401),
    );
    // The deleted user is gone for the owner too, and cannot log in.
    await expectApiError(await raw(srv, "GET", `/api/v2/users/${carol.userId}`, { token: d.owner.token }), 404);
    await expectApiError(await raw(srv, "DELETE", `/api/v2/users/${carol.userId}`, { token: d.owner.token }), 404);
    await expectApiError(await send(srv, "POST", "/api/v2/users/login", undefined, { email: "carol@example.com", password: DEFAULT_PASSWORD }), 401);
    expect(await srv.db.store.kysely.selectFrom("api_keys").select("id").where("user_id", "=", carol.userId).execute()).toEqual([]);

    // A logged-out session is dead; logging out again is 401 too.
    const c = srv.anonymous();
    const session = (await c.loginWithPassword("bob@example.com", DEFAULT_PASSWORD)).session_token;
    c.sessionToken = session;
    await c.logout();
    await expectApiError(await raw(srv, "GET", "/api/v2/users/me", { token: session }), 401);
    await expectApiError(await raw(srv, "POST", "/api/v2/users/logout", { token: session }), 401);
  });
});
