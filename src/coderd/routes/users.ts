// Users: list/search, create, read, profile, status, password, site roles, delete.
import { randomBytes, randomUUID } from "node:crypto";
import type { FastifyRequest } from "fastify";
import { z } from "zod";
import type * as sdk from "../../codersdk/index.js";
import type { User } from "../../database/index.js";
import { hashPassword, verifyPassword } from "../auth/password.js";
import type { Ctx } from "../context.js";
import * as convert from "../convert.js";
import { requireAuth } from "../httpapi/authenticate.js";
import { authorizeAction, authorizeObject, can } from "../httpapi/authz.js";
import { BadRequestError, ForbiddenError, NotFoundError, ValidationFailedError } from "../httpapi/errors.js";
import type { Router } from "../httpapi/route.js";
import { searchError, splitSearch } from "../httpapi/search.js";
import { parseInput } from "../httpapi/validate.js";
import { canAssignRole, isSiteRole, ROLES, SITE_ROLES, type RbacObject } from "../rbac/index.js";
import * as s from "./schemas.js";

export const userObject = (u: Pick<User, "id">): RbacObject => ({ type: "user", id: u.id, ownerId: u.id });

/** Finds the user named by a path segment ("me", an id or a username) that the caller may read. */
export async function loadUser(ctx: Ctx, req: FastifyRequest, param: string): Promise<User> {
  const auth = requireAuth(req);
  let found: User | undefined;
  if (param === "me") found = auth.user;
  else if (s.UUID_RE.test(param)) found = await ctx.store.getUserById(param);
  else found = await ctx.store.getUserByUsername(param);
  if (!found) throw new NotFoundError();
  authorizeObject(req, "read", userObject(found));
  return found;
}

/** Only an owner may change an owner: a user admin must not be able to lock owners out. */
function protectOwner(req: FastifyRequest, target: User): void {
  const caller = requireAuth(req);
  if (target.rbac_roles.includes("owner") && !caller.subject.siteRoles.includes("owner")) {
    throw new ForbiddenError("Forbidden.", "Only an owner may change another owner.");
  }
}

async function toSdkUser(ctx: Ctx, u: User, req?: FastifyRequest): Promise<sdk.User> {
  // The caller's own memberships came with its API key: no second query for /users/me.
  const auth = req?.auth;
  return convert.user(u, auth?.user.id === u.id ? auth.memberships : await ctx.store.getOrganizationMembershipsByUser(u.id));
}

const listQuery = z.object({
  q: z.string().max(1024, "must be at most 1024 characters").optional(),
  limit: z.coerce.number().int("must be an integer").min(0, "must not be negative").max(1000, "must be at most 1000").optional(),
  offset: z.coerce.number().int("must be an integer").min(0, "must not be negative").optional(),
  after_id: s.uuid.optional(),
});

const SEARCH_KEYS = ["status", "role", "login_type", "username", "email"] as const;

/** Parses "q": free text plus key:value filters, as in `status:active role:owner alice`. */
function parseSearch(q: string | undefined): { text?: string; status?: User["status"]; role?: string; loginType?: User["login_type"] } {
  const out: ReturnType<typeof parseSearch> = {};
  const { words, filters } = splitSearch(q);
  for (const { key, value } of filters) {
    switch (key) {
      case "status":
        if (value !== "active" && value !== "suspended") throw searchError(`status must be active or suspended, not "${value}"`);
        out.status = value;
        break;
      case "role":
        if (!isSiteRole(value)) throw searchError(`role must be one of ${SITE_ROLES.join(", ")}, not "${value}"`);
        out.role = value;
        break;
      case "login_type":
        if (value !== "password" && value !== "none" && value !== "token") throw searchError(`login_type must be password or none, not "${value}"`);
        out.loginType = value;
        break;
      case "username":
      case "email":
        words.push(value);
        break;
      default:
        throw searchError(`unknown filter "${key}" (known: ${SEARCH_KEYS.join(", ")})`);
    }
  }
  if (words.length) out.text = words.join(" ");
  return out;
}

const createUser = z.object({
  email: s.email,
  username: s.username,
  name: s.displayName.optional(),
  password: s.password.optional(),
  login_type: z.enum(["password", "none"]).optional(),
  organization_ids: z.array(s.uuid).max(100, "must list at most 100 organizations").optional(),
});

const updateProfile = z.object({ username: s.username, name: s.displayName.optional() });
const updatePassword = z.object({ old_password: z.string().max(256).optional(), password: s.password });
const updateRoles = z.object({ roles: z.array(z.string().max(64)).max(20, "must list at most 20 roles") });

export function register(r: Router, ctx: Ctx): void {
  r.add({
    method: "GET",
    url: "/api/v2/users",
    auth: "user",
    handler: async (req): Promise<sdk.GetUsersResponse> => {
      const query = parseInput(listQuery, req.query, "query");
      const search = parseSearch(query.q);
      const auth = requireAuth(req);
      // Without site-wide read, a caller sees only itself.
      const ids = can(req, "read", { type: "user" }) ? undefined : [auth.user.id];
      const { users, count } = await ctx.store.searchUsers({
        ...search,
        ids,
        afterId: query.after_id,
        limit: query.limit || 100,
        offset: query.offset ?? 0,
      });
      const memberships = await ctx.store.getOrganizationMembershipsByUsers(users.map((u) => u.id));
      return { users: users.map((u) => convert.user(u, memberships.filter((m) => m.user_id === u.id))), count };
    },
  });

  r.add({
    method: "POST",
    url: "/api/v2/users",
    auth: "user",
    handler: async (req, reply): Promise<sdk.User> => {
      authorizeAction(req, "create", { type: "user" });
      const body = parseInput(createUser, req.body);
      const loginType = body.login_type ?? "password";
      if (loginType === "password" && !body.password) {
        throw new ValidationFailedError([{ field: "password", detail: "is required when login_type is password" }]);
      }
      if (loginType === "none" && body.password) {
        throw new ValidationFailedError([{ field: "password", detail: "must be empty when login_type is none" }]);
      }
      const hashed = body.password ? await hashPassword(body.password) : null;
      const user = await ctx.store.inTx(async (tx) => {
        const orgIds = body.organization_ids ?? [];
        if (orgIds.length === 0) {
          const def = await tx.getDefaultOrganization();
          if (def) orgIds.push(def.id);
        }
        for (const id of orgIds) {
          if (!(await tx.getOrganizationById(id))) {
            throw new ValidationFailedError([{ field: "organization_ids", detail: `organization ${id} does not exist` }]);
          }
          authorizeObject(req, "create", { type: "organization_member", orgId: id });
        }
        const created = await tx.insertUser({
          id: randomUUID(),
          email: body.email,
          username: body.username,
          name: body.name ?? "",
          hashed_password: hashed,
          login_type: loginType,
        });
        for (const id of new Set(orgIds)) await tx.insertOrganizationMember({ organization_id: id, user_id: created.id, roles: [] });
        return created;
      });
      req.log.info({ user_id: user.id }, "user created");
      reply.code(201);
      return toSdkUser(ctx, user);
    },
  });

  r.add({
    method: "GET",
    url: "/api/v2/users/roles",
    auth: "user",
    handler: async (req): Promise<sdk.AssignableRole[]> => {
      const { subject } = requireAuth(req);
      return SITE_ROLES.filter((n) => n !== "member").map((n) => ({ ...convert.role(n), assignable: canAssignRole(subject, n) }));
    },
  });

  r.add({
    method: "GET",
    url: "/api/v2/users/:user",
    auth: "user",
    handler: async (req) => toSdkUser(ctx, await loadUser(ctx, req, (req.params as { user: string }).user), req),
  });

  r.add({
    method: "DELETE",
    url: "/api/v2/users/:user",
    auth: "user",
    handler: async (req, reply) => {
      const target = await loadUser(ctx, req, (req.params as { user: string }).user);
      if (target.id === requireAuth(req).user.id) throw new BadRequestError("You cannot delete yourself.");
      authorizeObject(req, "delete", { type: "user", id: target.id });
      protectOwner(req, target);
      await ctx.store.inTx(async (tx) => {
        // The username and email become free again; the row stays for history.
        await tx.updateUser(target.id, { deleted: true, username: `${target.username}-deleted-${randomBytes(4).toString("hex")}` });
        await tx.deleteApiKeysByUser(target.id);
      });
      await ctx.authCache.invalidateUser(target.id);
      req.log.info({ target_user_id: target.id }, "user deleted");
      reply.code(204);
    },
  });

  r.add({
    method: "PUT",
    url: "/api/v2/users/:user/profile",
    auth: "user",
    handler: async (req): Promise<sdk.User> => {
      const target = await loadUser(ctx, req, (req.params as { user: string }).user);
      authorizeObject(req, "update", userObject(target));
      protectOwner(req, target);
      const body = parseInput(updateProfile, req.body);
      const updated = await ctx.store.updateUser(target.id, { username: body.username, name: body.name ?? target.name });
      if (!updated) throw new NotFoundError();
      await ctx.authCache.invalidateUser(target.id);
      return toSdkUser(ctx, updated);
    },
  });

  for (const [action, status] of [
    ["suspend", "suspended"],
    ["activate", "active"],
  ] as const) {
    r.add({
      method: "PUT",
      url: `/api/v2/users/:user/status/${action}`,
      auth: "user",
      handler: async (req): Promise<sdk.User> => {
        const target = await loadUser(ctx, req, (req.params as { user: string }).user);
        if (target.id === requireAuth(req).user.id) throw new BadRequestError(`You cannot ${action} yourself.`);
        authorizeObject(req, "update", { type: "user", id: target.id });
        protectOwner(req, target);
        const updated = await ctx.store.updateUserStatus(target.id, status);
        if (!updated) throw new NotFoundError();
        await ctx.authCache.invalidateUser(target.id);
        req.log.info({ target_user_id: target.id, status }, "user status changed");
        return toSdkUser(ctx, updated);
      },
    });
  }

  r.add({
    method: "PUT",
    url: "/api/v2/users/:user/password",
    auth: "user",
    handler: async (req, reply) => {
      const target = await loadUser(ctx, req, (req.params as { user: string }).user);
      const auth = requireAuth(req);
      const self = target.id === auth.user.id;
      // Changing one's own password takes the old one; an admin resets others' without it.
      if (self) authorizeObject(req, "update_personal", userObject(target));
      else authorizeObject(req, "update", { type: "user", id: target.id });
      protectOwner(req, target);
      const body = parseInput(updatePassword, req.body);
      if (target.login_type !== "password") throw new BadRequestError("This user does not log in with a password.");
      if (self) {
        if (!body.old_password) throw new ValidationFailedError([{ field: "old_password", detail: "is required to change your own password" }]);
        if (!target.hashed_password || !(await verifyPassword(body.old_password, target.hashed_password))) {
          throw new ValidationFailedError([{ field: "old_password", detail: "is incorrect" }], "Incorrect password.");
        }
      }
      const hashed = await hashPassword(body.password);
      await ctx.store.inTx(async (tx) => {
        await tx.updateUser(target.id, { hashed_password: hashed });
        // Every other login session of the user ends; the one making the change stays.
        await tx.deleteLoginSessionsByUser(target.id, self ? auth.key.id : undefined);
      });
      await ctx.authCache.invalidateUser(target.id);
      reply.code(204);
    },
  });

  r.add({
    method: "GET",
    url: "/api/v2/users/:user/roles",
    auth: "user",
    handler: async (req): Promise<sdk.UserRoles> => {
      const target = await loadUser(ctx, req, (req.params as { user: string }).user);
      const memberships = await ctx.store.getOrganizationMembershipsByUser(target.id);
      return {
        roles: target.rbac_roles,
        organization_roles: Object.fromEntries(memberships.map((m) => [m.organization_id, m.roles])),
      };
    },
  });

  r.add({
    method: "PUT",
    url: "/api/v2/users/:user/roles",
    auth: "user",
    handler: async (req): Promise<sdk.User> => {
      const target = await loadUser(ctx, req, (req.params as { user: string }).user);
      const auth = requireAuth(req);
      const body = parseInput(updateRoles, req.body);
      const wanted = [...new Set(body.roles.filter((n) => n !== "member"))];
      const unknown = wanted.filter((n) => !isSiteRole(n));
      if (unknown.length) {
        throw new ValidationFailedError([
          { field: "roles", detail: `unknown site role${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")} (known: ${SITE_ROLES.join(", ")})` },
        ]);
      }
      if (target.id === auth.user.id) throw new BadRequestError("You cannot change your own roles.");
      const changed = [...wanted.filter((n) => !target.rbac_roles.includes(n)), ...target.rbac_roles.filter((n) => !wanted.includes(n))];
      const denied = changed.filter((n) => !canAssignRole(auth.subject, n));
      if (denied.length) {
        // Without any role-assignment right the target stays invisible-or-forbidden like any update.
        authorizeObject(req, "update", { type: "user", id: target.id });
        throw new ForbiddenError("Forbidden.", `You may not assign or remove the role${denied.length > 1 ? "s" : ""} ${denied.map((n) => ROLES[n]?.displayName ?? n).join(", ")}.`);
      }
      const updated = await ctx.store.updateUser(target.id, { rbac_roles: wanted });
      if (!updated) throw new NotFoundError();
      await ctx.authCache.invalidateUser(target.id);
      req.log.info({ target_user_id: target.id, roles: wanted }, "user roles changed");
      return toSdkUser(ctx, updated);
    },
  });

  r.add({
    method: "GET",
    url: "/api/v2/users/:user/organizations",
    auth: "user",
    handler: async (req): Promise<sdk.Organization[]> => {
      const target = await loadUser(ctx, req, (req.params as { user: string }).user);
      const memberships = await ctx.store.getOrganizationMembershipsByUser(target.id);
      const orgs = await ctx.store.listOrganizations(memberships.map((m) => m.organization_id));
      return orgs.filter((o) => can(req, "read", { type: "organization", id: o.id, orgId: o.id })).map(convert.organization);
    },
  });
}
