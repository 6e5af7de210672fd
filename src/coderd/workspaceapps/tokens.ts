// Credentials of subdomain apps. An app's host is another origin than the dashboard, so the
// browser's session cookie does not reach it; instead the dashboard hands out a one-time ticket
// (60 s, bound to one app host) that the app host exchanges for its own session cookie (bound to
// that host too). Both are rows of api_keys with scope "application_connect"; only a hash of the
// secret is stored. Their ids are not shaped like API key ids, so they are worthless against the
// API, and password changes and user suspension end them as they end login sessions.
import { randomBytes } from "node:crypto";
import { hashSecret, secretMatches } from "../auth/api-key.js";
import type { Ctx } from "../context.js";
import type { Subject } from "../rbac/index.js";

export const APP_TICKET_PARAM = "coder_application_connect_api_key";
export const APP_SCOPE = "application_connect";
const TICKET_LIFETIME_S = 60;
const TOKEN_RE = /^(app_[A-Za-z0-9_-]{12})\.([A-Za-z0-9_-]{32})$/;

const ticketName = (host: string) => `app-ticket:${host.toLowerCase()}`;
const sessionName = (host: string) => `app-session:${host.toLowerCase()}`;

async function insert(ctx: Ctx, userId: string, name: string, lifetimeSeconds: number): Promise<string> {
  const id = `app_${randomBytes(9).toString("base64url")}`;
  const secret = randomBytes(24).toString("base64url");
  await ctx.store.insertApiKey({
    id,
    hashed_secret: hashSecret(secret),
    user_id: userId,
    login_type: "none",
    token_name: name,
    scope: APP_SCOPE,
    lifetime_seconds: lifetimeSeconds,
    expires_at: new Date(Date.now() + lifetimeSeconds * 1000),
  });
  return `${id}.${secret}`;
}

/** A one-time ticket for the user on one app host ("host[:port]"). */
export function issueTicket(ctx: Ctx, userId: string, host: string): Promise<string> {
  return insert(ctx, userId, ticketName(host), TICKET_LIFETIME_S);
}

/**
 * Spends a ticket presented on `host`; returns the session token for that host's cookie, or
 * undefined when the ticket is unknown, spent, expired, or for another host.
 */
export async function exchangeTicket(ctx: Ctx, ticket: string, host: string): Promise<{ token: string; maxAgeSeconds: number } | undefined> {
  const m = TOKEN_RE.exec(ticket);
  if (!m) return undefined;
  const key = await ctx.store.getApiKeyById(m[1]!);
  if (!key || key.scope !== APP_SCOPE || key.token_name !== ticketName(host) || key.expires_at <= new Date()) return undefined;
  if (!secretMatches(m[2]!, key.hashed_secret)) return undefined;
  // Whoever deletes it spent it: a replayed ticket finds nothing.
  if (!(await ctx.store.deleteApiKey(key.id))) return undefined;
  const lifetime = Math.floor(ctx.sessionDurationMs / 1000);
  return { token: await insert(ctx, key.user_id, sessionName(host), lifetime), maxAgeSeconds: lifetime };
}

/** The subject of an app session cookie presented on `host`, or undefined. */
export async function verifyAppSession(ctx: Ctx, token: string, host: string): Promise<Subject | undefined> {
  const m = TOKEN_RE.exec(token);
  if (!m) return undefined;
  const found = await ctx.authCache.get(m[1]!, (id) => ctx.store.getApiKeyWithUser(id));
  if (!found) return undefined;
  const { key, user, orgRoles } = found;
  if (key.scope !== APP_SCOPE || key.token_name !== sessionName(host) || key.expires_at <= new Date()) return undefined;
  if (!secretMatches(m[2]!, key.hashed_secret) || user.status !== "active") return undefined;
  return { id: user.id, siteRoles: user.rbac_roles, orgRoles: Object.fromEntries(orgRoles.map((o) => [o.organization_id, o.roles])), scope: key.scope };
}

/** Ends the app session a new sign-in on the same host replaces (only if the token is genuine). */
export async function revokeAppSession(ctx: Ctx, token: string, host: string): Promise<void> {
  const m = TOKEN_RE.exec(token);
  if (!m) return;
  const key = await ctx.store.getApiKeyById(m[1]!);
  if (!key || key.scope !== APP_SCOPE || key.token_name !== sessionName(host) || !secretMatches(m[2]!, key.hashed_secret)) return;
  await ctx.store.deleteApiKey(key.id);
  // Every replica forgets the cached key at once.
  await ctx.authCache.invalidateUser(key.user_id);
}
