// Templates and template versions: a version is created from an uploaded archive by an import
// job; a template points at its active version.
import { randomBytes, randomUUID } from "node:crypto";
import type { FastifyRequest } from "fastify";
import { z } from "zod";
import type * as sdk from "../../codersdk/index.js";
import type { Template, TemplateVersion } from "../../database/index.js";
import type { Ctx } from "../context.js";
import { requireAuth } from "../httpapi/authenticate.js";
import { authorizeAction, authorizeObject } from "../httpapi/authz.js";
import { BadRequestError, ConflictError, NotFoundError, ValidationFailedError } from "../httpapi/errors.js";
import type { Router } from "../httpapi/route.js";
import { parseInput } from "../httpapi/validate.js";
import { followedJobs, followLogs, listLogs, logsQuery } from "../jobs/logs.js";
import { presentResources, presentTemplate, presentTemplateVersion } from "../present.js";
import type { RbacObject } from "../rbac/index.js";
import { loadOrg } from "./organizations.js";
import * as s from "./schemas.js";

const templateObject = (organizationId: string, id?: string): RbacObject => ({ type: "template", id, orgId: organizationId });

export async function loadTemplate(ctx: Ctx, req: FastifyRequest, id: string): Promise<Template> {
  const t = s.UUID_RE.test(id) ? await ctx.store.getTemplateById(id) : undefined;
  if (!t) throw new NotFoundError();
  authorizeObject(req, "read", templateObject(t.organization_id, t.id));
  return t;
}

async function loadVersion(ctx: Ctx, req: FastifyRequest, id: string): Promise<TemplateVersion> {
  const v = s.UUID_RE.test(id) ? await ctx.store.getTemplateVersionById(id) : undefined;
  if (!v) throw new NotFoundError();
  authorizeObject(req, "read", templateObject(v.organization_id, v.template_id ?? undefined));
  return v;
}

const tagsSchema = z
  .record(z.string().regex(/^[a-zA-Z0-9_.-]{1,64}$/, "tag keys may contain only letters, digits, '_', '.', '-'"), z.string().max(256))
  .refine((t) => Object.keys(t).length <= 32, "at most 32 tags");
const versionName = z.string().min(1).max(64).regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, "may contain only letters, digits, '.', '_' and '-'");

const createVersion = z.object({
  file_id: s.uuid,
  template_id: s.uuid.optional(),
  name: versionName.optional(),
  message: z.string().max(1024).optional(),
  provisioner: z.enum(["local"]).default("local"),
  tags: tagsSchema.default({}),
});
const createTemplate = z.object({
  name: s.organizationName,
  display_name: s.displayName.optional(),
  description: z.string().max(1024).optional(),
  template_version_id: s.uuid,
});
const updateTemplate = z.object({ name: s.organizationName.optional(), display_name: s.displayName.optional(), description: z.string().max(1024).optional() });
const promote = z.object({ id: s.uuid });

type IdParams = { id: string };

export function register(r: Router, ctx: Ctx): void {
  r.add({
    method: "POST",
    url: "/api/v2/organizations/:org/templateversions",
    auth: "user",
    handler: async (req, reply): Promise<sdk.TemplateVersion> => {
      const org = await loadOrg(ctx, req, (req.params as { org: string }).org);
      authorizeAction(req, "create", templateObject(org.id));
      const body = parseInput(createVersion, req.body);
      const file = await ctx.store.getFileMeta(body.file_id);
      if (!file) throw new ValidationFailedError([{ field: "file_id", detail: "no such file: upload the archive first (POST /api/v2/files)" }]);
      if (body.template_id) {
        const t = await ctx.store.getTemplateById(body.template_id);
        if (!t || t.organization_id !== org.id) throw new ValidationFailedError([{ field: "template_id", detail: "no such template in this organization" }]);
      }
      const auth = requireAuth(req);
      const { version, job } = await ctx.store
        .inTx(async (tx) => {
          const job = await tx.insertProvisionerJob({
            id: randomUUID(),
            organization_id: org.id,
            initiator_id: auth.user.id,
            provisioner: body.provisioner,
            type: "template_version_import",
            file_id: file.id,
            input: {},
            tags: body.tags,
          });
          const version = await tx.insertTemplateVersion({
            id: randomUUID(),
            template_id: body.template_id ?? null,
            organization_id: org.id,
            name: body.name ?? `v-${randomBytes(4).toString("hex")}`,
            message: body.message ?? "",
            job_id: job.id,
            created_by: auth.user.id,
          });
          return { version, job };
        });
      await ctx.provisionerd.jobPosted(job.id);
      reply.code(201);
      return presentTemplateVersion(ctx, version, job);
    },
  });

  r.add({
    method: "GET",
    url: "/api/v2/templateversions/:id",
    auth: "user",
    handler: async (req) => presentTemplateVersion(ctx, await loadVersion(ctx, req, (req.params as IdParams).id)),
  });

  r.add({
    method: "GET",
    url: "/api/v2/templateversions/:id/parameters",
    auth: "user",
    handler: async (req): Promise<sdk.TemplateVersionParameter[]> => {
      const v = await loadVersion(ctx, req, (req.params as IdParams).id);
      return (await ctx.store.getTemplateVersionParameters(v.id)).map(({ template_version_id: _, ordering: __, ...p }) => ({
        ...p,
        type: p.type as sdk.TemplateVersionParameter["type"],
      }));
    },
  });

  r.add({
    method: "GET",
    url: "/api/v2/templateversions/:id/resources",
    auth: "user",
    handler: async (req) => {
      const v = await loadVersion(ctx, req, (req.params as IdParams).id);
      return presentResources(await ctx.store.getJobResources([v.job_id]));
    },
  });

  r.add({
    method: "GET",
    url: "/api/v2/templateversions/:id/logs",
    auth: "user",
    handler: async (req) => listLogs(ctx, req, (await loadVersion(ctx, req, (req.params as IdParams).id)).job_id),
    preHandler: async (req) => {
      if (req.ws) followedJobs.set(req, (await loadVersion(ctx, req, (req.params as IdParams).id)).job_id);
    },
    websocket: (socket, req) => {
      const after = parseInput(logsQuery, req.query, "query").after ?? 0;
      void followLogs(ctx, socket, followedJobs.get(req)!, after).catch(() => socket.close(1011));
    },
  });

  r.add({
    method: "PATCH",
    url: "/api/v2/templateversions/:id/cancel",
    auth: "user",
    handler: async (req) => {
      const v = await loadVersion(ctx, req, (req.params as IdParams).id);
      authorizeObject(req, "update", templateObject(v.organization_id, v.template_id ?? undefined));
      const canceled = await ctx.store.cancelProvisionerJob(v.job_id);
      if (!canceled) throw new BadRequestError("The import job has already ended or is being canceled.");
      if (canceled.completed_at) await ctx.provisionerd.ended(canceled);
      return { message: canceled.completed_at ? "Job canceled." : "Job is being canceled." };
    },
  });

  r.add({
    method: "POST",
    url: "/api/v2/organizations/:org/templates",
    auth: "user",
    handler: async (req, reply): Promise<sdk.Template> => {
      const org = await loadOrg(ctx, req, (req.params as { org: string }).org);
      authorizeAction(req, "create", templateObject(org.id));
      const body = parseInput(createTemplate, req.body);
      const version = await ctx.store.getTemplateVersionById(body.template_version_id);
      if (!version || version.organization_id !== org.id) {
        throw new ValidationFailedError([{ field: "template_version_id", detail: "no such template version in this organization" }]);
      }
      if (version.template_id) throw new ValidationFailedError([{ field: "template_version_id", detail: "the version already belongs to a template" }]);
      const job = await ctx.store.getProvisionerJobById(version.job_id);
      if (job?.job_status !== "succeeded") {
        throw new ValidationFailedError([{ field: "template_version_id", detail: `the version's import job is ${job?.job_status ?? "missing"}, not succeeded` }]);
      }
      const auth = requireAuth(req);
      const template = await ctx.store
        .inTx(async (tx) => {
          const t = await tx.insertTemplate({
            id: randomUUID(),
            organization_id: org.id,
            name: body.name,
            display_name: body.display_name ?? "",
            description: body.description ?? "",
            active_version_id: version.id,
            created_by: auth.user.id,
          });
          await tx.setTemplateVersionTemplate(version.id, t.id);
          return t;
        });
      reply.code(201);
      return presentTemplate(template);
    },
  });

  r.add({
    method: "GET",
    url: "/api/v2/organizations/:org/templates",
    auth: "user",
    handler: async (req): Promise<sdk.Template[]> => {
      const org = await loadOrg(ctx, req, (req.params as { org: string }).org);
      authorizeObject(req, "read", templateObject(org.id));
      return (await ctx.store.listTemplates([org.id])).map(presentTemplate);
    },
  });

  r.add({
    method: "GET",
    url: "/api/v2/organizations/:org/templates/:name",
    auth: "user",
    handler: async (req): Promise<sdk.Template> => {
      const params = req.params as { org: string; name: string };
      const org = await loadOrg(ctx, req, params.org);
      const t = await ctx.store.getTemplateByOrganizationAndName(org.id, params.name);
      if (!t) throw new NotFoundError(`No template named "${params.name}".`);
      authorizeObject(req, "read", templateObject(org.id, t.id));
      return presentTemplate(t);
    },
  });

  r.add({
    method: "GET",
    url: "/api/v2/templates/:id",
    auth: "user",
    handler: async (req) => presentTemplate(await loadTemplate(ctx, req, (req.params as IdParams).id)),
  });

  r.add({
    method: "PATCH",
    url: "/api/v2/templates/:id",
    auth: "user",
    handler: async (req): Promise<sdk.Template> => {
      const t = await loadTemplate(ctx, req, (req.params as IdParams).id);
      authorizeObject(req, "update", templateObject(t.organization_id, t.id));
      const body = parseInput(updateTemplate, req.body);
      const updated = await ctx.store.updateTemplate(t.id, body);
      if (!updated) throw new NotFoundError();
      return presentTemplate(updated);
    },
  });

  r.add({
    method: "DELETE",
    url: "/api/v2/templates/:id",
    auth: "user",
    handler: async (req, reply) => {
      const t = await loadTemplate(ctx, req, (req.params as IdParams).id);
      authorizeObject(req, "delete", templateObject(t.organization_id, t.id));
      const n = await ctx.store.countWorkspacesByTemplate(t.id);
      if (n > 0) throw new ConflictError(`The template has ${n} workspace${n > 1 ? "s" : ""}: delete them first.`);
      await ctx.store.softDeleteTemplate(t.id);
      reply.code(204);
    },
  });

  r.add({
    method: "GET",
    url: "/api/v2/templates/:id/versions",
    auth: "user",
    handler: async (req): Promise<sdk.TemplateVersion[]> => {
      const t = await loadTemplate(ctx, req, (req.params as IdParams).id);
      const versions = await ctx.store.listTemplateVersions(t.id);
      return Promise.all(versions.map((v) => presentTemplateVersion(ctx, v)));
    },
  });

  r.add({
    method: "PATCH",
    url: "/api/v2/templates/:id/versions",
    auth: "user",
    handler: async (req): Promise<sdk.Template> => {
      const t = await loadTemplate(ctx, req, (req.params as IdParams).id);
      authorizeObject(req, "update", templateObject(t.organization_id, t.id));
      const body = parseInput(promote, req.body);
      const v = await ctx.store.getTemplateVersionById(body.id);
      if (!v || v.template_id !== t.id) throw new ValidationFailedError([{ field: "id", detail: "no such version of this template" }]);
      const job = await ctx.store.getProvisionerJobById(v.job_id);
      if (job?.job_status !== "succeeded") throw new ValidationFailedError([{ field: "id", detail: `the version's import job is ${job?.job_status}, not succeeded` }]);
      const updated = await ctx.store.updateTemplate(t.id, { active_version_id: v.id });
      return presentTemplate(updated!);
    },
  });
}
