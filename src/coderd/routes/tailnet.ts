// Networking routes: the coordinator's WebSockets (agents and clients), the relay map, and the
// connection info clients start from.
import type { FastifyRequest } from "fastify";
import type * as sdk from "../../codersdk/index.js";
import { embeddedRegion, MESH_KEY_HEADER, type RelayMap } from "../../tailnet/index.js";
import type { Ctx } from "../context.js";
import { loadAgent } from "../agents/load.js";
import { requireAgent } from "../httpapi/agent-auth.js";
import { NotFoundError, UnauthorizedError } from "../httpapi/errors.js";
import type { Router } from "../httpapi/route.js";

/** The agent a client coordinates with, resolved and authorized before the upgrade. */
const coordinatedAgents = new WeakMap<FastifyRequest, string>();

/** The relays of this deployment: the custom map's regions and, unless disabled, this server's own. */
export function relayMap(ctx: Ctx): RelayMap {
  const r = ctx.relay;
  const regions = { ...r.custom?.Regions };
  if (r.embedded) regions[String(r.regionId)] = embeddedRegion(ctx.accessUrl, r.regionId, r.regionCode, r.regionName);
  return { Regions: regions };
}

export function connectionInfo(ctx: Ctx): sdk.AgentConnectionInfo {
  return { relay_map: relayMap(ctx), disable_direct_connections: ctx.relay.blockDirect };
}

export function register(r: Router, ctx: Ctx): void {
  r.add({
    method: "GET",
    url: "/api/v2/workspaceagents/me/coordinate",
    auth: "agent",
    websocket: (socket, req) => ctx.coordinator.serveAgent(socket, requireAgent(req).agent.id),
  });

  r.add({
    method: "GET",
    url: "/api/v2/workspaceagents/:id/coordinate",
    auth: "user",
    preHandler: async (req) => {
      const { agent } = await loadAgent(ctx, req, (req.params as { id: string }).id, "ssh");
      coordinatedAgents.set(req, agent.id);
    },
    websocket: (socket, req) => ctx.coordinator.serveClient(socket, coordinatedAgents.get(req)!),
  });

  // The embedded relay. Peers authenticate by proving their key inside the WebSocket, so the
  // route itself is open; a relay carries only ciphertext between keys.
  r.add({
    method: "GET",
    url: "/derp",
    auth: "public",
    preHandler: async () => {
      if (!ctx.relayServer) throw new NotFoundError("The embedded relay is disabled on this server (--derp-server-enable=false).");
    },
    websocket: (socket, req) => ctx.relayServer!.accept(socket, req.ip),
  });

  // The relay mesh (HA): another replica's relay, proving the mesh key every replica read from
  // the database. Reached at CODER_DERP_SERVER_RELAY_URL, not through the load balancer.
  r.add({
    method: "GET",
    url: "/derp/mesh",
    auth: "public",
    preHandler: async (req) => {
      if (!ctx.relayMesh) throw new NotFoundError("The embedded relay is disabled on this server (--derp-server-enable=false).");
      const given = req.headers[MESH_KEY_HEADER];
      if (!ctx.relayMesh.authorize(typeof given === "string" ? given : undefined)) throw new UnauthorizedError(`Missing or wrong mesh key (header ${MESH_KEY_HEADER}).`);
    },
    websocket: (socket, req) => ctx.relayMesh!.accept(socket, req.ip),
  });

  r.add({
    method: "GET",
    url: "/derp/latency-check",
    auth: "public",
    handler: async (_req, reply) => reply.code(200).type("text/plain").send(""),
  });

  r.add({
    method: "GET",
    url: "/api/v2/derp-map",
    auth: "user",
    handler: async (): Promise<RelayMap> => relayMap(ctx),
  });

  r.add({
    method: "GET",
    url: "/api/v2/workspaceagents/connection",
    auth: "user",
    handler: async (): Promise<sdk.AgentConnectionInfo> => connectionInfo(ctx),
  });
}
