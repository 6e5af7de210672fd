// Organizations and their members.
import { randomUUID } from "node:crypto";
import type { FastifyRequest } from "fastify";
import { z } from "zod";
import type * as sdk from "../../codersdk/index.js";
import type { Organization } from "../../database/index.js";
import type { Ctx } from "../context.js";
import * as convert from "../convert.js";
import { requireAuth } from "../httpapi/authenticate.js";
import { authorizeAction, authorizeObject, can } from "../httpapi/authz.js";
import { BadRequestError, ConflictError, ForbiddenError, NotFoundError, ValidationFailedError } from "../httpapi/errors.js";
import type { Router } from "../httpapi/route.js";
import { parseInput } from "../httpapi/validate.js";
import { canAssignRole, isOrgRole, ORG_ROLES, ROLES, type RbacObject } from "../rbac/index.js";
import * as s from "./schemas.js";

const orgObject = (o: Organization): RbacObject => ({ type: "organization", id: o.id, orgId: o.id });
const memberObject = (orgId: string, userId?: string): RbacObject => ({ type: "organization_member", id: userId, orgId });

/** The organization named by a path segment (id, name, or "default") that the caller may read. */
export async function findOrg(ctx: Ctx, param: string): Promise<Organization | undefined> {
  if (s.UUID_RE.test(param)) return ctx.store.getOrganizationById(param);
  return (await ctx.store.getOrganizationByName(param)) ?? (param === "default" ? ctx.store.getDefaultOrganization() : undefined);
}

export async function loadOrg(ctx: Ctx, req: FastifyRequest, param: string): Promise<Organization> {
  const org = await findOrg(ctx, param);
  if (!org) throw new NotFoundError();
  authorizeObject(req, "read", orgObject(org));
  return org;
}

/** A member's user by id or username; only for callers already allowed to manage the org's members. */
async function loadTargetUser(ctx: Ctx, param: string) {
  const user = s.UUID_RE.test(param) ? await ctx.store.getUserById(param) : await ctx.store.getUserByUsername(param);
  if (!user) throw new NotFoundError("No such user.");
  return user;
}


const createOrg = z.object({ name: s.organizationName, display_name: s.displayName.optional(), description: z.string().max(1024).optional() });
const updateOrg = z.object({
  name: s.organizationName.optional(),
  display_name: s.displayName.optional(),
  description: z.string().max(1024, "must be at most 1024 characters").optional(),
});
const updateRoles = z.object({ roles: z.array(z.string().max(64)).max(20, "must list at most 20 roles") });

type OrgParams = { org: string };
type MemberParams = OrgParams & { user: string };

export function register(r: Router, ctx: Ctx): void {
  r.add({
    method: "GET",
    url: "/api/v2/organizations",
    auth: "user",
    handler: async (req): Promise<sdk.Organization[]> => {
      const auth = requireAuth(req);
      const ids = can(req, "read", { type: "organization" }) ? undefined : Object.keys(auth.subject.orgRoles);
      return (await ctx.store.listOrganizations(ids)).map(convert.organization);
    },
  });

  r.add({
    method: "POST",
    url: "/api/v2/organizations",
    auth: "user",
    handler: async (req, reply): Promise<sdk.Organization> => {
      authorizeAction(req, "create", { type: "organization" });
      const body = parseInput(createOrg, req.body);
      const auth = requireAuth(req);
      const org = await ctx.store
        .inTx(async (tx) => {
          const created = await tx.insertOrganization({
            id: randomUUID(),
            name: body.name,
            display_name: body.display_name || body.name,
            description: body.description ?? "",
          });
          await tx.insertOrganizationMember({ organization_id: created.id, user_id: auth.user.id, roles: ["organization-admin"] });
          return created;
        });
      await ctx.authCache.invalidateUser(auth.user.id);
      reply.code(201);
      return convert.organization(org);
    },
  });

  r.add({
    method: "GET",
    url: "/api/v2/organizations/:org",
    auth: "user",
    handler: async (req) => convert.organization(await loadOrg(ctx, req, (req.params as OrgParams).org)),
  });

  r.add({
    method: "PATCH",
    url: "/api/v2/organizations/:org",
    auth: "user",
    handler: async (req): Promise<sdk.Organization> => {
      const org = await loadOrg(ctx, req, (req.params as OrgParams).org);
      authorizeObject(req, "update", orgObject(org));
      const body = parseInput(updateOrg, req.body);
      const updated = await ctx.store.updateOrganization(org.id, body);
      if (!updated) throw new NotFoundError();
      return convert.organization(updated);
    },
  });

  r.add({
    method: "DELETE",
    url: "/api/v2/organizations/:org",
    auth: "user",
    handler: async (req, reply) => {
      const org = await loadOrg(ctx, req, (req.params as OrgParams).org);
      authorizeObject(req, "delete", orgObject(org));
      if (org.is_default) throw new BadRequestError("The default organization cannot be deleted.");
      const members = await ctx.store.listOrganizationMembers(org.id);
      await ctx.store.deleteOrganization(org.id);
      for (const m of members) await ctx.authCache.invalidateUser(m.user_id);
      reply.code(204);
    },
  });

  r.add({
    method: "GET",
    url: "/api/v2/organizations/:org/members",
    auth: "user",
    handler: async (req): Promise<sdk.OrganizationMember[]> => {
      const org = await loadOrg(ctx, req, (req.params as OrgParams).org);
      authorizeObject(req, "read", memberObject(org.id));
      const members = await ctx.store.listOrganizationMembers(org.id);
      const out: sdk.OrganizationMember[] = [];
      for (const m of members) {
        const u = await ctx.store.getUserById(m.user_id);
        if (u) out.push(convert.organizationMember(m, u));
      }
      return out;
    },
  });

  r.add({
    method: "POST",
    url: "/api/v2/organizations/:org/members/:user",
    auth: "user",
    handler: async (req, reply): Promise<sdk.OrganizationMember> => {
      const params = req.params as MemberParams;
      const org = await loadOrg(ctx, req, params.org);
      authorizeObject(req, "create", memberObject(org.id));
      const user = await loadTargetUser(ctx, params.user);
      try {
        const m = await ctx.store.insertOrganizationMember({ organization_id: org.id, user_id: user.id, roles: [] });
        await ctx.authCache.invalidateUser(user.id);
        reply.code(201);
        return convert.organizationMember(m, user);
      } catch (err) {
        if ((err as { code?: string }).code === "23505") throw new ConflictError("The user is already a member of this organization.");
        throw err;
      }
    },
  });

  r.add({
    method: "DELETE",
    url: "/api/v2/organizations/:org/members/:user",
    auth: "user",
    handler: async (req, reply) => {
      const params = req.params as MemberParams;
      const org = await loadOrg(ctx, req, params.org);
      authorizeObject(req, "delete", memberObject(org.id));
      const user = await loadTargetUser(ctx, params.user);
      if (user.id === requireAuth(req).user.id) throw new BadRequestError("You cannot remove yourself from an organization.");
      if (!(await ctx.store.deleteOrganizationMember(org.id, user.id))) throw new NotFoundError("The user is not a member of this organization.");
      await ctx.authCache.invalidateUser(user.id);
      reply.code(204);
    },
  });

  r.add({
    method: "PUT",
    url: "/api/v2/organizations/:org/members/:user/roles",
    auth: "user",
    handler: async (req): Promise<sdk.OrganizationMember> => {
      const params = req.params as MemberParams;
      const org = await loadOrg(ctx, req, params.org);
      authorizeObject(req, "read", memberObject(org.id));
      const body = parseInput(updateRoles, req.body);
      const wanted = [...new Set(body.roles.filter((n) => n !== "organization-member"))];
      const unknown = wanted.filter((n) => !isOrgRole(n));
      if (unknown.length) {
        throw new ValidationFailedError([{ field: "roles", detail: `unknown organization role ${unknown.join(", ")} (known: ${ORG_ROLES.join(", ")})` }]);
      }
      const user = await loadTargetUser(ctx, params.user);
      const member = await ctx.store.getOrganizationMember(org.id, user.id);
      if (!member) throw new NotFoundError("The user is not a member of this organization.");
      const auth = requireAuth(req);
      if (user.id === auth.user.id) throw new BadRequestError("You cannot change your own roles.");
      const changed = [...wanted.filter((n) => !member.roles.includes(n)), ...member.roles.filter((n) => !wanted.includes(n))];
      const denied = changed.filter((n) => !canAssignRole(auth.subject, n, org.id));
      if (denied.length) {
        throw new ForbiddenError("Forbidden.", `You may not assign or remove the role ${denied.map((n) => ROLES[n]?.displayName ?? n).join(", ")}.`);
      }
      const updated = await ctx.store.updateOrganizationMemberRoles(org.id, user.id, wanted);
      if (!updated) throw new NotFoundError();
      await ctx.authCache.invalidateUser(user.id);
      return convert.organizationMember(updated, user);
    },
  });
}
