// Template archives: uploaded once (content-addressed by SHA-256), validated before they are
// stored, downloaded by provisioner daemons.
import { createHash, randomUUID } from "node:crypto";
import { ArchiveError, detectFormat, listArchive } from "../../archive/index.js";
import type { UploadResponse } from "../../codersdk/index.js";
import type { Ctx } from "../context.js";
import { authorizeAction, authorizeObject } from "../httpapi/authz.js";
import { requireAuth } from "../httpapi/authenticate.js";
import { BadRequestError, NotFoundError } from "../httpapi/errors.js";
import type { Router } from "../httpapi/route.js";
import * as s from "./schemas.js";

export const ARCHIVE_CONTENT_TYPES = ["application/x-tar", "application/tar", "application/zip", "application/gzip", "application/x-gzip", "application/octet-stream"];

export function register(r: Router, ctx: Ctx): void {
  r.add({
    method: "POST",
    url: "/api/v2/files",
    auth: "user",
    bodyLimit: ctx.maxFileBytes,
    handler: async (req, reply): Promise<UploadResponse> => {
      authorizeAction(req, "create", { type: "file" });
      const body = req.body;
      if (!Buffer.isBuffer(body) || body.length === 0) {
        throw new BadRequestError("Upload a tar or zip archive as the request body.", `Send it with Content-Type ${ARCHIVE_CONTENT_TYPES.slice(0, 3).join(", ")}.`);
      }
      const format = detectFormat(body);
      if (!format) throw new BadRequestError("The upload is not a tar or zip archive.");
      try {
        await listArchive(body);
      } catch (err) {
        if (err instanceof ArchiveError) throw new BadRequestError("The archive is not acceptable.", err.message);
        throw err;
      }
      const hash = createHash("sha256").update(body).digest("hex");
      const file = await ctx.store.insertFileIfAbsent({
        id: randomUUID(),
        hash,
        mimetype: format === "zip" ? "application/zip" : "application/x-tar",
        data: body,
        created_by: requireAuth(req).user.id,
      });
      reply.code(201);
      return { id: file.id, hash: file.hash };
    },
  });

  r.add({
    method: "GET",
    url: "/api/v2/files/:id",
    auth: "provisioner",
    handler: async (req, reply) => {
      const id = (req.params as { id: string }).id;
      if (!s.UUID_RE.test(id)) throw new NotFoundError();
      const meta = await ctx.store.getFileMeta(id);
      if (!meta) throw new NotFoundError();
      if (!req.provisionerPsk) authorizeObject(req, "read", { type: "file", id, ownerId: meta.created_by });
      const file = await ctx.store.getFileById(id);
      if (!file) throw new NotFoundError();
      return reply.type(file.mimetype).header("content-disposition", `attachment; filename="${file.hash}"`).send(file.data);
    },
  });
}
