// Workspace agents: the agent's own API (manifest, and the RPC WebSocket it keeps open: hello,
// lifecycle, logs, pings, stats) and what users may read of an agent (status, logs).
import type { FastifyRequest } from "fastify";
import type { WebSocket } from "ws";
import { z } from "zod";
import type * as sdk from "../../codersdk/index.js";
import type { WorkspaceAgentLog } from "../../database/index.js";
import { loadAgent } from "../agents/load.js";
import type { Ctx } from "../context.js";
import { requireAgent, type AgentContext } from "../httpapi/agent-auth.js";
import { errorResponse, NotFoundError, ValidationFailedError } from "../httpapi/errors.js";
import type { Router } from "../httpapi/route.js";
import { parseInput } from "../httpapi/validate.js";
import { followedJobs, followRows, listAfter, logsQuery } from "../jobs/logs.js";
import { presentResources } from "../present.js";
import { agentLogsChannel, JOB_ENDED, workspaceChannel } from "../pubsub-channels.js";
import { connectionInfo } from "./tailnet.js";

const LIFECYCLE = ["created", "starting", "ready", "start_error", "start_timeout", "shutting_down", "off", "shutdown_error", "shutdown_timeout"] as const;
const MAX_LOG_LINES_PER_BATCH = 1000;

const rpc = z.object({ id: z.number().int(), method: z.string().max(64), params: z.unknown() });
const hello = z.object({
  version: z.string().max(64),
  operating_system: z.string().max(64),
  expanded_directory: z.string().max(4096),
  ssh_host_public_key: z.string().max(1024).regex(/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-[a-z0-9]+) [A-Za-z0-9+/=]+$/, "must be an OpenSSH public key").optional(),
});
const lifecycle = z.object({ state: z.enum(LIFECYCLE), changed_at: z.string().datetime({ offset: true }) });
const logs = z.object({
  logs: z
    .array(
      z.object({
        seq: z.number().int().nonnegative(),
        created_at: z.string().datetime({ offset: true }),
        source: z.string().max(64),
        level: z.enum(["trace", "debug", "info", "warn", "error"]),
        output: z.string().max(64 * 1024).transform((o) => o.replaceAll("\0", "")),
      }),
    )
    .max(MAX_LOG_LINES_PER_BATCH),
});

const metadataReport = z.object({
  values: z
    .record(z.string().max(128), z.object({ value: z.string().max(4096), error: z.string().max(4096), collected_at: z.string().datetime({ offset: true }) }))
    .refine((v) => Object.keys(v).length <= 100, "at most 100 items"),
});
const appHealthReport = z.object({ health: z.record(z.string().max(64), z.enum(["initializing", "healthy", "unhealthy"])) });
const portsReport = z.object({
  ports: z.array(z.object({ port: z.number().int().min(1).max(65535), network: z.enum(["tcp"]), process_name: z.string().max(256) })).max(1000),
});

const count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const statsReport = z.object({
  connections: count,
  sessions: z.object({ ssh: count, reconnecting_pty: count, speedtest: count, tcp: count }),
  rx_bytes: count,
  tx_bytes: count,
});

const presentAgentLog = (l: WorkspaceAgentLog): sdk.WorkspaceAgentLog => ({
  id: l.id,
  created_at: l.created_at.toISOString(),
  source: l.source,
  level: l.level,
  output: l.output,
});

export function register(r: Router, ctx: Ctx): void {
  r.add({
    method: "GET",
    url: "/api/v2/workspaceagents/me/manifest",
    auth: "agent",
    handler: async (req): Promise<sdk.AgentManifest> => {
      const { agent, workspaceId } = requireAgent(req);
      const workspace = await ctx.store.getWorkspaceById(workspaceId);
      const owner = workspace && (await ctx.store.getUserById(workspace.owner_id));
      if (!workspace || !owner) throw new NotFoundError();
      const resources = await ctx.store.getJobResources([await jobOf(ctx, req)]);
      const apps = presentResources(resources).flatMap((r) => r.agents).find((a) => a.id === agent.id)?.apps ?? [];
      return {
        agent_id: agent.id,
        agent_name: agent.name,
        workspace_id: workspace.id,
        workspace_name: workspace.name,
        owner_name: owner.username,
        directory: agent.directory,
        environment: agent.environment,
        startup_script: agent.startup_script,
        startup_script_behavior: agent.startup_script_behavior as sdk.AgentManifest["startup_script_behavior"],
        startup_script_timeout_seconds: agent.startup_script_timeout_seconds,
        shutdown_script: agent.shutdown_script,
        apps,
        metadata: agent.metadata as sdk.AgentManifest["metadata"],
        connection: connectionInfo(ctx),
      };
    },
  });

  r.add({
    method: "GET",
    url: "/api/v2/workspaceagents/me/rpc",
    auth: "agent",
    websocket: (socket, req) => serveAgent(ctx, socket, requireAgent(req), req),
  });

  r.add({
    method: "GET",
    url: "/api/v2/workspaceagents/:id",
    auth: "user",
    handler: async (req): Promise<sdk.WorkspaceAgent> => {
      const { agent } = await loadAgent(ctx, req, (req.params as { id: string }).id);
      const resources = await ctx.store.getJobResources([await ctx.store.getAgentJobId(agent.id)]);
      const found = presentResources(resources).flatMap((x) => x.agents).find((a) => a.id === agent.id);
      if (!found) throw new NotFoundError();
      return found;
    },
  });

  r.add({
    method: "GET",
    url: "/api/v2/workspaceagents/:id/listening-ports",
    auth: "user",
    handler: async (req): Promise<sdk.ListeningPortsResponse> => {
      const { agent } = await loadAgent(ctx, req, (req.params as { id: string }).id);
      return { ports: agent.listening_ports };
    },
  });

  r.add({
    method: "GET",
    url: "/api/v2/workspaceagents/:id/logs",
    auth: "user",
    handler: async (req): Promise<sdk.WorkspaceAgentLog[]> => {
      const { agent } = await loadAgent(ctx, req, (req.params as { id: string }).id);
      return (await ctx.store.getAgentLogsAfter(agent.id, listAfter(req))).map(presentAgentLog);
    },
    preHandler: async (req) => {
      if (req.ws) followedJobs.set(req, (await loadAgent(ctx, req, (req.params as { id: string }).id)).agent.id);
    },
    websocket: (socket, req) => {
      const agentId = followedJobs.get(req)!;
      const after = parseInput(logsQuery, req.query, "query").after ?? 0;
      void followRows(
        ctx,
        socket,
        {
          channel: agentLogsChannel(agentId),
          fetchAfter: (id, limit) => ctx.store.getAgentLogsAfter(agentId, id, limit),
          ended: async () => (await ctx.store.getWorkspaceAgentById(agentId))?.lifecycle_state === "off",
          present: presentAgentLog,
        },
        after,
      ).catch(() => socket.close(1011));
    },
  });
}

async function jobOf(ctx: Ctx, req: FastifyRequest): Promise<string> {
  return ctx.store.getAgentJobId(requireAgent(req).agent.id);
}

/** One agent's RPC connection: it is "connected" while this socket lives and pings. */
function serveAgent(ctx: Ctx, socket: WebSocket, auth: AgentContext, req: FastifyRequest): void {
  const { agent, workspaceId } = auth;
  const log = req.log.child({ agent_id: agent.id, workspace_id: workspaceId });
  const changed = () => ctx.pubsub.publish(workspaceChannel(workspaceId), agent.id).catch(() => {});
  const reply = (id: number, result: unknown) => socket.readyState === socket.OPEN && socket.send(JSON.stringify({ id, result: result ?? null }));
  const fail = (id: number, err: unknown) => {
    const { body, internal } = errorResponse(err);
    if (internal) log.error({ err }, "agent request failed");
    if (socket.readyState === socket.OPEN) socket.send(JSON.stringify({ id, error: { message: body.message, validations: body.validations } }));
  };
  log.info("agent connected");

  socket.on("message", (data, isBinary) => {
    let msg: z.output<typeof rpc>;
    try {
      if (isBinary) throw new Error("binary");
      msg = rpc.parse(JSON.parse(data.toString()));
    } catch {
      return socket.close(1007, "malformed message");
    }
    const handle = async (): Promise<unknown> => {
      switch (msg.method) {
        case "hello": {
          const h = parseInput(hello, msg.params, "body");
          await ctx.store.updateAgentConnection(agent.id, {
            connected: true,
            replicaId: ctx.replicaSync.id,
            version: h.version,
            operatingSystem: h.operating_system,
            expandedDirectory: h.expanded_directory,
            sshHostPublicKey: h.ssh_host_public_key,
          });
          await changed();
          return null;
        }
        case "ping":
          await ctx.agentWrites.ping(agent.id);
          return null;
        case "stats":
          await ctx.agentWrites.stats(agent.id, workspaceId, parseInput(statsReport, msg.params, "body"));
          return null;
        case "lifecycle": {
          const l = parseInput(lifecycle, msg.params, "body");
          await ctx.store.updateAgentLifecycle(agent.id, l.state, new Date(l.changed_at));
          if (l.state === "off") await ctx.pubsub.publish(agentLogsChannel(agent.id), JOB_ENDED);
          await changed();
          return null;
        }
        case "logs": {
          const b = parseInput(logs, msg.params, "body");
          const added = await ctx.agentWrites.logs(
            agent.id,
            b.logs.map((l) => ({ seq: l.seq, created_at: new Date(l.created_at), source: l.source, level: l.level, output: l.output })),
          );
          return { stored: added };
        }
        case "metadata": {
          const m = parseInput(metadataReport, msg.params, "body");
          await ctx.store.updateAgentMetadata(agent.id, m.values);
          return null;
        }
        case "app_health": {
          const h = parseInput(appHealthReport, msg.params, "body");
          await ctx.store.updateAppHealth(agent.id, h.health);
          await changed();
          return null;
        }
        case "ports": {
          const p = parseInput(portsReport, msg.params, "body");
          await ctx.store.updateAgentListeningPorts(agent.id, p.ports);
          await changed();
          return null;
        }
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
    log.info("agent disconnected");
    ctx.store
      .updateAgentConnection(agent.id, { connected: false, replicaId: ctx.replicaSync.id })
      .then(changed)
      .catch((err: unknown) => log.warn({ err }, "recording the disconnect failed"));
  });
}
