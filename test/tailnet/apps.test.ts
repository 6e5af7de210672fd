// Workspace apps through coderd's tunnel to a real agent: path-based and subdomain apps, bodies
// and WebSockets both ways, sharing levels, the subdomain sign-in redirect, and that Coder's
// credentials never reach an app.
import { createHash, randomBytes } from "node:crypto";
import { request as httpRequest } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { Client, Workspace, WorkspaceAgent } from "../../src/codersdk/index.js";
import { appTemplate } from "../helpers/app-server.js";
import { createFirstUser, createUserWithRoles, startTestServer, type TestServer } from "../helpers/coderd.js";
import { closedPort } from "../helpers/net.js";
import { deleteWorkspace, runningWorkspace } from "../helpers/workspaces.js";

const SUFFIX = ".apps.coder.test";
let srv: TestServer;
let owner: Client;
let member: Client;
let templateAdmin: Client;
let workspace: Workspace;
let agent: WorkspaceAgent;
let appPort: number;

const host = (slug: string) => `${slug}--main--dev--owner${SUFFIX}`;

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text: string;
  json<T = Record<string, unknown>>(): T;
}

/** A request to coderd with any Host header (fetch would not let us set it). */
function send(path: string, opts: { method?: string; host?: string; headers?: Record<string, string>; body?: Buffer | string } = {}): Promise<Res> {
  const u = new URL(srv.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: u.hostname, port: u.port, path, method: opts.method ?? "GET", headers: { ...(opts.host ? { host: opts.host } : {}), ...opts.headers }, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const body = Buffer.concat(chunks);
          resolve({ status: res.statusCode!, headers: res.headers, body, text: body.toString(), json: () => JSON.parse(body.toString()) });
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(opts.body);
  });
}

const tokenOf = (c: Client) => c.sessionToken!;
const sessionCookie = (c: Client) => `coder_session_token=${tokenOf(c)}`;

/** Opens a WebSocket through the proxy; resolves once it is open. */
function openWs(path: string, headers: Record<string, string>): Promise<WebSocket> {
  const ws = new WebSocket(`${srv.url.replace("http", "ws")}${path}`, { headers });
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
    ws.once("unexpected-response", (_req, res) => reject(new Error(`unexpected response ${res.statusCode}`)));
  });
}

const nextMessage = (ws: WebSocket) => new Promise<string>((resolve) => ws.once("message", (d) => resolve(d.toString())));

/** The full subdomain sign-in: app host → dashboard → ticket → app host cookie. */
async function signIn(c: Client, appHost: string, path = "/", existing?: string): Promise<string> {
  const first = await send(path, { host: appHost, headers: { accept: "text/html" } });
  expect(first.status).toBe(303);
  const redirect = new URL(first.headers.location as string);
  expect(`${redirect.origin}${redirect.pathname}`).toBe(`${srv.url}/api/v2/applications/auth-redirect`);
  expect(redirect.searchParams.get("redirect_uri")).toBe(`http://${appHost}${path}`);
  const issued = await send(`${redirect.pathname}${redirect.search}`, { headers: { cookie: sessionCookie(c), accept: "text/html" } });
  expect(issued.status).toBe(307);
  const back = new URL(issued.headers.location as string);
  expect(back.host).toBe(appHost);
  expect(back.searchParams.get("coder_application_connect_api_key")).toMatch(/^app_/);
  const exchanged = await send(`${back.pathname}${back.search}`, { host: appHost, headers: { accept: "text/html", ...(existing ? { cookie: existing } : {}) } });
  expect(exchanged.status).toBe(303);
  expect(exchanged.headers.location).toBe(path);
  const setCookie = (exchanged.headers["set-cookie"] ?? []) as string[];
  expect(setCookie).toHaveLength(1);
  expect(setCookie[0]).toMatch(/^coder_subdomain_app_session_token=app_[^;]+; Path=\/; HttpOnly; SameSite=Lax; Max-Age=\d+$/);
  return setCookie[0]!.split(";")[0]!;
}

beforeAll(async () => {
  srv = await startTestServer({ provisionerDaemons: 1, manualClose: true, wildcardAccessUrl: `*${SUFFIX}` });
  owner = (await createFirstUser(srv)).client;
  member = (await createUserWithRoles(srv, owner, "member")).client;
  templateAdmin = (await createUserWithRoles(srv, owner, "tadmin", ["template-admin"])).client;
  appPort = await closedPort();
  const down = await closedPort();
  const template = appTemplate(appPort, [
    { slug: "web", url: `http://127.0.0.1:${appPort}` },
    { slug: "pub-path", url: `http://127.0.0.1:${appPort}`, share: "public" },
    { slug: "down", url: `http://127.0.0.1:${down}` },
    { slug: "sub", url: `http://127.0.0.1:${appPort}`, subdomain: true },
    { slug: "sub-auth", url: `http://localhost:${appPort}/base`, subdomain: true, share: "authenticated" },
    { slug: "sub-pub", url: `http://127.0.0.1:${appPort}`, subdomain: true, share: "public" },
  ]);
  ({ workspace, agent } = await runningWorkspace(owner, "dev", template));
});

afterAll(async () => {
  if (workspace) await deleteWorkspace(owner, workspace);
  await srv?.close();
});

describe("path-based apps", () => {
  it("proxies GET with the prefix stripped and Coder's credentials removed", async () => {
    const res = await send("/@owner/dev/apps/web/hello/there?x=1&y=2", {
      headers: { cookie: `${sessionCookie(owner)}; other=1`, "x-forwarded-for": "10.0.0.1" },
    });
    expect(res.status).toBe(200);
    const got = res.json<{ method: string; url: string; headers: Record<string, string> }>();
    expect(got.method).toBe("GET");
    expect(got.url).toBe("/hello/there?x=1&y=2");
    expect(got.headers.cookie).toBe("other=1");
    expect(got.headers["coder-session-token"]).toBeUndefined();
    expect(got.headers.host).toBe(`127.0.0.1:${appPort}`);
    expect(got.headers["x-forwarded-host"]).toBe(new URL(srv.url).host);
    expect(got.headers["x-forwarded-proto"]).toBe("http");
    expect(got.headers["x-forwarded-prefix"]).toBe("/@owner/dev/apps/web");
    expect(got.headers["x-forwarded-for"]).toBe("10.0.0.1, 127.0.0.1");
    expect(res.headers["set-cookie"]).toBeUndefined();

    const byHeader = await send("/@owner/dev.main/apps/web/", { headers: { "Coder-Session-Token": tokenOf(owner) } });
    expect(byHeader.status).toBe(200);
    expect(byHeader.json<{ url: string; headers: Record<string, string> }>().headers["coder-session-token"]).toBeUndefined();
    expect(byHeader.json<{ url: string }>().url).toBe("/");
  });

  it("redirects the app's root to its trailing-slash form", async () => {
    const res = await send("/@owner/dev/apps/web?a=b", { headers: { cookie: sessionCookie(owner) } });
    expect(res.status).toBe(307);
    expect(res.headers.location).toBe("/@owner/dev/apps/web/?a=b");
  });

  it("streams request bodies of any size and type both ways", async () => {
    const body = randomBytes(3 * 1024 * 1024);
    const res = await send("/@owner/dev/apps/web/raw", { method: "POST", body, headers: { cookie: sessionCookie(owner), "content-type": "application/octet-stream" } });
    expect(res.status).toBe(200);
    expect(createHash("sha256").update(res.body).digest("hex")).toBe(createHash("sha256").update(body).digest("hex"));
    const form = await send("/@owner/dev/apps/web/form", { method: "PUT", body: "a=1&b=2", headers: { cookie: sessionCookie(owner), "content-type": "application/x-www-form-urlencoded" } });
    expect(form.json()).toMatchObject({ method: "PUT", length: 7 });
    const head = await send("/@owner/dev/apps/web/", { method: "HEAD", headers: { cookie: sessionCookie(owner) } });
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
  });

  it("drops cookies an app sets under Coder's names", async () => {
    const res = await send("/@owner/dev/apps/web/set-cookie", { headers: { cookie: sessionCookie(owner) } });
    expect(res.status).toBe(200);
    expect(res.headers["set-cookie"]).toEqual(["app_cookie=ok; Path=/"]);
  });

  it("carries WebSockets, without the caller's token", async () => {
    const ws = await openWs("/@owner/dev/apps/web/socket?q=1", { "Coder-Session-Token": tokenOf(owner), cookie: `${sessionCookie(owner)}; keep=me` });
    try {
      ws.send("headers");
      const seen = JSON.parse(await nextMessage(ws)) as { url: string; headers: Record<string, string> };
      expect(seen.url).toBe("/socket?q=1");
      expect(seen.headers["coder-session-token"]).toBeUndefined();
      expect(seen.headers.cookie).toBe("keep=me");
      for (const msg of ["hello", "x".repeat(100_000)]) {
        ws.send(msg);
        expect(await nextMessage(ws)).toBe(msg);
      }
    } finally {
      ws.close();
    }
  });

  it("answers 502 with a clear message when the app does not listen", async () => {
    const json = await send("/@owner/dev/apps/down/", { headers: { cookie: sessionCookie(owner) } });
    expect(json.status).toBe(502);
    expect(json.json<{ message: string }>().message).toMatch(/did not answer on port \d+/);
    const html = await send("/@owner/dev/apps/down/", { headers: { cookie: sessionCookie(owner), accept: "text/html" } });
    expect(html.status).toBe(502);
    expect(html.headers["content-type"]).toMatch(/text\/html/);
    expect(html.text).toContain("did not answer on port");
    expect(html.text).not.toMatch(/at .*\.js:\d+/);
  });

  it("names what is missing to those who may reach the workspace", async () => {
    const res = await send("/@owner/dev/apps/nope/", { headers: { cookie: sessionCookie(owner) } });
    expect(res.status).toBe(404);
    expect(res.json<{ message: string }>().message).toContain('no app "nope"');
    const agent = await send("/@owner/dev.other/apps/web/", { headers: { cookie: sessionCookie(owner) } });
    expect(agent.status).toBe(404);
    expect(agent.json<{ message: string }>().message).toContain('no agent "other"');
  });

  it("is the owner's alone: 404 for members, 403 for those who can only read, 401 or login for anonymous", async () => {
    expect((await send("/@owner/dev/apps/web/", { headers: { cookie: sessionCookie(member) } })).status).toBe(404);
    // An unknown workspace looks the same as one that is not yours.
    expect((await send("/@owner/nothing/apps/web/", { headers: { cookie: sessionCookie(member) } })).status).toBe(404);
    const admin = await send("/@owner/dev/apps/web/", { headers: { cookie: sessionCookie(templateAdmin) } });
    expect(admin.status).toBe(403);
    expect(admin.json<{ message: string }>().message).toMatch(/may not open/);
    const anon = await send("/@owner/dev/apps/web/x");
    expect(anon.status).toBe(401);
    expect(anon.json<{ message: string }>().message).toMatch(/logged in/);
    // Anonymous callers learn nothing about which workspaces exist.
    expect((await send("/@owner/nothing/apps/web/")).status).toBe(401);
    const browser = await send("/@owner/dev/apps/web/x?y=1", { headers: { accept: "text/html" } });
    expect(browser.status).toBe(303);
    expect(browser.headers.location).toBe(`/login?redirect=${encodeURIComponent("/@owner/dev/apps/web/x?y=1")}`);
    const forged = await send("/@owner/dev/apps/web/", { headers: { cookie: "coder_session_token=AAAAAAAAAA-BBBBBBBBBBBBBBBBBBBBBB" } });
    expect(forged.status).toBe(401);
    // Path-based apps run on the dashboard's origin: their sharing level is not honored by default.
    expect((await send("/@owner/dev/apps/pub-path/")).status).toBe(401);
    expect((await send("/@owner/dev/apps/pub-path/", { headers: { cookie: sessionCookie(member) } })).status).toBe(404);
    expect((await send("/@owner/dev/apps/pub-path/", { headers: { cookie: sessionCookie(owner) } })).status).toBe(200);
  });
});

describe("subdomain apps", () => {
  it("signs a browser in through the dashboard with a one-time, host-bound ticket", async () => {
    const cookie = await signIn(owner, host("sub"), "/deep/path?q=1");
    const res = await send("/deep/path?q=1", { host: host("sub"), headers: { cookie: `${cookie}; ${sessionCookie(owner)}; mine=1` } });
    expect(res.status).toBe(200);
    const got = res.json<{ url: string; headers: Record<string, string> }>();
    expect(got.url).toBe("/deep/path?q=1");
    expect(got.headers.cookie).toBe("mine=1");
    expect(got.headers["x-forwarded-host"]).toBe(host("sub"));

    // The app host's cookie is no API token, and does nothing on another app's host.
    const appToken = cookie.split("=")[1]!;
    expect((await send("/api/v2/users/me", { headers: { "Coder-Session-Token": appToken } })).status).toBe(401);
    expect((await send("/", { host: host("sub-auth"), headers: { cookie: `coder_subdomain_app_session_token=${appToken}` } })).status).toBe(401);
  });

  it("a new sign-in on a host ends the session it replaces", async () => {
    const first = await signIn(owner, host("sub"));
    expect((await send("/", { host: host("sub"), headers: { cookie: first } })).status).toBe(200);
    const second = await signIn(owner, host("sub"), "/", first);
    expect(second).not.toBe(first);
    expect((await send("/", { host: host("sub"), headers: { cookie: first } })).status).toBe(401);
    expect((await send("/", { host: host("sub"), headers: { cookie: second } })).status).toBe(200);
  });

  it("refuses spent, forged and foreign tickets", async () => {
    const issued = await send(`/api/v2/applications/auth-redirect?redirect_uri=${encodeURIComponent(`http://${host("sub")}/`)}`, { headers: { cookie: sessionCookie(owner) } });
    expect(issued.status).toBe(307);
    const back = new URL(issued.headers.location as string);
    // Presented on another app's host, the ticket is refused (and stays unspent for its own).
    const foreign = await send(`/${back.search}`, { host: host("sub-pub") });
    expect(foreign.status).toBe(401);
    expect((await send(`/${back.search}`, { host: host("sub") })).status).toBe(303);
    const replay = await send(`/${back.search}`, { host: host("sub") });
    expect(replay.status).toBe(401);
    expect(replay.json<{ message: string }>().message).toMatch(/invalid, expired or already used/);
    expect((await send("/?coder_application_connect_api_key=app_AAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB", { host: host("sub") })).status).toBe(401);
  });

  it("checks the redirect target and the caller at the dashboard", async () => {
    const base = "/api/v2/applications/auth-redirect";
    const missing = await send(base, { headers: { cookie: sessionCookie(owner) } });
    expect(missing.status).toBe(400);
    expect(missing.json<{ validations: Array<{ field: string }> }>().validations[0]!.field).toBe("redirect_uri");
    for (const bad of ["http://evil.example.com/", "javascript:alert(1)", "not a url", `http://a.b${SUFFIX}/`, `http://user:pw@${host("sub")}/`]) {
      const res = await send(`${base}?redirect_uri=${encodeURIComponent(bad)}`, { headers: { cookie: sessionCookie(owner) } });
      expect(res.status, bad).toBe(400);
      expect(res.json<{ validations: Array<{ field: string }> }>().validations[0]!.field).toBe("redirect_uri");
    }
    const target = `${base}?redirect_uri=${encodeURIComponent(`http://${host("sub")}/`)}`;
    expect((await send(target)).status).toBe(401);
    const browser = await send(target, { headers: { accept: "text/html" } });
    expect(browser.status).toBe(303);
    expect(browser.headers.location).toBe(`/login?redirect=${encodeURIComponent(target)}`);
  });

  it("applies sharing levels", async () => {
    // Owner-only: a member signed in on the host still gets 404; a template admin 403.
    const memberCookie = await signIn(member, host("sub"));
    expect((await send("/", { host: host("sub"), headers: { cookie: memberCookie } })).status).toBe(404);
    const adminCookie = await signIn(templateAdmin, host("sub"));
    expect((await send("/", { host: host("sub"), headers: { cookie: adminCookie } })).status).toBe(403);
    // A site owner may reach others' subdomain apps (RBAC "ssh" on the workspace); here the owner owns it.
    expect((await send("/", { host: host("sub"), headers: { "Coder-Session-Token": tokenOf(owner) } })).status).toBe(200);
    expect((await send("/", { host: host("sub") })).status).toBe(401);

    // Authenticated: any logged-in user; the app's base path and Host are its URL's.
    const authed = await signIn(member, host("sub-auth"), "/x?y=1");
    const res = await send("/x?y=1", { host: host("sub-auth"), headers: { cookie: authed } });
    expect(res.status).toBe(200);
    expect(res.json<{ url: string; headers: Record<string, string> }>()).toMatchObject({ url: "/base/x?y=1", headers: { host: `localhost:${appPort}` } });
    expect((await send("/", { host: host("sub-auth") })).status).toBe(401);

    // Public: anyone.
    const anon = await send("/p", { host: host("sub-pub") });
    expect(anon.status).toBe(200);
    expect(anon.json<{ url: string }>().url).toBe("/p");
  });

  it("carries WebSockets with the app host's cookie", async () => {
    const cookie = await signIn(owner, host("sub"));
    const ws = await openWs("/ws", { host: host("sub"), cookie });
    try {
      ws.send("headers");
      const seen = JSON.parse(await nextMessage(ws)) as { headers: Record<string, string> };
      expect(seen.headers.cookie).toBeUndefined();
      ws.send("over the subdomain");
      expect(await nextMessage(ws)).toBe("over the subdomain");
    } finally {
      ws.close();
    }
  });

  it("reaches the agent through one shared, coordinated connection", async () => {
    // Every request above went through the same AgentConn: the agent knows one client peer.
    expect(await srv.db.store.getTailnetPeersOfAgent(agent.id, "client")).toHaveLength(1);
  });

  it("answers hosts that name no app with 404", async () => {
    const res = await send("/", { host: `nothing${SUFFIX}` });
    expect(res.status).toBe(404);
    expect(res.json<{ message: string }>().message).toContain("does not name a workspace app");
    // Hosts outside the pattern are the dashboard as usual.
    expect((await send("/api/v2/buildinfo", { host: "coder.example.test" })).status).toBe(200);
  });
});
