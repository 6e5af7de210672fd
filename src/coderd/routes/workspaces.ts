// Workspaces and their builds: create (first build), start/stop/delete builds, lists with
// filters, logs, cancel, and a live watch.
import { randomUUID } from "node:crypto";
import type { FastifyRequest } from "fastify";
import { z } from "zod";
import type * as sdk from "../../codersdk/index.js";
import { isUniqueViolation, type Store, type User, type Workspace, type WorkspaceBuild } from "../../database/index.js";
import type { Ctx } from "../context.js";
import { requireAuth } from "../httpapi/authenticate.js";
import { authorizeObject, can } from "../httpapi/authz.js";
import { BadRequestError, ConflictError, NotFoundError, ValidationFailedError } from "../httpapi/errors.js";
import type { Router } from "../httpapi/route.js";
import { searchError, splitSearch } from "../httpapi/search.js";
import { parseInput } from "../httpapi/validate.js";
import { followedJobs, followLogs, listLogs, logsQuery } from "../jobs/logs.js";
import { watchWorkspace } from "../jobs/watch.js";
import { resolveParameters } from "../parameters.js";
import { presentBuilds, presentWorkspaces, workspaceStatus } from "../present.js";
import { HOST_TAG } from "../provisionerdserver/server.js";
import { workspaceChannel } from "../pubsub-channels.js";
import type { RbacObject } from "../rbac/index.js";
import { loadTemplate } from "./templates.js";
import * as s from "./schemas.js";
import { loadUser } from "./users.js";

const workspaceObject = (w: Pick<Workspace, "id" | "owner_id" | "organization_id">): RbacObject => ({
  type: "workspace",
  id: w.id,
  ownerId: w.owner_id,
  orgId: w.organization_id,
});

async function loadWorkspace(ctx: Ctx, req: FastifyRequest, id: string): Promise<Workspace> {
  const w = s.UUID_RE.test(id) ? await ctx.store.getWorkspaceById(id) : undefined;
  if (!w) throw new NotFoundError();
  authorizeObject(req, "read", workspaceObject(w));
  return w;
}

async function loadBuild(ctx: Ctx, req: FastifyRequest, id: string): Promise<WorkspaceBuild> {
  const b = s.UUID_RE.test(id) ? await ctx.store.getWorkspaceBuildById(id) : undefined;
  const w = b && (await ctx.store.getWorkspaceById(b.workspace_id, true));
  if (!b || !w) throw new NotFoundError();
  authorizeObject(req, "read", workspaceObject(w));
  return b;
}

const paramValues = z.array(z.object({ name: z.string().min(1).max(64), value: z.string().max(4096) })).max(256);
const createWorkspace = z
  .object({
    name: s.username,
    template_id: s.uuid.optional(),
    template_version_id: s.uuid.optional(),
    rich_parameter_values: paramValues.default([]),
  })
  .refine((b) => b.template_id !== undefined || b.template_version_id !== undefined, { message: "template_id or template_version_id is required", path: ["template_id"] });
const createBuild = z.object({
  transition: z.enum(["start", "stop", "delete"]),
  template_version_id: s.uuid.optional(),
  rich_parameter_values: paramValues.default([]),
});
const listQuery = z.object({
  q: z.string().max(1024).optional(),
  limit: z.coerce.number().int().min(0).max(1000).optional(),
  offset: z.coerce.number().int().min(0).optional(),
});
const STATUSES: sdk.WorkspaceStatus[] = ["pending", "starting", "running", "stopping", "stopped", "failed", "canceling", "canceled", "deleting", "deleted"];

interface BuildPlan {
  workspace: Workspace;
  versionId: string;
  transition: sdk.WorkspaceTransition;
  parameters: Array<{ name: string; value: string }>;
  initiator: User;
  tags: Record<string, string>;
  buildNumber: number;
  fileId: string;
}

/** Queues a build: job + build row + parameters, in the caller's transaction. */
async function insertBuild(tx: Store, p: BuildPlan): Promise<WorkspaceBuild> {
  const job = await tx.insertProvisionerJob({
    id: randomUUID(),
    organization_id: p.workspace.organization_id,
    initiator_id: p.initiator.id,
    provisioner: "local",
    type: "workspace_build",
    file_id: p.fileId,
    input: {},
    tags: p.tags,
  });
  const build = await tx.insertWorkspaceBuild({
    id: randomUUID(),
    workspace_id: p.workspace.id,
    template_version_id: p.versionId,
    build_number: p.buildNumber,
    transition: p.transition,
    initiator_id: p.initiator.id,
    reason: "initiator",
    job_id: job.id,
    provisioner_state: null,
  });
  await tx.insertWorkspaceBuildParameters(build.id, p.parameters);
  return build;
}

/** A version usable for builds: its import succeeded. Returns its job's tags and archive. */
async function buildableVersion(ctx: Ctx, versionId: string, field: string): Promise<{ tags: Record<string, string>; fileId: string; templateId: string | null }> {
  const v = await ctx.store.getTemplateVersionById(versionId);
  const job = v && (await ctx.store.getProvisionerJobById(v.job_id));
  if (!v || !job) throw new ValidationFailedError([{ field, detail: "no such template version" }]);
  if (job.job_status !== "succeeded") throw new ValidationFailedError([{ field, detail: `the version's import is ${job.job_status}, not succeeded` }]);
  return { tags: job.tags, fileId: job.file_id, templateId: v.template_id };
}

/** Later builds of a local workspace must run on the host that has it. */
async function hostTag(ctx: Ctx, workspaceId: string): Promise<Record<string, string>> {
  const first = await ctx.store.getWorkspaceBuildByNumber(workspaceId, 1);
  const job = first && (await ctx.store.getProvisionerJobById(first.job_id));
  if (!job?.worker_id) return {};
  const daemons = await ctx.store.listProvisionerDaemons(job.organization_id);
  const host = daemons.find((d) => d.id === job.worker_id)?.tags[HOST_TAG];
  return host ? { [HOST_TAG]: host } : {};
}

/** "owner:me template:docker status:running dev" */
function parseWorkspaceSearch(q: string | undefined) {
  const out: { owner?: string; template?: string; status?: sdk.WorkspaceStatus; name?: string } = {};
  const { words, filters } = splitSearch(q);
  for (const { key, value } of filters) {
    if (!value) throw searchError(`${key}: needs a value`);
    if (key === "owner") out.owner = value;
    else if (key === "template") out.template = value;
    else if (key === "name") words.push(value);
    else if (key === "status") {
      if (!STATUSES.includes(value as sdk.WorkspaceStatus)) throw searchError(`status must be one of ${STATUSES.join(", ")}, not "${value}"`);
      out.status = value as sdk.WorkspaceStatus;
    } else throw searchError(`unknown filter "${key}" (known: owner, template, status, name)`);
  }
  if (words.length) out.name = words.join(" ");
  return out;
}

type IdParams = { id: string };

export function register(r: Router, ctx: Ctx): void {
  const present = async (w: Workspace) => (await presentWorkspaces(ctx, [w]))[0]!;

  r.add({
    method: "POST",
    url: "/api/v2/users/:user/workspaces",
    auth: "user",
    handler: async (req, reply): Promise<sdk.Workspace> => {
      const owner = await loadUser(ctx, req, (req.params as { user: string }).user);
      const body = parseInput(createWorkspace, req.body);
      let versionId = body.template_version_id;
      let templateId = body.template_id;
      if (templateId) {
        const t = await loadTemplate(ctx, req, templateId).catch(() => {
          throw new ValidationFailedError([{ field: "template_id", detail: "no such template" }]);
        });
        versionId ??= t.active_version_id;
      }
      const version = await buildableVersion(ctx, versionId!, body.template_version_id ? "template_version_id" : "template_id");
      templateId ??= version.templateId ?? undefined;
      if (!templateId) throw new ValidationFailedError([{ field: "template_version_id", detail: "the version belongs to no template" }]);
      const template = await loadTemplate(ctx, req, templateId);
      if (version.templateId !== template.id) throw new ValidationFailedError([{ field: "template_version_id", detail: "the version is not a version of this template" }]);
      authorizeObject(req, "create", { type: "workspace", ownerId: owner.id, orgId: template.organization_id });
      if (!(await ctx.store.getOrganizationMember(template.organization_id, owner.id))) {
        throw new ValidationFailedError([{ field: "template_id", detail: "the workspace owner is not a member of the template's organization" }]);
      }
      const parameters = resolveParameters(await ctx.store.getTemplateVersionParameters(versionId!), body.rich_parameter_values, undefined);
      const initiator = requireAuth(req).user;
      const { workspace, build } = await ctx.store
        .inTx(async (tx) => {
          const workspace = await tx.insertWorkspace({ id: randomUUID(), organization_id: template.organization_id, owner_id: owner.id, template_id: template.id, name: body.name });
          const build = await insertBuild(tx, { workspace, versionId: versionId!, transition: "start", parameters, initiator, tags: version.tags, buildNumber: 1, fileId: version.fileId });
          return { workspace, build };
        })
        .catch((err: unknown) => {
          if (isUniqueViolation(err, "workspaces_owner_name")) {
            throw new ConflictError(`A workspace named "${body.name}" already exists.`, undefined, [{ field: "name", detail: "is already in use" }]);
          }
          throw err;
        });
      await ctx.provisionerd.jobPosted(build.job_id);
      req.log.info({ workspace_id: workspace.id }, "workspace created");
      reply.code(201);
      return present(workspace);
    },
  });

  r.add({
    method: "GET",
    url: "/api/v2/workspaces",
    auth: "user",
    handler: async (req): Promise<sdk.WorkspacesResponse> => {
      const query = parseInput(listQuery, req.query, "query");
      const search = parseWorkspaceSearch(query.q);
      const auth = requireAuth(req);
      let ownerIds: string[] | undefined;
      if (search.owner) {
        const owner = search.owner === "me" ? auth.user : await ctx.store.getUserByUsername(search.owner);
        ownerIds = owner ? [owner.id] : [];
      }
      // Without site-wide read, a caller sees only its own workspaces.
      if (!can(req, "read", { type: "workspace" })) ownerIds = (ownerIds ?? [auth.user.id]).filter((id) => id === auth.user.id);
      const rows = await ctx.store.searchWorkspaces({ ownerIds, templateName: search.template, nameContains: search.name, limit: 10_000, offset: 0 });
      let list = await presentWorkspaces(ctx, rows);
      if (search.status) list = list.filter((w) => w.latest_build.status === search.status);
      const offset = query.offset ?? 0;
      return { workspaces: list.slice(offset, offset + (query.limit || 100)), count: list.length };
    },
  });

  r.add({
    method: "GET",
    url: "/api/v2/workspaces/:id",
    auth: "user",
    handler: async (req) => present(await loadWorkspace(ctx, req, (req.params as IdParams).id)),
  });

  r.add({
    method: "GET",
    url: "/api/v2/users/:user/workspace/:name",
    auth: "user",
    handler: async (req) => {
      const params = req.params as { user: string; name: string };
      const owner = await loadUser(ctx, req, params.user);
      const w = await ctx.store.getWorkspaceByOwnerAndName(owner.id, params.name);
      if (!w) throw new NotFoundError(`No workspace named "${params.name}".`);
      authorizeObject(req, "read", workspaceObject(w));
      return present(w);
    },
  });

  r.add({
    method: "GET",
    url: "/api/v2/workspaces/:id/watch",
    auth: "user",
    handler: async (req, reply) => {
      const w = await loadWorkspace(ctx, req, (req.params as IdParams).id);
      await watchWorkspace(ctx, reply, w.id, async () => {
        const fresh = await ctx.store.getWorkspaceById(w.id, true);
        return fresh ? present(fresh) : undefined;
      });
    },
  });

  r.add({
    method: "POST",
    url: "/api/v2/workspaces/:id/builds",
    auth: "user",
    handler: async (req, reply): Promise<sdk.WorkspaceBuild> => {
      const w = await loadWorkspace(ctx, req, (req.params as IdParams).id);
      const body = parseInput(createBuild, req.body);
      authorizeObject(req, body.transition === "delete" ? "delete" : "update", workspaceObject(w));
      const latest = (await ctx.store.getLatestWorkspaceBuild(w.id))!;
      const latestJob = (await ctx.store.getProvisionerJobById(latest.job_id))!;
      if (["pending", "running", "canceling"].includes(latestJob.job_status)) {
        throw new ConflictError(`Build ${latest.build_number} is still ${latestJob.job_status}: wait for it or cancel it first.`);
      }
      const versionId = body.template_version_id ?? latest.template_version_id;
      const version = await buildableVersion(ctx, versionId, "template_version_id");
      if (version.templateId !== w.template_id) throw new ValidationFailedError([{ field: "template_version_id", detail: "the version is not a version of this workspace's template" }]);
      const previous = await ctx.store.getWorkspaceBuildParameters(latest.id);
      const parameters =
        body.transition === "start" ? resolveParameters(await ctx.store.getTemplateVersionParameters(versionId), body.rich_parameter_values, previous) : previous;
      const initiator = requireAuth(req).user;
      const tags = { ...version.tags, ...(await hostTag(ctx, w.id)) };
      const build = await ctx.store
        .inTx((tx) =>
          insertBuild(tx, { workspace: w, versionId, transition: body.transition, parameters, initiator, tags, buildNumber: latest.build_number + 1, fileId: version.fileId }),
        )
        .catch((err: unknown) => {
          if (isUniqueViolation(err)) throw new ConflictError("Another build was queued at the same time: try again.");
          throw err;
        });
      await ctx.provisionerd.jobPosted(build.job_id);
      await ctx.pubsub.publish(workspaceChannel(w.id), build.id);
      reply.code(201);
      return (await presentBuilds(ctx, [build]))[0]!;
    },
  });

  r.add({
    method: "GET",
    url: "/api/v2/workspaces/:id/builds",
    auth: "user",
    handler: async (req) => presentBuilds(ctx, await ctx.store.listWorkspaceBuilds((await loadWorkspace(ctx, req, (req.params as IdParams).id)).id)),
  });

  r.add({
    method: "GET",
    url: "/api/v2/workspacebuilds/:id",
    auth: "user",
    handler: async (req) => (await presentBuilds(ctx, [await loadBuild(ctx, req, (req.params as IdParams).id)]))[0],
  });

  r.add({
    method: "GET",
    url: "/api/v2/workspacebuilds/:id/logs",
    auth: "user",
    handler: async (req) => listLogs(ctx, req, (await loadBuild(ctx, req, (req.params as IdParams).id)).job_id),
    preHandler: async (req) => {
      if (req.ws) followedJobs.set(req, (await loadBuild(ctx, req, (req.params as IdParams).id)).job_id);
    },
    websocket: (socket, req) => {
      const after = parseInput(logsQuery, req.query, "query").after ?? 0;
      void followLogs(ctx, socket, followedJobs.get(req)!, after).catch(() => socket.close(1011));
    },
  });

  r.add({
    method: "PATCH",
    url: "/api/v2/workspacebuilds/:id/cancel",
    auth: "user",
    handler: async (req) => {
      const b = await loadBuild(ctx, req, (req.params as IdParams).id);
      const w = (await ctx.store.getWorkspaceById(b.workspace_id, true))!;
      authorizeObject(req, "update", workspaceObject(w));
      const canceled = await ctx.store.cancelProvisionerJob(b.job_id);
      if (!canceled) throw new BadRequestError("The build has already ended or is being canceled.");
      if (canceled.completed_at) await ctx.provisionerd.ended(canceled);
      else await ctx.pubsub.publish(workspaceChannel(w.id), b.id);
      return { message: canceled.completed_at ? "Build canceled." : "Build is being canceled.", status: workspaceStatus(b.transition, canceled.job_status) };
    },
  });
}
