// Provisioner daemons: the list, and the WebSocket external daemons serve jobs over.
import { hostname } from "node:os";
import type { FastifyRequest } from "fastify";
import type { WebSocket } from "ws";
import { z } from "zod";
import type * as sdk from "../../codersdk/index.js";
import type { ProvisionerDaemon as DaemonRow } from "../../database/index.js";
import type { Ctx } from "../context.js";
import { authorizeObject } from "../httpapi/authz.js";
import { errorResponse, NotFoundError, ValidationFailedError } from "../httpapi/errors.js";
import type { Router } from "../httpapi/route.js";
import { parseInput } from "../httpapi/validate.js";
import { completedJobSchema, failedJobSchema, jobLogSchema } from "../provisionerdserver/wire.js";
import { findOrg, loadOrg } from "./organizations.js";
import * as s from "./schemas.js";

/** A daemon not heard from for this long is shown offline. */
const OFFLINE_AFTER_MS = 90_000;

export function daemonStatus(d: DaemonRow): sdk.ProvisionerDaemon["status"] {
  if (d.disconnected_at || !d.last_seen_at || Date.now() - d.last_seen_at.getTime() > OFFLINE_AFTER_MS) return "offline";
  return d.current_job_id ? "busy" : "idle";
}

const serveQuery = z.object({
  name: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$/, "may contain only letters, digits, '.', '_' and '-' (at most 64)").optional(),
  version: z.string().max(64).default(""),
  provisioner: z.union([z.string(), z.array(z.string())]).optional(),
  tag: z.union([z.string(), z.array(z.string())]).optional(),
});

function parseTags(raw: string | string[] | undefined): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const t of raw === undefined ? [] : Array.isArray(raw) ? raw : [raw]) {
    const eq = t.indexOf("=");
    const key = t.slice(0, eq);
    if (eq <= 0 || !/^[a-zA-Z0-9_.-]{1,64}$/.test(key) || t.length - eq - 1 > 256) {
      throw new ValidationFailedError([{ field: "tag", detail: `"${t}" must be key=value (key: letters, digits, '_', '.', '-')` }]);
    }
    tags[key] = t.slice(eq + 1);
  }
  return tags;
}

const rpc = z.object({ id: z.number().int(), method: z.string(), params: z.unknown() });

export function register(r: Router, ctx: Ctx): void {
  r.add({
    method: "GET",
    url: "/api/v2/organizations/:org/provisionerdaemons",
    auth: "user",
    handler: async (req): Promise<sdk.ProvisionerDaemon[]> => {
      const org = await loadOrg(ctx, req, (req.params as { org: string }).org);
      authorizeObject(req, "read", { type: "provisioner_daemon", orgId: org.id });
      return (await ctx.store.listProvisionerDaemons(org.id)).map((d) => ({
        id: d.id,
        organization_id: d.organization_id,
        name: d.name,
        tags: d.tags,
        provisioners: d.provisioners,
        version: d.version,
        created_at: d.created_at.toISOString(),
        last_seen_at: d.last_seen_at?.toISOString() ?? null,
        current_job_id: d.current_job_id,
        status: daemonStatus(d),
      }));
    },
  });

  // Identity and rights are settled before the upgrade (a refusal is a plain HTTP error);
  // the socket handler then serves the registered daemon.
  const registered = new WeakMap<FastifyRequest, DaemonRow>();
  r.add({
    method: "GET",
    url: "/api/v2/organizations/:org/provisionerdaemons/serve",
    auth: "provisioner",
    preHandler: async (req) => {
      await admit(req);
    },
    websocket: (socket, req) => {
      const daemon = registered.get(req);
      if (!daemon) return socket.close(1011, "not registered");
      serve(ctx, socket, daemon, req);
    },
  });

  /** Checks the daemon may serve this organization; registers it when the request is an upgrade. */
  async function admit(req: FastifyRequest): Promise<void> {
    const param = (req.params as { org: string }).org;
    // A daemon with the key serves any organization; a user's token only those it can see.
    const org = req.provisionerPsk ? await findOrg(ctx, param) : await loadOrg(ctx, req, param);
    if (!org) throw new NotFoundError();
    if (!req.provisionerPsk) authorizeObject(req, "create", { type: "provisioner_daemon", orgId: org.id });
    const q = parseInput(serveQuery, req.query, "query");
    const provisioners = q.provisioner === undefined ? ["local"] : Array.isArray(q.provisioner) ? q.provisioner : [q.provisioner];
    const tags = parseTags(q.tag);
    if (!req.ws) return; // a plain GET gets the handler's "needs an upgrade"
    const daemon = await ctx.provisionerd.register({
      organizationId: org.id,
      name: q.name ?? `${hostname()}-${Math.random().toString(36).slice(2, 8)}`,
      tags,
      provisioners,
      version: q.version,
    });
    registered.set(req, daemon);
  }
}

function serve(ctx: Ctx, socket: WebSocket, daemon: DaemonRow, req: FastifyRequest): void {
  const log = req.log.child({ daemon_id: daemon.id, daemon: daemon.name });
  log.info("provisioner daemon connected");
  const acquires = new Map<number, AbortController>();
  const closed = new AbortController();
  const reply = (id: number, result: unknown) => socket.readyState === socket.OPEN && socket.send(JSON.stringify({ id, result: result ?? null }));
  const fail = (id: number, err: unknown) => {
    const { body, internal } = errorResponse(err);
    if (internal) log.error({ err }, "provisioner daemon request failed");
    if (socket.readyState === socket.OPEN) socket.send(JSON.stringify({ id, error: { message: body.message } }));
  };

  socket.on("message", (data) => {
    let msg: z.output<typeof rpc>;
    try {
      msg = rpc.parse(JSON.parse(data.toString()));
    } catch {
      return socket.close(1007, "malformed message");
    }
    const p = msg.params as Record<string, unknown>;
    const handle = async (): Promise<unknown> => {
      switch (msg.method) {
        case "acquire": {
          const ac = new AbortController();
          acquires.set(msg.id, ac);
          closed.signal.addEventListener("abort", () => ac.abort(), { once: true });
          try {
            const job = await ctx.provisionerd.acquireJob(daemon, ac.signal);
            // Acquired, but the daemon stopped waiting or left: put it back.
            if (job && (ac.signal.aborted || socket.readyState !== socket.OPEN)) {
              await ctx.provisionerd.releaseJob(daemon, job.job_id);
              return null;
            }
            return job ?? null;
          } finally {
            acquires.delete(msg.id);
          }
        }
        case "cancel_acquire":
          acquires.get(Number(p?.id))?.abort();
          return null;
        case "release":
          await ctx.provisionerd.releaseJob(daemon, String(p?.job_id));
          return null;
        case "update": {
          const u = z.object({ job_id: s.uuid, logs: z.array(jobLogSchema).max(10_000) }).parse(p);
          return ctx.provisionerd.updateJob(daemon, u.job_id, u.logs);
        }
        case "complete":
          return ctx.provisionerd.completeJob(daemon, completedJobSchema.parse(p));
        case "fail":
          return ctx.provisionerd.failJob(daemon, failedJobSchema.parse(p));
        default:
          throw new ValidationFailedError([{ field: "method", detail: `unknown method "${msg.method}"` }]);
      }
    };
    handle().then(
      (result) => reply(msg.id, result),
      (err: unknown) => fail(msg.id, err),
    );
  });

  socket.on("close", () => {
    closed.abort();
    log.info("provisioner daemon disconnected");
    ctx.provisionerd.disconnect(daemon).catch((err: unknown) => log.warn({ err }, "marking the daemon disconnected failed"));
  });
}
