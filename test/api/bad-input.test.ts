// Bad input across the API: malformed and mistyped bodies, wrong content types, oversized
// bodies, out-of-range fields and query parameters, bad tokens, other users' objects and
// unknown routes. Every error must be the API's JSON error shape with the right status, never
// a 500 or a stack trace, and a rejected request must change nothing.
import { randomUUID } from "node:crypto";
import { describe, expect, it, vi } from "vitest";
import { SESSION_TOKEN_COOKIE, SESSION_TOKEN_HEADER, type Client } from "../../src/codersdk/index.js";
import { createFirstUser, createUserWithRoles, DEFAULT_PASSWORD, startTestServer, type TestServer } from "../helpers/coderd.js";

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

/**
 * Checks a raw fetch Response is one of the API's JSON errors: the status, a JSON body with a
 * non-empty message, an optional string detail, well-formed validations naming `field` (exactly,
 * or as the parent of a nested path like "roles.0") when given, and no stack trace anywhere.
 */
async function expectApiError(res: Response, status: number | readonly number[], field?: string): Promise<ApiErrorBody> {
  const text = await res.text();
  const where = `${res.status} ${new URL(res.url).pathname}: ${text.slice(0, 500)}`;
  const statuses = typeof status === "number" ? [status] : status;
  expect(statuses, where).toContain(res.status);
  expect(res.headers.get("content-type") ?? "", where).toMatch(/^application\/json/);
  let parsed: unknown;
  expect(() => (parsed = JSON.parse(text)), where).not.toThrow();
  expect(parsed, where).toBeTypeOf("object");
  expect(Array.isArray(parsed), where).toBe(false);
  const body = parsed as ApiErrorBody & Record<string, unknown>;
  expect(typeof body.message, where).toBe("string");
  expect(body.message.length, where).toBeGreaterThan(0);
  if (body.detail !== undefined) expect(typeof body.detail, where).toBe("string");
  // Only the contract's keys: nothing of the framework's own error shape (code, statusCode, error, stack).
  expect(Object.keys(body).filter((k) => !["message", "detail", "validations"].includes(k)), where).toEqual([]);
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
      `${where}\nexpected validations to name "${field}", got ${JSON.stringify(fields)}`,
    ).toBe(true);
  }
  return body;
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

/** A JSON request: `body` is serialized as is, whatever its type. */
function sendJson(srv: TestServer, method: string, path: string, token: string | undefined, body: unknown): Promise<Response> {
  return raw(srv, method, path, { token, body: JSON.stringify(body) });
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
const WELL_FORMED_UNKNOWN_TOKEN = `${"Zz9Zz9Zz9Z"}-${"Qq1Qq1Qq1Qq1Qq1Qq1Qq1Qq"}`;

/** An owner, two plain members and a second organization the members do not belong to. */
async function standardSetup(srv: TestServer) {
  const first = await createFirstUser(srv);
  const owner = first.client;
  const alice = await createUserWithRoles(srv, owner, "alice");
  const bob = await createUserWithRoles(srv, owner, "bob");
  const secret = await owner.createOrganization({ name: "secret", display_name: "Secret" });
  return { owner, ownerId: first.userId, defaultOrgId: first.organizationId, alice, bob, secret };
}

// ---------------------------------------------------------------------------------------------

describe("routing", () => {
  it("answers unknown routes, wrong methods and malformed URLs with JSON errors", async () => {
    const srv = await startTestServer();
    const { owner } = await standardSetup(srv);
    const token = tokenOf(owner);

    for (const [method, path] of [
      ["GET", "/api/v2/nope"],
      ["POST", "/api/v2/nope"],
      ["GET", "/api/v2/users/me/whatever"],
      ["POST", "/api/v2/users/me/whatever"],
      ["GET", "/api/v3/users/me"],
      ["GET", "/nope"],
    ] as const) {
      for (const t of [undefined, token]) {
        const res = await raw(srv, method, path, { token: t, ...(method === "POST" ? { body: "{}" } : {}) });
        const body = await expectApiError(res, 404);
        expect(body.message).toContain(path);
      }
    }

    // A known path with a method it does not have: 404 or 405, as JSON.
    for (const [method, path] of [
      ["DELETE", "/api/v2/buildinfo"],
      ["PUT", "/api/v2/users"],
      ["PATCH", "/api/v2/users/me"],
      ["POST", "/api/v2/users/me/keys/tokens/whatever"],
      ["PUT", "/api/v2/organizations"],
      ["OPTIONS", "/api/v2/users"],
    ] as const) {
      await expectApiError(await raw(srv, method, path, { token }), [404, 405]);
    }

    // A percent-encoding that does not decode is a client's mistake.
    await expectApiError(await raw(srv, "GET", "/api/v2/users/%E0%A4%A", { token }), 400);
    // A path parameter longer than the router accepts.
    await expectApiError(await raw(srv, "GET", `/api/v2/users/${long(300)}`, { token }), [404, 414]);
    // Names that are neither ids nor existing names.
    await expectApiError(await raw(srv, "GET", "/api/v2/users/no-such-user", { token }), 404);
    await expectApiError(await raw(srv, "GET", `/api/v2/users/${UNKNOWN_UUID}`, { token }), 404);
    await expectApiError(await raw(srv, "GET", "/api/v2/users/00000000-0000-0000-0000-000000000000", { token }), 404);
    await expectApiError(await raw(srv, "GET", "/api/v2/organizations/no-such-org", { token }), 404);
    await expectApiError(await raw(srv, "GET", `/api/v2/organizations/${UNKNOWN_UUID}`, { token }), 404);
    await expectApiError(await raw(srv, "GET", "/api/v2/users/me/keys/tokens/no-such-token", { token }), 404);
    await expectApiError(await raw(srv, "DELETE", "/api/v2/users/me/keys/NoSuchKey1", { token }), 404);
  });
});

// ---------------------------------------------------------------------------------------------

interface BodyRoute {
  method: string;
  path: string;
  token?: string;
  /** A body the route would accept, used where only the framing is wrong. */
  valid: unknown;
}

async function bodyRoutes(srv: TestServer): Promise<BodyRoute[]> {
  const s = await standardSetup(srv);
  const token = tokenOf(s.owner);
  const bob = s.bob.userId;
  return [
    { method: "POST", path: "/api/v2/users/first", valid: { email: "x@example.com", username: "x", password: DEFAULT_PASSWORD } },
    { method: "POST", path: "/api/v2/users/login", valid: { email: "owner@example.com", password: DEFAULT_PASSWORD } },
    { method: "POST", path: "/api/v2/users", token, valid: { email: "new@example.com", username: "newuser", password: DEFAULT_PASSWORD } },
    { method: "PUT", path: `/api/v2/users/${bob}/profile`, token, valid: { username: "bobby", name: "Bobby" } },
    { method: "PUT", path: `/api/v2/users/${bob}/password`, token, valid: { password: "another-password-1" } },
    { method: "PUT", path: `/api/v2/users/${bob}/roles`, token, valid: { roles: ["auditor"] } },
    { method: "POST", path: `/api/v2/users/${bob}/keys/tokens`, token, valid: { token_name: "fresh", lifetime_seconds: 3600 } },
    { method: "POST", path: "/api/v2/organizations", token, valid: { name: "neworg" } },
    { method: "PATCH", path: `/api/v2/organizations/${s.secret.id}`, token, valid: { display_name: "Renamed" } },
    { method: "PUT", path: `/api/v2/organizations/${s.defaultOrgId}/members/${bob}/roles`, token, valid: { roles: ["organization-admin"] } },
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

describe("request body framing, on every route that takes a body", () => {
  it("rejects malformed JSON, non-objects and non-JSON content types, and changes nothing", async () => {
    const srv = await startTestServer();
    const routes = await bodyRoutes(srv);
    const before = await snapshot(srv);

    for (const route of routes) {
      for (const c of FRAMING_CASES) {
        const body = typeof c.body === "function" ? c.body(route.valid) : c.body;
        const res = await raw(srv, route.method, route.path, { token: route.token, body, contentType: c.contentType });
        try {
          await expectApiError(res, c.status, c.field);
        } catch (err) {
          (err as Error).message = `${route.method} ${route.path} with ${c.name}: ${(err as Error).message}`;
          throw err;
        }
      }
    }
    expect(await snapshot(srv)).toEqual(before);
  });

  it("answers 413 for a body over the server's limit, by Content-Length or chunked, and changes nothing", async () => {
    const limit = 2048;
    const srv = await startTestServer({ maxRequestBodyBytes: limit });
    const routes = await bodyRoutes(srv);
    const before = await snapshot(srv);

    for (const route of routes) {
      // The valid body, padded with an extra field well past the limit.
      const body = JSON.stringify({ ...(route.valid as object), padding: long(limit * 2, "x") });
      const res = await raw(srv, route.method, route.path, { token: route.token, body });
      try {
        await expectApiError(res, 413);
      } catch (err) {
        (err as Error).message = `${route.method} ${route.path}: ${(err as Error).message}`;
        throw err;
      }
    }

    // Without a Content-Length: the limit is enforced while reading.
    const chunk = new TextEncoder().encode(`{"email":"owner@example.com","password":"${long(1024, "p")}`);
    const stream = new ReadableStream<Uint8Array>({
      start(ctl) {
        for (let i = 0; i < 4; i++) ctl.enqueue(chunk);
        ctl.enqueue(new TextEncoder().encode('"}'));
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

describe("POST /api/v2/users/first", () => {
  it("validates every field before creating anything", async () => {
    const srv = await startTestServer();
    const ok = { email: "first@example.com", username: "first", password: DEFAULT_PASSWORD };
    const cases: Array<[string, unknown, string]> = [
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
      ["password too short", { ...ok, password: "short" }, "password"],
      ["password too long", { ...ok, password: long(257) }, "password"],
      ["password as a number", { ...ok, password: 12345678 }, "password"],
      ["password null", { ...ok, password: null }, "password"],
    ];
    for (const [what, body, field] of cases) {
      const res = await sendJson(srv, "POST", "/api/v2/users/first", undefined, body);
      try {
        await expectApiError(res, 400, field);
      } catch (err) {
        (err as Error).message = `${what}: ${(err as Error).message}`;
        throw err;
      }
    }
    const all = await expectApiError(await sendJson(srv, "POST", "/api/v2/users/first", undefined, {}), 400);
    expect(all.validations?.map((v) => v.field).sort()).toEqual(["email", "password", "username"]);

    // Nothing was created: no user and no organization.
    expect(await srv.db.store.countUsers()).toBe(0);
    expect(await srv.anonymous().hasFirstUser()).toBe(false);
    expect(await srv.db.store.kysely.selectFrom("organizations").selectAll().execute()).toEqual([]);

    await srv.anonymous().createFirstUser(ok);
    const before = await snapshot(srv);
    // Validation still comes first once the first user exists; a valid second attempt is a conflict.
    await expectApiError(await sendJson(srv, "POST", "/api/v2/users/first", undefined, { ...ok, username: long(40) }), 400, "username");
    await expectApiError(await sendJson(srv, "POST", "/api/v2/users/first", undefined, { ...ok, email: "other@example.com", username: "other" }), 409);
    expect(await snapshot(srv)).toEqual(before);
  });
});

describe("POST /api/v2/users/login", () => {
  it("validates the body, answers 401 for wrong credentials and creates no session", async () => {
    const srv = await startTestServer();
    await createFirstUser(srv);
    const before = await snapshot(srv);
    const email = "owner@example.com";
    const cases: Array<[string, unknown, string]> = [
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
    ];
    for (const [what, body, field] of cases) {
      const res = await sendJson(srv, "POST", "/api/v2/users/login", undefined, body);
      try {
        await expectApiError(res, 400, field);
      } catch (err) {
        (err as Error).message = `${what}: ${(err as Error).message}`;
        throw err;
      }
    }
    const both = await expectApiError(await sendJson(srv, "POST", "/api/v2/users/login", undefined, {}), 400);
    expect(both.validations?.map((v) => v.field).sort()).toEqual(["email", "password"]);

    // Wrong credentials: 401 with the same message whether or not the email exists.
    const wrong = await expectApiError(await sendJson(srv, "POST", "/api/v2/users/login", undefined, { email, password: "wrong-password" }), 401);
    const nobody = await expectApiError(
      await sendJson(srv, "POST", "/api/v2/users/login", undefined, { email: "nobody@example.com", password: "wrong-password" }),
      401,
    );
    expect(wrong.message).toBe(nobody.message);
    expect(wrong.validations).toBeUndefined();

    expect(await snapshot(srv)).toEqual(before);
  });
});

// ---------------------------------------------------------------------------------------------

describe("POST /api/v2/users", () => {
  it("validates fields, refuses duplicates and unknown organizations, and creates nothing", async () => {
    const srv = await startTestServer();
    const s = await standardSetup(srv);
    const token = tokenOf(s.owner);
    const before = await snapshot(srv);
    const ok = { email: "carol@example.com", username: "carol", password: DEFAULT_PASSWORD };
    const cases: Array<[string, unknown, string]> = [
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
      ["organization_ids as a string", { ...ok, organization_ids: s.defaultOrgId }, "organization_ids"],
      ["organization_ids with a non-UUID", { ...ok, organization_ids: ["coder"] }, "organization_ids"],
      ["organization_ids with null", { ...ok, organization_ids: [null] }, "organization_ids"],
      ["organization_ids with an unknown organization", { ...ok, organization_ids: [UNKNOWN_UUID] }, "organization_ids"],
      ["organization_ids mixing a real and an unknown organization", { ...ok, organization_ids: [s.defaultOrgId, UNKNOWN_UUID] }, "organization_ids"],
      ["organization_ids with too many entries", { ...ok, organization_ids: Array.from({ length: 101 }, () => randomUUID()) }, "organization_ids"],
    ];
    for (const [what, body, field] of cases) {
      const res = await sendJson(srv, "POST", "/api/v2/users", token, body);
      try {
        await expectApiError(res, 400, field);
      } catch (err) {
        (err as Error).message = `${what}: ${(err as Error).message}`;
        throw err;
      }
    }

    // Taken username or email, in any case: 409 naming the field.
    for (const [body, field] of [
      [{ ...ok, username: "bob" }, "username"],
      [{ ...ok, username: "BOB" }, "username"],
      [{ ...ok, email: "bob@example.com" }, "email"],
      [{ ...ok, email: "Bob@Example.COM" }, "email"],
    ] as const) {
      await expectApiError(await sendJson(srv, "POST", "/api/v2/users", token, body), 409, field);
    }

    // A plain member may not create users, whatever the body.
    await expectApiError(await sendJson(srv, "POST", "/api/v2/users", tokenOf(s.alice.client), ok), 403);
    await expectApiError(await sendJson(srv, "POST", "/api/v2/users", tokenOf(s.alice.client), {}), 403);

    expect(await snapshot(srv)).toEqual(before);
    expect((await s.owner.users()).count).toBe(3);
  });
});

describe("PUT /api/v2/users/:user/profile", () => {
  it("validates the username and name, refuses taken names and ignores fields it does not own", async () => {
    const srv = await startTestServer();
    const s = await standardSetup(srv);
    const token = tokenOf(s.owner);
    const before = await snapshot(srv);
    const path = `/api/v2/users/${s.bob.userId}/profile`;
    const cases: Array<[string, unknown, string]> = [
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
    for (const [what, body, field] of cases) {
      for (const [who, t, p] of [
        ["owner", token, path],
        ["bob himself", tokenOf(s.bob.client), "/api/v2/users/me/profile"],
      ] as const) {
        const res = await sendJson(srv, "PUT", p, t, body);
        try {
          await expectApiError(res, 400, field);
        } catch (err) {
          (err as Error).message = `${what} (as ${who}): ${(err as Error).message}`;
          throw err;
        }
      }
    }
    for (const username of ["alice", "ALICE", "owner"]) {
      await expectApiError(await sendJson(srv, "PUT", path, token, { username }), 409, "username");
    }
    await expectApiError(await sendJson(srv, "PUT", `/api/v2/users/${UNKNOWN_UUID}/profile`, token, { username: "ghost" }), 404);
    await expectApiError(await sendJson(srv, "PUT", "/api/v2/users/ghost/profile", token, { username: "ghost" }), 404);
    expect(await snapshot(srv)).toEqual(before);

    // Unknown fields are ignored: a profile update cannot change email, roles, status or login type.
    const res = await sendJson(srv, "PUT", path, tokenOf(s.bob.client), {
      username: "bob",
      name: "Bob",
      email: "evil@example.com",
      rbac_roles: ["owner"],
      roles: ["owner"],
      status: "suspended",
      login_type: "none",
      deleted: true,
      id: s.ownerId,
    });
    expect(res.status).toBe(200);
    await res.json();
    const bob = await s.owner.user(s.bob.userId);
    expect(bob).toMatchObject({ id: s.bob.userId, username: "bob", name: "Bob", email: "bob@example.com", status: "active", login_type: "password", roles: [] });
    expect((await s.owner.user(s.ownerId)).username).toBe("owner");
  });
});

describe("PUT /api/v2/users/:user/password", () => {
  it("validates the new and old passwords and keeps the old password and sessions on failure", async () => {
    const srv = await startTestServer();
    const s = await standardSetup(srv);
    const token = tokenOf(s.owner);
    const none = await s.owner.createUser({ email: "robot@example.com", username: "robot", login_type: "none" });
    const before = await snapshot(srv);
    const path = `/api/v2/users/${s.bob.userId}/password`;
    const good = "a-good-new-password";
    const cases: Array<[string, unknown, string]> = [
      ["empty object", {}, "password"],
      ["password too short", { password: "short" }, "password"],
      ["password too long", { password: long(257) }, "password"],
      ["password as a number", { password: 123456789 }, "password"],
      ["password null", { password: null }, "password"],
      ["password as an object", { password: { value: good } }, "password"],
      ["old_password as a number", { old_password: 5, password: good }, "old_password"],
      ["old_password too long", { old_password: long(257), password: good }, "old_password"],
    ];
    for (const [what, body, field] of cases) {
      const res = await sendJson(srv, "PUT", path, token, body);
      try {
        await expectApiError(res, 400, field);
      } catch (err) {
        (err as Error).message = `${what}: ${(err as Error).message}`;
        throw err;
      }
    }
    // For oneself the old password is required and must be right.
    const bobToken = tokenOf(s.bob.client);
    await expectApiError(await sendJson(srv, "PUT", "/api/v2/users/me/password", bobToken, { password: good }), 400, "old_password");
    await expectApiError(await sendJson(srv, "PUT", "/api/v2/users/me/password", bobToken, { old_password: "", password: good }), 400, "old_password");
    await expectApiError(
      await sendJson(srv, "PUT", "/api/v2/users/me/password", bobToken, { old_password: "not-the-password", password: good }),
      400,
      "old_password",
    );
    await expectApiError(
      await sendJson(srv, "PUT", "/api/v2/users/me/password", bobToken, { old_password: DEFAULT_PASSWORD, password: "short" }),
      400,
      "password",
    );
    // A user without a password login has no password to set.
    await expectApiError(await sendJson(srv, "PUT", `/api/v2/users/${none.id}/password`, token, { password: good }), 400);
    await expectApiError(await sendJson(srv, "PUT", `/api/v2/users/${UNKNOWN_UUID}/password`, token, { password: good }), 404);

    expect(await snapshot(srv)).toEqual(before);
    // The old password still logs in and the existing session still works.
    await srv.anonymous().loginWithPassword("bob@example.com", DEFAULT_PASSWORD);
    expect((await s.bob.client.user("me")).username).toBe("bob");
  });
});

describe("PUT /api/v2/users/:user/roles", () => {
  it("refuses malformed and unknown roles and changes no one's roles", async () => {
    const srv = await startTestServer();
    const s = await standardSetup(srv);
    const token = tokenOf(s.owner);
    const admin = await createUserWithRoles(srv, s.owner, "uadmin", ["user-admin"]);
    const before = await snapshot(srv);
    const path = `/api/v2/users/${s.bob.userId}/roles`;
    const cases: Array<[string, unknown, string]> = [
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
    ];
    for (const [what, body, field] of cases) {
      const res = await sendJson(srv, "PUT", path, token, body);
      try {
        await expectApiError(res, 400, field);
      } catch (err) {
        (err as Error).message = `${what}: ${(err as Error).message}`;
        throw err;
      }
    }
    // One's own roles cannot be changed, not even by an owner.
    await expectApiError(await sendJson(srv, "PUT", "/api/v2/users/me/roles", token, { roles: ["auditor"] }), 400);
    // A user admin may not grant owner, nor touch an owner.
    await expectApiError(await sendJson(srv, "PUT", path, tokenOf(admin.client), { roles: ["owner"] }), 403);
    await expectApiError(await sendJson(srv, "PUT", `/api/v2/users/${s.ownerId}/roles`, tokenOf(admin.client), { roles: [] }), 403);
    // A plain member may not grant anything.
    await expectApiError(await sendJson(srv, "PUT", "/api/v2/users/me/roles", tokenOf(s.bob.client), { roles: ["owner"] }), [400, 403]);
    await expectApiError(await sendJson(srv, "PUT", `/api/v2/users/${UNKNOWN_UUID}/roles`, token, { roles: [] }), 404);

    expect(await snapshot(srv)).toEqual(before);
    expect((await s.owner.userRoles(s.bob.userId)).roles).toEqual([]);
  });
});

describe("DELETE /api/v2/users/:user", () => {
  it("refuses unknown users, oneself and owners (for non-owners), and deletes nothing", async () => {
    const srv = await startTestServer();
    const s = await standardSetup(srv);
    const token = tokenOf(s.owner);
    const admin = await createUserWithRoles(srv, s.owner, "uadmin", ["user-admin"]);
    const before = await snapshot(srv);
    await expectApiError(await raw(srv, "DELETE", `/api/v2/users/${UNKNOWN_UUID}`, { token }), 404);
    await expectApiError(await raw(srv, "DELETE", "/api/v2/users/ghost", { token }), 404);
    await expectApiError(await raw(srv, "DELETE", "/api/v2/users/me", { token }), 400);
    await expectApiError(await raw(srv, "DELETE", `/api/v2/users/${s.ownerId}`, { token }), 400);
    await expectApiError(await raw(srv, "DELETE", `/api/v2/users/${s.ownerId}`, { token: tokenOf(admin.client) }), 403);
    await expectApiError(await raw(srv, "DELETE", `/api/v2/users/${s.bob.userId}`, { token: tokenOf(s.alice.client) }), 404);
    expect(await snapshot(srv)).toEqual(before);
  });
});

describe("GET /api/v2/users query parameters", () => {
  it("rejects unknown filters and out-of-range paging with 400 naming the parameter", async () => {
    const srv = await startTestServer();
    const s = await standardSetup(srv);
    const token = tokenOf(s.owner);
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
      [`after_id=${s.bob.userId}x`, "after_id"],
      ["after_id=bob", "after_id"],
    ];
    for (const [qs, field] of cases) {
      const res = await raw(srv, "GET", `/api/v2/users?${qs}`, { token });
      try {
        await expectApiError(res, 400, field);
      } catch (err) {
        (err as Error).message = `?${qs}: ${(err as Error).message}`;
        throw err;
      }
    }
    // The same for a plain member, who can only see itself anyway.
    await expectApiError(await raw(srv, "GET", "/api/v2/users?q=foo:bar", { token: tokenOf(s.alice.client) }), 400, "q");
    await expectApiError(await raw(srv, "GET", "/api/v2/users?limit=-5", { token: tokenOf(s.alice.client) }), 400, "limit");

    // Edges that are valid.
    expect((await s.owner.users({ limit: 1000 })).users).toHaveLength(3);
    expect((await s.owner.users({ q: "status:active role:owner" })).users.map((u) => u.username)).toEqual(["owner"]);
    expect((await s.owner.users({ q: "%_\\'\"" })).users).toEqual([]);
    expect((await s.owner.users({ offset: 1_000_000 })).users).toEqual([]);
    // A well-formed id of no user: an empty page or a 400, never a 500.
    const unknownAfter = await raw(srv, "GET", `/api/v2/users?after_id=${UNKNOWN_UUID}`, { token });
    if (unknownAfter.status === 200) expect(((await unknownAfter.json()) as { users: unknown[] }).users).toEqual([]);
    else await expectApiError(unknownAfter, 400, "after_id");
  });
});

// ---------------------------------------------------------------------------------------------

describe("POST /api/v2/users/:user/keys/tokens", () => {
  it("validates name, lifetime and scope, refuses duplicates and issues nothing", async () => {
    const maxSeconds = 7 * 24 * 3600;
    const srv = await startTestServer({ maxTokenLifetimeMs: maxSeconds * 1000 });
    const s = await standardSetup(srv);
    const bob = s.bob.client;
    await bob.createToken("me", { token_name: "ci", lifetime_seconds: 3600 });
    const before = await snapshot(srv);
    const tokensBefore = await bob.tokens("me");
    const cases: Array<[string, unknown, string]> = [
      ["lifetime above the maximum", { lifetime_seconds: maxSeconds + 1 }, "lifetime_seconds"],
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
    ];
    for (const [what, body, field] of cases) {
      const res = await sendJson(srv, "POST", "/api/v2/users/me/keys/tokens", tokenOf(bob), body);
      try {
        await expectApiError(res, 400, field);
      } catch (err) {
        (err as Error).message = `${what}: ${(err as Error).message}`;
        throw err;
      }
    }
    const over = await expectApiError(await sendJson(srv, "POST", "/api/v2/users/me/keys/tokens", tokenOf(bob), { lifetime_seconds: maxSeconds + 1 }), 400);
    expect(over.validations?.[0]?.detail).toContain(String(maxSeconds));
    // Names are unique per user regardless of case.
    for (const token_name of ["ci", "CI", "Ci"]) {
      await expectApiError(await sendJson(srv, "POST", "/api/v2/users/me/keys/tokens", tokenOf(bob), { token_name }), 409, "token_name");
    }
    await expectApiError(await sendJson(srv, "POST", `/api/v2/users/${UNKNOWN_UUID}/keys/tokens`, tokenOf(s.owner), { token_name: "x" }), 404);

    expect(await snapshot(srv)).toEqual(before);
    expect(await bob.tokens("me")).toEqual(tokensBefore);
    // The maximum itself is fine.
    await bob.createToken("me", { token_name: "max", lifetime_seconds: maxSeconds });
  });
});

describe("organizations", () => {
  it("POST /organizations and PATCH /organizations/:org validate fields and refuse taken names", async () => {
    const srv = await startTestServer();
    const s = await standardSetup(srv);
    const token = tokenOf(s.owner);
    const before = await snapshot(srv);
    const create: Array<[string, unknown, string]> = [
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
    ];
    for (const [what, body, field] of create) {
      const res = await sendJson(srv, "POST", "/api/v2/organizations", token, body);
      try {
        await expectApiError(res, 400, field);
      } catch (err) {
        (err as Error).message = `POST ${what}: ${(err as Error).message}`;
        throw err;
      }
    }
    for (const name of ["coder", "CODER", "Secret"]) {
      await expectApiError(await sendJson(srv, "POST", "/api/v2/organizations", token, { name }), 409, "name");
    }

    const path = `/api/v2/organizations/${s.secret.id}`;
    const update: Array<[string, unknown, string]> = [
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
    ];
    for (const [what, body, field] of update) {
      const res = await sendJson(srv, "PATCH", path, token, body);
      try {
        await expectApiError(res, 400, field);
      } catch (err) {
        (err as Error).message = `PATCH ${what}: ${(err as Error).message}`;
        throw err;
      }
    }
    await expectApiError(await sendJson(srv, "PATCH", path, token, { name: "CODER" }), 409, "name");
    await expectApiError(await sendJson(srv, "PATCH", `/api/v2/organizations/${UNKNOWN_UUID}`, token, { display_name: "x" }), 404);
    await expectApiError(await sendJson(srv, "PATCH", "/api/v2/organizations/no-such-org", token, { display_name: "x" }), 404);
    // Members may see but not change their organization, nor create others.
    const alice = tokenOf(s.alice.client);
    await expectApiError(await sendJson(srv, "PATCH", `/api/v2/organizations/${s.defaultOrgId}`, alice, { display_name: "Mine" }), 403);
    await expectApiError(await raw(srv, "DELETE", `/api/v2/organizations/${s.defaultOrgId}`, { token: alice }), 403);
    await expectApiError(await sendJson(srv, "POST", "/api/v2/organizations", alice, { name: "aliceorg" }), 403);
    // The default organization cannot be deleted.
    await expectApiError(await raw(srv, "DELETE", `/api/v2/organizations/${s.defaultOrgId}`, { token }), 400);

    expect(await snapshot(srv)).toEqual(before);
    // Fields PATCH does not own are ignored.
    const res = await sendJson(srv, "PATCH", path, token, { is_default: true, id: UNKNOWN_UUID, created_at: "2000-01-01T00:00:00Z" });
    expect(res.status).toBe(200);
    await res.json();
    expect(await s.owner.organization(s.secret.id)).toMatchObject({ id: s.secret.id, name: "secret", is_default: false });
  });

  it("PUT /organizations/:org/members/:user/roles refuses malformed and unknown roles", async () => {
    const srv = await startTestServer();
    const s = await standardSetup(srv);
    const token = tokenOf(s.owner);
    const before = await snapshot(srv);
    const path = `/api/v2/organizations/${s.defaultOrgId}/members/${s.bob.userId}/roles`;
    const cases: Array<[string, unknown, string]> = [
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
    ];
    for (const [what, body, field] of cases) {
      const res = await sendJson(srv, "PUT", path, token, body);
      try {
        await expectApiError(res, 400, field);
      } catch (err) {
        (err as Error).message = `${what}: ${(err as Error).message}`;
        throw err;
      }
    }
    // Unknown org, unknown user, a user who is not a member, oneself.
    await expectApiError(await sendJson(srv, "PUT", `/api/v2/organizations/${UNKNOWN_UUID}/members/${s.bob.userId}/roles`, token, { roles: [] }), 404);
    await expectApiError(await sendJson(srv, "PUT", `/api/v2/organizations/${s.defaultOrgId}/members/${UNKNOWN_UUID}/roles`, token, { roles: [] }), 404);
    await expectApiError(await sendJson(srv, "PUT", `/api/v2/organizations/${s.secret.id}/members/${s.bob.userId}/roles`, token, { roles: [] }), 404);
    await expectApiError(await sendJson(srv, "PUT", `/api/v2/organizations/${s.defaultOrgId}/members/me/roles`, token, { roles: [] }), 404);
    await expectApiError(
      await sendJson(srv, "PUT", `/api/v2/organizations/${s.defaultOrgId}/members/${s.ownerId}/roles`, token, { roles: [] }),
      400,
    );
    // A plain member of the organization may not hand out roles.
    await expectApiError(
      await sendJson(srv, "PUT", path, tokenOf(s.alice.client), { roles: ["organization-admin"] }),
      403,
    );
    expect(await snapshot(srv)).toEqual(before);
  });
});

// ---------------------------------------------------------------------------------------------

describe("session tokens", () => {
  it("answers 401 for missing, malformed, unknown, forged and expired tokens, by header or cookie", async () => {
    const srv = await startTestServer();
    const s = await standardSetup(srv);
    const bobSession = tokenOf(s.bob.client);
    const bobApi = (await s.bob.client.createToken("me", { token_name: "ci" })).key;
    const forgedSession = `${keyIdOf(bobSession)}-${"x".repeat(22)}`;
    const forgedApi = `${keyIdOf(bobApi)}-${bobApi.split("-")[1]!.split("").reverse().join("")}`;
    // Make the keys "unused for minutes" so that any accepted request would move last_used.
    const old = new Date(Date.now() - 5 * 60_000);
    await srv.db.store.kysely.updateTable("api_keys").set({ last_used: old }).where("user_id", "=", s.bob.userId).execute();
    const before = await snapshot(srv);

    const bad: Array<[string, string]> = [
      ["malformed", "abc"],
      ["only an id", keyIdOf(bobSession)],
      ["id and dash", `${keyIdOf(bobSession)}-`],
      ["a secret too short", `${keyIdOf(bobSession)}-${"x".repeat(21)}`],
      ["a secret too long", `${bobSession}x`],
      ["non-alphanumeric", `${keyIdOf(bobSession)}-${"x".repeat(21)}_`],
      ["a bearer prefix", `Bearer ${bobSession}`],
      ["well-formed but unknown", WELL_FORMED_UNKNOWN_TOKEN],
      ["a real session id with a wrong secret", forgedSession],
      ["a real API key id with a wrong secret", forgedApi],
      ["a real id in the wrong case", `${keyIdOf(bobSession).toUpperCase() === keyIdOf(bobSession) ? keyIdOf(bobSession).toLowerCase() : keyIdOf(bobSession).toUpperCase()}-${bobSession.split("-")[1]!}`],
    ];
    // Missing altogether.
    await expectApiError(await raw(srv, "GET", "/api/v2/users/me"), 401);
    await expectApiError(await raw(srv, "GET", "/api/v2/users/me", { token: "" }), 401);
    await expectApiError(await raw(srv, "GET", "/api/v2/users/me", { cookie: `${SESSION_TOKEN_COOKIE}=` }), 401);
    await expectApiError(await raw(srv, "GET", "/api/v2/users/me", { cookie: `other=${bobSession}` }), 401);
    for (const [what, token] of bad) {
      for (const [via, opts] of [
        ["header", { token }],
        ["cookie", { cookie: `${SESSION_TOKEN_COOKIE}=${token}` }],
      ] as const) {
        for (const [method, path, body] of [
          ["GET", "/api/v2/users/me", undefined],
          ["GET", "/api/v2/users", undefined],
          ["POST", "/api/v2/users/me/keys/tokens", JSON.stringify({ token_name: "sneaky" })],
          ["POST", "/api/v2/users", JSON.stringify({ email: "x@example.com", username: "x", password: DEFAULT_PASSWORD })],
          // Validation must not run (nor leak) before authentication.
          ["POST", "/api/v2/organizations", "{}"],
        ] as const) {
          const res = await raw(srv, method, path, { ...opts, body });
          try {
            const err = await expectApiError(res, 401);
            expect(err.validations).toBeUndefined();
          } catch (e) {
            (e as Error).message = `${what} token by ${via}, ${method} ${path}: ${(e as Error).message}`;
            throw e;
          }
        }
      }
    }
    // A failed authentication does not count as a use of the real key.
    expect(await lastUsed(srv, keyIdOf(bobSession))).toEqual(old);
    expect(await lastUsed(srv, keyIdOf(bobApi))).toEqual(old);

    // Expired: both a named token and a login session, by header and by cookie.
    const past = new Date(Date.now() - 1000);
    await srv.db.store.kysely.updateTable("api_keys").set({ expires_at: past }).where("id", "in", [keyIdOf(bobApi), keyIdOf(bobSession)]).execute();
    for (const token of [bobApi, bobSession]) {
      await expectApiError(await raw(srv, "GET", "/api/v2/users/me", { token }), 401);
      await expectApiError(await raw(srv, "GET", "/api/v2/users/me", { cookie: `${SESSION_TOKEN_COOKIE}=${token}` }), 401);
      await expectApiError(await sendJson(srv, "POST", "/api/v2/users/me/keys/tokens", token, { token_name: "renewed" }), 401);
    }
    // ... and it stays expired: a rejected request does not slide the expiry forward.
    const rows = await srv.db.store.kysely.selectFrom("api_keys").select(["id", "expires_at", "last_used"]).where("user_id", "=", s.bob.userId).execute();
    for (const r of rows) {
      expect(r.expires_at).toEqual(past);
      expect(r.last_used).toEqual(old);
    }
    const after = await snapshot(srv);
    expect(after.users).toEqual(before.users);
    expect(after.organizations).toEqual(before.organizations);
    expect(after.members).toEqual(before.members);
    expect(after.apiKeys.map((k) => k.id)).toEqual(before.apiKeys.map((k) => k.id));

    // The cookie works when the token is good, also among other cookies; a bad one does not.
    const alice = tokenOf(s.alice.client);
    for (const cookie of [`${SESSION_TOKEN_COOKIE}=${alice}`, `theme=dark; ${SESSION_TOKEN_COOKIE}=${alice}; lang=en`]) {
      const res = await raw(srv, "GET", "/api/v2/users/me", { cookie });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { username: string }).username).toBe("alice");
    }
    await expectApiError(await raw(srv, "GET", "/api/v2/users/me", { cookie: `${SESSION_TOKEN_COOKIE}=abc` }), 401);
    await expectApiError(await raw(srv, "GET", "/api/v2/users/me", { cookie: `${SESSION_TOKEN_COOKIE}=${WELL_FORMED_UNKNOWN_TOKEN}` }), 401);
    await expectApiError(await raw(srv, "GET", "/api/v2/users/me", { cookie: `${SESSION_TOKEN_COOKIE}=${keyIdOf(alice)}-${"y".repeat(22)}` }), 401);

    // A good request does count as a use (so the last_used checks above prove something).
    await srv.db.store.kysely.updateTable("api_keys").set({ last_used: old }).where("id", "=", keyIdOf(alice)).execute();
    expect((await s.alice.client.user("me")).username).toBe("alice");
    await vi.waitFor(async () => expect((await lastUsed(srv, keyIdOf(alice))).getTime()).toBeGreaterThan(old.getTime()));
  });

  it("answers 401 for the tokens of a deleted user and of a logged-out session", async () => {
    const srv = await startTestServer();
    const s = await standardSetup(srv);
    const bobSession = tokenOf(s.bob.client);
    const bobApi = (await s.bob.client.createToken("me", { token_name: "ci" })).key;
    const viaApi = srv.anonymous();
    viaApi.sessionToken = bobApi;
    expect((await viaApi.user("me")).username).toBe("bob");

    await s.owner.deleteUser(s.bob.userId);
    for (const token of [bobSession, bobApi]) {
      await expectApiError(await raw(srv, "GET", "/api/v2/users/me", { token }), 401);
      await expectApiError(await raw(srv, "GET", "/api/v2/users/me", { cookie: `${SESSION_TOKEN_COOKIE}=${token}` }), 401);
      await expectApiError(await sendJson(srv, "POST", "/api/v2/users/me/keys/tokens", token, { token_name: "again" }), 401);
      await expectApiError(await sendJson(srv, "PUT", "/api/v2/users/me/profile", token, { username: "zombie" }), 401);
    }
    // The deleted user is gone for the owner too, and cannot log in.
    await expectApiError(await raw(srv, "GET", `/api/v2/users/${s.bob.userId}`, { token: tokenOf(s.owner) }), 404);
    await expectApiError(await raw(srv, "DELETE", `/api/v2/users/${s.bob.userId}`, { token: tokenOf(s.owner) }), 404);
    await expectApiError(await sendJson(srv, "POST", "/api/v2/users/login", undefined, { email: "bob@example.com", password: DEFAULT_PASSWORD }), 401);
    expect(await srv.db.store.kysely.selectFrom("api_keys").select("id").where("user_id", "=", s.bob.userId).execute()).toEqual([]);

    // A logged-out session is dead; logging out again is 401 too.
    const aliceSession = tokenOf(s.alice.client);
    await s.alice.client.logout();
    await expectApiError(await raw(srv, "GET", "/api/v2/users/me", { token: aliceSession }), 401);
    await expectApiError(await raw(srv, "POST", "/api/v2/users/logout", { token: aliceSession }), 401);
  });
});

// ---------------------------------------------------------------------------------------------

describe("objects the caller may not see", () => {
  it("answers 404 for other users and their keys, exactly as for ids that do not exist, and changes nothing", async () => {
    const srv = await startTestServer();
    const s = await standardSetup(srv);
    const alice = tokenOf(s.alice.client);
    const auditor = await createUserWithRoles(srv, s.owner, "audit", ["auditor"]);
    const bobId = s.bob.userId;
    await s.bob.client.createToken("me", { token_name: "bob-ci" });
    const bobKey = (await s.bob.client.tokens("me"))[0]!;
    const bobSessionKeyId = keyIdOf(tokenOf(s.bob.client));
    const before = await snapshot(srv);

    // The 404 for a hidden user is indistinguishable from one for a user that does not exist.
    const hidden = await expectApiError(await raw(srv, "GET", `/api/v2/users/${bobId}`, { token: alice }), 404);
    const missing = await expectApiError(await raw(srv, "GET", `/api/v2/users/${UNKNOWN_UUID}`, { token: alice }), 404);
    expect(hidden).toEqual(missing);
    const hiddenByName = await expectApiError(await raw(srv, "GET", "/api/v2/users/bob", { token: alice }), 404);
    expect(hiddenByName).toEqual(await expectApiError(await raw(srv, "GET", "/api/v2/users/nobody", { token: alice }), 404));

    for (const target of [bobId, "bob", "BOB"]) {
      const u = `/api/v2/users/${target}`;
      const requests: Array<[string, string, unknown]> = [
        ["GET", u, undefined],
        ["GET", `${u}/roles`, undefined],
        ["GET", `${u}/organizations`, undefined],
        ["GET", `${u}/keys/tokens`, undefined],
        ["GET", `${u}/keys/tokens/bob-ci`, undefined],
        ["POST", `${u}/keys/tokens`, { token_name: "planted" }],
        ["DELETE", `${u}/keys/${bobKey.id}`, undefined],
        ["DELETE", `${u}/keys/${bobSessionKeyId}`, undefined],
        ["PUT", `${u}/profile`, { username: "hacked" }],
        ["PUT", `${u}/password`, { password: "hijacked-password" }],
        ["PUT", `${u}/password`, { old_password: DEFAULT_PASSWORD, password: "hijacked-password" }],
        ["PUT", `${u}/roles`, { roles: ["owner"] }],
        ["PUT", `${u}/roles`, { roles: [] }],
        ["PUT", `${u}/status/suspend`, undefined],
        ["PUT", `${u}/status/activate`, undefined],
        ["DELETE", u, undefined],
      ];
      for (const [method, path, body] of requests) {
        const res = body === undefined ? await raw(srv, method, path, { token: alice }) : await sendJson(srv, method, path, alice, body);
        try {
          await expectApiError(res, 404);
        } catch (e) {
          (e as Error).message = `${method} ${path}: ${(e as Error).message}`;
          throw e;
        }
      }
    }
    // Someone else's key id through one's own path.
    await expectApiError(await raw(srv, "DELETE", `/api/v2/users/me/keys/${bobKey.id}`, { token: alice }), 404);
    await expectApiError(await raw(srv, "DELETE", `/api/v2/users/me/keys/${bobSessionKeyId}`, { token: alice }), 404);
    await expectApiError(await raw(srv, "DELETE", `/api/v2/users/${s.alice.userId}/keys/${bobKey.id}`, { token: alice }), 404);
    // The owner too cannot delete bob's key through alice's path.
    await expectApiError(await raw(srv, "DELETE", `/api/v2/users/alice/keys/${bobKey.id}`, { token: tokenOf(s.owner) }), 404);
    // A plain member lists only itself.
    const list = await raw(srv, "GET", "/api/v2/users", { token: alice });
    expect(list.status).toBe(200);
    expect(((await list.json()) as { users: Array<{ username: string }> }).users.map((u) => u.username)).toEqual(["alice"]);

    // An auditor sees users (so changing one is 403) but not their API keys (404).
    const aud = tokenOf(auditor.client);
    expect((await auditor.client.user(bobId)).username).toBe("bob");
    await expectApiError(await sendJson(srv, "PUT", `/api/v2/users/${bobId}/profile`, aud, { username: "hacked" }), 403);
    await expectApiError(await raw(srv, "PUT", `/api/v2/users/${bobId}/status/suspend`, { token: aud }), 403);
    await expectApiError(await raw(srv, "DELETE", `/api/v2/users/${bobId}`, { token: aud }), 403);
    await expectApiError(await raw(srv, "GET", `/api/v2/users/${bobId}/keys/tokens`, { token: aud }), 404);
    await expectApiError(await raw(srv, "DELETE", `/api/v2/users/${bobId}/keys/${bobKey.id}`, { token: aud }), 404);
    await expectApiError(await sendJson(srv, "POST", `/api/v2/users/${bobId}/keys/tokens`, aud, { token_name: "planted" }), 404);

    expect(await snapshot(srv)).toEqual(before);
    expect((await s.bob.client.tokens("me")).map((k) => k.token_name)).toEqual(["bob-ci"]);
    expect((await s.bob.client.user("me")).username).toBe("bob");
    await srv.anonymous().loginWithPassword("bob@example.com", DEFAULT_PASSWORD);
  });

  it("answers 404 for an organization the caller is not a member of, and changes nothing", async () => {
    const srv = await startTestServer();
    const s = await standardSetup(srv);
    const alice = tokenOf(s.alice.client);
    await s.owner.addOrganizationMember(s.secret.id, "bob");
    const before = await snapshot(srv);

    const hidden = await expectApiError(await raw(srv, "GET", `/api/v2/organizations/${s.secret.id}`, { token: alice }), 404);
    expect(hidden).toEqual(await expectApiError(await raw(srv, "GET", `/api/v2/organizations/${UNKNOWN_UUID}`, { token: alice }), 404));
    expect(await expectApiError(await raw(srv, "GET", "/api/v2/organizations/secret", { token: alice }), 404)).toEqual(
      await expectApiError(await raw(srv, "GET", "/api/v2/organizations/nothere", { token: alice }), 404),
    );

    for (const org of [s.secret.id, "secret", "SECRET"]) {
      const o = `/api/v2/organizations/${org}`;
      const requests: Array<[string, string, unknown]> = [
        ["GET", o, undefined],
        ["PATCH", o, { display_name: "Hacked" }],
        ["PATCH", o, { name: "bad name" }],
        ["DELETE", o, undefined],
        ["GET", `${o}/members`, undefined],
        ["POST", `${o}/members/alice`, undefined],
        ["POST", `${o}/members/${s.alice.userId}`, undefined],
        ["DELETE", `${o}/members/bob`, undefined],
        ["DELETE", `${o}/members/owner`, undefined],
        ["PUT", `${o}/members/bob/roles`, { roles: ["organization-admin"] }],
        ["PUT", `${o}/members/alice/roles`, { roles: ["organization-admin"] }],
        ["PUT", `${o}/members/bob/roles`, { roles: ["wizard"] }],
      ];
      for (const [method, path, body] of requests) {
        const res = body === undefined ? await raw(srv, method, path, { token: alice }) : await sendJson(srv, method, path, alice, body);
        try {
          await expectApiError(res, 404);
        } catch (e) {
          (e as Error).message = `${method} ${path}: ${(e as Error).message}`;
          throw e;
        }
      }
    }
    // The listing does not mention it either, nor does bob's organization list to alice.
    const orgs = await s.alice.client.organizations();
    expect(orgs.map((o) => o.name)).toEqual(["coder"]);
    await expectApiError(await raw(srv, "GET", `/api/v2/users/${s.bob.userId}/organizations`, { token: alice }), 404);

    expect(await snapshot(srv)).toEqual(before);
    expect((await s.owner.organization(s.secret.id)).display_name).toBe("Secret");
    expect((await s.owner.organizationMembers(s.secret.id)).map((m) => m.username).sort()).toEqual(["bob", "owner"]);
  });
});

// ---------------------------------------------------------------------------------------------

describe("NUL characters", () => {
  // Postgres text cannot hold U+0000: the value must be rejected as bad input, not reach the database.
  it("are refused as bad input in bodies, paths and queries, never a 500", async () => {
    const srv = await startTestServer();
    const s = await standardSetup(srv);
    const token = tokenOf(s.owner);
    const before = await snapshot(srv);
    const nul = "a\u0000b";

    const bodies: Array<[string, string, string | undefined, unknown, readonly number[], string | undefined]> = [
      ["POST", "/api/v2/users/login", undefined, { email: `owner${"\u0000"}@example.com`, password: DEFAULT_PASSWORD }, [400, 401], undefined],
      ["POST", "/api/v2/users/login", undefined, { email: "owner@example.com", password: `pass${"\u0000"}word` }, [400, 401], undefined],
      ["POST", "/api/v2/users", token, { email: "c@example.com", username: "carol", name: nul, password: DEFAULT_PASSWORD }, [400], "name"],
      ["PUT", `/api/v2/users/${s.bob.userId}/profile`, token, { username: "bob", name: nul }, [400], "name"],
      ["POST", "/api/v2/organizations", token, { name: "nulorg", display_name: nul }, [400], "display_name"],
      ["POST", "/api/v2/organizations", token, { name: "nulorg", description: nul }, [400], "description"],
      ["PATCH", `/api/v2/organizations/${s.secret.id}`, token, { display_name: nul }, [400], "display_name"],
      ["PATCH", `/api/v2/organizations/${s.secret.id}`, token, { description: nul }, [400], "description"],
    ];
    const failures: string[] = [];
    for (const [method, path, t, body, statuses, field] of bodies) {
      try {
        await expectApiError(await sendJson(srv, method, path, t, body), statuses, field);
      } catch (e) {
        failures.push(`${method} ${path} ${JSON.stringify(body)}: ${(e as Error).message.split("\n")[0]}`);
      }
    }
    const others: Array<[string, string, readonly number[], string | undefined]> = [
      ["GET", "/api/v2/users/a%00b", [400, 404], undefined],
      ["GET", "/api/v2/organizations/a%00b", [400, 404], undefined],
      ["GET", "/api/v2/users/me/keys/tokens/a%00b", [400, 404], undefined],
      ["DELETE", "/api/v2/users/me/keys/a%00b", [400, 404], undefined],
      ["GET", "/api/v2/users?q=a%00b", [400], "q"],
      ["GET", "/api/v2/users?q=username:a%00b", [400], "q"],
    ];
    for (const [method, path, statuses, field] of others) {
      try {
        await expectApiError(await raw(srv, method, path, { token }), statuses, field);
      } catch (e) {
        failures.push(`${method} ${path}: ${(e as Error).message.split("\n")[0]}`);
      }
    }
    expect(failures).toEqual([]);
    expect(await snapshot(srv)).toEqual(before);
  });
});
