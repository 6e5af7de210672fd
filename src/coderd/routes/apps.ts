// Workspace apps: the reverse proxy from a browser to a web app inside a workspace, through
// coderd's own tunnel to the agent.
//   path-based:      /@<user>/<workspace>[.<agent>]/apps/<slug>/...  (on the dashboard's origin)
//   subdomain-based: <slug>--<agent>--<workspace>--<user>.<CODER_WILDCARD_ACCESS_URL suffix>
// A subdomain app's host gets its own session cookie through a redirect via the dashboard
// (/api/v2/applications/auth-redirect), which hands it a one-time ticket.
import type { Duplex } from "node:stream";
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from "fastify";
import { z } from "zod";
import { SESSION_TOKEN_HEADER } from "../../codersdk/index.js";
import type { Ctx } from "../context.js";
import { authenticate, presentedToken, type AuthContext } from "../httpapi/authenticate.js";
import { readCookie, sessionCookie } from "../httpapi/cookies.js";
import { NotFoundError, UnauthorizedError, ValidationFailedError } from "../httpapi/errors.js";
import type { Router } from "../httpapi/route.js";
import { parseInput } from "../httpapi/validate.js";
import type { Subject } from "../rbac/index.js";
import { checkAppAccess, type AppRef, type ResolvedApp } from "../workspaceapps/access.js";
import { matchAppHost, parseAppLabel, type WildcardHost } from "../workspaceapps/hosts.js";
import { proxyHttp, proxyUpgrade, renderError, SUBDOMAIN_APP_COOKIE, type ErrorBody, type Forwarded, type UpstreamTarget } from "../workspaceapps/proxy.js";
import { APP_TICKET_PARAM, exchangeTicket, issueTicket, revokeAppSession, verifyAppSession } from "../workspaceapps/tokens.js";

/** Methods path-based apps are proxied for (HEAD comes with GET). */
export const APP_METHODS: readonly HTTPMethods[] = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
/** Without and with a path below the app (the first redirects to the trailing-slash form). */
export const PATH_APP_ROUTES = ["/@:user/:workspace_and_agent/apps/:app", "/@:user/:workspace_and_agent/apps/:app/*"] as const;
export const AUTH_REDIRECT_ROUTE = "/api/v2/applications/auth-redirect";

const wantsHtml = (req: FastifyRequest) => (req.headers.accept ?? "").includes("text/html");

function sendError(req: FastifyRequest, reply: FastifyReply, e: ErrorBody): FastifyReply {
  const { type, body } = renderError(e, wantsHtml(req));
  return reply.code(e.status).type(type).header("cache-control", "no-store").send(body);
}

/** The caller by their session token, if they presented a valid one. */
async function optionalAuth(ctx: Ctx, req: FastifyRequest): Promise<AuthContext | undefined> {
  if (!presentedToken(req)) return undefined;
  try {
    req.auth = await authenticate(ctx, req);
    return req.auth;
  } catch (err) {
    if (err instanceof UnauthorizedError) return undefined;
    throw err;
  }
}

/** The bytes that arrived after the upgrade request's head (kept by @fastify/websocket). */
function upgradeHead(req: FastifyRequest): Buffer {
  const raw = req.raw as unknown as Record<symbol, unknown>;
  const sym = Object.getOwnPropertySymbols(raw).find((s) => s.description === "ws-head");
  const head = sym ? raw[sym] : undefined;
  return Buffer.isBuffer(head) ? head : Buffer.alloc(0);
}

export async function register(app: FastifyInstance, router: Router, ctx: Ctx, wildcard: WildcardHost | undefined): Promise<void> {
  // The access URL may be set after start (port 0): read it per request.
  const scheme = () => new URL(ctx.accessUrl).protocol.replace(":", "");
  const secureCookie = () => ctx.secureAuthCookie || ctx.accessUrl.startsWith("https:");
  /** Upgraded connections joined to apps: cut when coderd stops (the HTTP server would wait on them). */
  const tunnels = new Set<Duplex>();
  app.addHook("preClose", (done) => {
    for (const t of tunnels) t.destroy();
    done();
  });

  /** Proxies to the resolved app; `path` is what the app sees (path and query). */
  async function proxy(req: FastifyRequest, reply: FastifyReply, target: ResolvedApp, path: string, prefix?: string): Promise<FastifyReply> {
    const { url, agent } = target;
    const https = url.protocol === "https:";
    const base = url.pathname.replace(/\/+$/, "");
    const [pathOnly, query = ""] = splitOnce(path, "?");
    const merged = [url.search.slice(1), query].filter(Boolean).join("&");
    const t: UpstreamTarget = { path: `${base}${pathOnly}${merged ? `?${merged}` : ""}`, host: url.hostname, port: Number(url.port) || (https ? 443 : 80), https };
    let stream: Duplex;
    try {
      stream = await ctx.agentConns.openStream(agent.id, { service: "tcp", port: t.port });
    } catch (err) {
      return sendError(req, reply, { status: 502, message: "Could not reach the workspace agent.", detail: (err as Error).message });
    }
    reply.hijack();
    const fwd: Forwarded = { for: req.ip, proto: scheme(), host: req.headers.host ?? "", prefix };
    const started = performance.now();
    let status: number | undefined;
    if (req.ws) {
      const socket = req.raw.socket;
      tunnels.add(socket);
      socket.once("close", () => tunnels.delete(socket));
      status = await proxyUpgrade(req.raw, socket, upgradeHead(req), stream, t, fwd, wantsHtml(req));
    } else {
      status = await proxyHttp(req.raw, reply.raw, stream, t, fwd, wantsHtml(req));
    }
    req.log.info(
      { method: req.method, route: "workspace app", app: target.app.slug, status, duration_ms: Math.round((performance.now() - started) * 100) / 100, user_id: req.auth?.user.id },
      "request",
    );
    return reply;
  }

  // Path-based apps.
  async function pathApp(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const p = req.params as { user: string; workspace_and_agent: string; app: string };
    const [pathOnly, query] = splitOnce(req.url, "?");
    const prefix = `/${pathOnly.split("/").slice(1, 5).join("/")}`;
    const rest = pathOnly.slice(prefix.length);
    if (rest === "") return reply.redirect(`${prefix}/${query !== undefined ? `?${query}` : ""}`, 307);
    const [workspace, agent] = splitOnce(p.workspace_and_agent, ".");
    const ref: AppRef = { username: p.user.replace(/^@/, ""), workspace, agent, slug: p.app };
    const auth = await optionalAuth(ctx, req);
    const access = await checkAppAccess(ctx, auth?.subject, ref, true);
    if (access.kind === "login") {
      if (wantsHtml(req)) return reply.redirect(`/login?redirect=${encodeURIComponent(req.url)}`, 303);
      return sendError(req, reply, { status: 401, message: "You must be logged in to open this app.", detail: `Provide a session token in the "${SESSION_TOKEN_HEADER}" header or log in.` });
    }
    if (access.kind === "error") return sendError(req, reply, access);
    return proxy(req, reply, access.app, rest + (query !== undefined ? `?${query}` : ""), prefix);
  }

  await app.register(async (scope) => {
    // Bodies stream to the app untouched, whatever their type and size.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", (_req, _payload, done) => done(null));
    // An upgrade is proxied before @fastify/websocket would answer it itself.
    scope.addHook("preHandler", async (req, reply) => {
      if (req.ws) return pathApp(req, reply);
    });
    const r = router.scoped(scope);
    for (const url of PATH_APP_ROUTES) for (const method of APP_METHODS) r.add({ method, url, auth: "public", handler: pathApp });
  });

  // Subdomain apps: every request to an app host, whatever its path, belongs to the app.
  app.addHook("onRequest", async (req, reply) => {
    if (!wildcard) return;
    // The dashboard's own host is never an app, even when the pattern would cover it.
    if (req.headers.host?.toLowerCase() === new URL(ctx.accessUrl).host) return;
    const label = matchAppHost(wildcard, req.headers.host);
    if (label === undefined) return;
    const host = req.headers.host!.toLowerCase();
    const ref = parseAppLabel(label);
    if (!ref) {
      return sendError(req, reply, { status: 404, message: `"${host}" does not name a workspace app.`, detail: `App hosts look like <app>--<agent>--<workspace>--<user>${wildcard.suffix}.` });
    }
    const url = new URL(req.url, "http://app");
    const ticket = url.searchParams.get(APP_TICKET_PARAM);
    if (ticket !== null) {
      const session = await exchangeTicket(ctx, ticket, host);
      if (!session) return sendError(req, reply, { status: 401, message: "This app sign-in link is invalid, expired or already used.", detail: "Open the app again." });
      url.searchParams.delete(APP_TICKET_PARAM);
      const previous = readCookie(req.headers.cookie, SUBDOMAIN_APP_COOKIE);
      if (previous) await revokeAppSession(ctx, previous, host);
      return reply
        .header("set-cookie", sessionCookie(SUBDOMAIN_APP_COOKIE, session.token, { secure: secureCookie(), maxAgeSeconds: session.maxAgeSeconds }))
        .header("cache-control", "no-store")
        .redirect(`${url.pathname}${url.search}`, 303);
    }
    let subject: Subject | undefined;
    const cookie = readCookie(req.headers.cookie, SUBDOMAIN_APP_COOKIE);
    if (cookie) subject = await verifyAppSession(ctx, cookie, host);
    // A CLI or script may present its session token instead.
    subject ??= (await optionalAuth(ctx, req))?.subject;
    const access = await checkAppAccess(ctx, subject, ref, false);
    if (access.kind === "login") {
      if (wantsHtml(req) && (req.method === "GET" || req.method === "HEAD")) {
        const back = `${scheme()}://${host}${req.url}`;
        return reply.header("cache-control", "no-store").redirect(`${ctx.accessUrl}${AUTH_REDIRECT_ROUTE}?redirect_uri=${encodeURIComponent(back)}`, 303);
      }
      return sendError(req, reply, { status: 401, message: "You must be logged in to open this app.", detail: "Open it in a browser to sign in, or send a session token." });
    }
    if (access.kind === "error") return sendError(req, reply, access);
    return proxy(req, reply, access.app, req.url);
  });

  // Issues a subdomain app's one-time ticket and sends the browser back to the app with it.
  router.add({
    method: "GET",
    url: AUTH_REDIRECT_ROUTE,
    // Anyone may arrive here; those not logged in are sent to log in first.
    auth: "public",
    handler: async (req, reply) => {
      if (!wildcard) throw new NotFoundError("Subdomain apps are not enabled on this deployment.", "Set CODER_WILDCARD_ACCESS_URL (--wildcard-access-url).");
      const auth = await optionalAuth(ctx, req);
      if (!auth) {
        if (wantsHtml(req)) return reply.redirect(`/login?redirect=${encodeURIComponent(req.url)}`, 303);
        throw new UnauthorizedError();
      }
      const q = parseInput(z.object({ redirect_uri: z.string().min(1, "is required").max(4096) }), req.query, "query");
      const invalid = (detail: string) => new ValidationFailedError([{ field: "redirect_uri", detail }], "Invalid query parameters.");
      let target: URL;
      try {
        target = new URL(q.redirect_uri);
      } catch {
        throw invalid("must be an absolute URL");
      }
      if (target.protocol !== "http:" && target.protocol !== "https:") throw invalid("must be an http(s) URL");
      const label = target.username || target.password ? undefined : matchAppHost(wildcard, target.host);
      if (label === undefined || !parseAppLabel(label)) throw invalid(`must be the URL of a workspace app under ${wildcard.pattern}`);
      target.searchParams.set(APP_TICKET_PARAM, await issueTicket(ctx, auth.user.id, target.host));
      return reply.header("cache-control", "no-store").redirect(target.toString(), 307);
    },
  });
}

function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)];
}
