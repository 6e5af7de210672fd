// Resolves the caller from the Coder-Session-Token header or coder_session_token cookie.
// Runs on every authenticated request: one query (key + user + memberships), last-use writes
// throttled to once a minute per key.
import type { FastifyRequest } from "fastify";
import { SESSION_TOKEN_COOKIE, SESSION_TOKEN_HEADER } from "../../codersdk/index.js";
import type { ApiKey, User } from "../../database/index.js";
import { parseToken, secretMatches } from "../auth/api-key.js";
import type { Ctx } from "../context.js";
import type { Subject } from "../rbac/index.js";
import { readCookie } from "./cookies.js";
import { UnauthorizedError } from "./errors.js";

export interface AuthContext {
  key: ApiKey;
  user: User;
  subject: Subject;
  /** The user's organization memberships, loaded with the key. */
  memberships: Array<{ organization_id: string; roles: string[] }>;
}

declare module "fastify" {
  interface FastifyRequest {
    auth?: AuthContext;
  }
}

const LAST_USED_WRITE_INTERVAL_MS = 60_000;

export function presentedToken(req: FastifyRequest): string | undefined {
  const header = req.headers[SESSION_TOKEN_HEADER.toLowerCase()];
  if (typeof header === "string" && header) return header;
  return readCookie(req.headers.cookie, SESSION_TOKEN_COOKIE);
}

export async function authenticate(ctx: Ctx, req: FastifyRequest): Promise<AuthContext> {
  const token = presentedToken(req);
  if (!token) {
    throw new UnauthorizedError(
      "You must be logged in to use this endpoint.",
      `Provide a session token in the "${SESSION_TOKEN_HEADER}" header or the "${SESSION_TOKEN_COOKIE}" cookie.`,
    );
  }
  const parsed = parseToken(token);
  if (!parsed) throw new UnauthorizedError("Invalid API key.", "The session token is malformed.");
  const found = await ctx.authCache.get(parsed.id, (id) => ctx.store.getApiKeyWithUser(id));
  if (!found || !secretMatches(parsed.secret, found.key.hashed_secret)) {
    throw new UnauthorizedError("Invalid API key.", "The session token does not exist or was revoked. Log in again.");
  }
  const { key, user, orgRoles } = found;
  const now = new Date();
  if (key.expires_at <= now) {
    throw new UnauthorizedError("API key expired.", `The session token expired at ${key.expires_at.toISOString()}. Log in again.`);
  }
  if (user.status !== "active") {
    throw new UnauthorizedError("Your account is suspended.", "Contact an administrator to reactivate your account.");
  }
  if (now.getTime() - key.last_used.getTime() > LAST_USED_WRITE_INTERVAL_MS) {
    // Login sessions slide forward while used; named tokens keep the expiry they were given.
    const expires = key.login_type === "token" ? undefined : new Date(now.getTime() + key.lifetime_seconds * 1000);
    // The (possibly cached) key records the write too, so the next request does not repeat it.
    key.last_used = now;
    if (expires) key.expires_at = expires;
    Promise.all([ctx.store.touchApiKey(key.id, now, expires), ctx.store.touchUserLastSeen(user.id, now)]).catch((err) =>
      req.log.warn({ err }, "failed to record API key use"),
    );
  }
  const subject: Subject = {
    id: user.id,
    siteRoles: user.rbac_roles,
    orgRoles: Object.fromEntries(orgRoles.map((m) => [m.organization_id, m.roles])),
    scope: key.scope,
  };
  return { key, user, subject, memberships: orgRoles };
}

export function requireAuth(req: FastifyRequest): AuthContext {
  if (!req.auth) throw new UnauthorizedError();
  return req.auth;
}
