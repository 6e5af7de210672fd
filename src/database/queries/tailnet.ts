// The coordinator's shared state: which replica coordinates which peer, and what each peer said
// of itself. Every change is announced on pubsub so every replica can tell its own peers.
import { sql, type Kysely } from "kysely";
import type { DB, TailnetPeer } from "../schema.js";

export async function heartbeatTailnetCoordinator(db: Kysely<DB>, id: string): Promise<void> {
  await db
    .insertInto("tailnet_coordinators")
    .values({ id })
    .onConflict((oc) => oc.column("id").doUpdateSet({ heartbeat_at: sql`now()` }))
    .execute();
}

/** Removes the coordinator and its peers; returns the peers it had, for peer_gone announcements. */
export async function deleteTailnetCoordinator(db: Kysely<DB>, id: string): Promise<Array<Pick<TailnetPeer, "id" | "agent_id">>> {
  const peers = await db.deleteFrom("tailnet_peers").where("coordinator_id", "=", id).returning(["id", "agent_id"]).execute();
  await db.deleteFrom("tailnet_coordinators").where("id", "=", id).execute();
  return peers;
}

/** Coordinators (replicas) whose heartbeat stopped longer ago than this. */
export async function getStaleTailnetCoordinators(db: Kysely<DB>, olderThanMs: number): Promise<string[]> {
  const rows = await db
    .selectFrom("tailnet_coordinators")
    .select("id")
    .where("heartbeat_at", "<", sql<Date>`now() - make_interval(secs => ${olderThanMs / 1000})`)
    .execute();
  return rows.map((r) => r.id);
}

export async function upsertTailnetPeer(
  db: Kysely<DB>,
  p: { id: string; kind: "agent" | "client"; agentId: string; coordinatorId: string; node: object | null },
): Promise<void> {
  const node = p.node ? JSON.stringify(p.node) : null;
  await db
    .insertInto("tailnet_peers")
    .values({ id: p.id, kind: p.kind, agent_id: p.agentId, coordinator_id: p.coordinatorId, node })
    .onConflict((oc) => oc.column("id").doUpdateSet({ coordinator_id: p.coordinatorId, node, updated_at: sql`now()` }))
    .execute();
}

/** Deletes the peer if this coordinator still owns it (it may have reconnected to another replica). */
export async function deleteTailnetPeer(db: Kysely<DB>, id: string, coordinatorId: string): Promise<boolean> {
  const r = await db.deleteFrom("tailnet_peers").where("id", "=", id).where("coordinator_id", "=", coordinatorId).executeTakeFirst();
  return r.numDeletedRows > 0n;
}

export async function getTailnetPeer(db: Kysely<DB>, id: string): Promise<TailnetPeer | undefined> {
  return db.selectFrom("tailnet_peers").selectAll().where("id", "=", id).executeTakeFirst();
}

/** The peers around one agent that have described themselves: the agent and its clients. */
export async function getTailnetPeersOfAgent(db: Kysely<DB>, agentId: string, kind: "agent" | "client"): Promise<TailnetPeer[]> {
  return db.selectFrom("tailnet_peers").selectAll().where("agent_id", "=", agentId).where("kind", "=", kind).where("node", "is not", null).execute();
}

export interface ConnectedAgentNode {
  agent_name: string;
  workspace_name: string;
  username: string;
  template_name: string;
  /** The node's home relay region (0: none). */
  preferred_relay: number | null;
  /** The node's relay latencies (region id → ms), as the agent measured them; null from older agents. */
  relay_latency_ms: Record<string, number> | null;
}

/**
 * The agents of live workspaces' latest builds that are connected to a coordinator and have
 * described themselves, with what names them (for coderd_agents_connection_latencies_seconds).
 */
export async function getConnectedAgentNodes(db: Kysely<DB>): Promise<ConnectedAgentNode[]> {
  const { rows } = await sql<ConnectedAgentNode>`
    SELECT wa.name AS agent_name, w.name AS workspace_name, u.username, t.name AS template_name,
           (tp.node->>'preferred_relay')::int AS preferred_relay, tp.node->'relay_latency_ms' AS relay_latency_ms
      FROM tailnet_peers tp
      JOIN workspace_agents wa ON wa.id = tp.agent_id
      JOIN workspace_resources r ON r.id = wa.resource_id
      JOIN workspace_builds b ON b.job_id = r.job_id AND b.transition = r.transition
      JOIN workspaces w ON w.id = b.workspace_id
      JOIN users u ON u.id = w.owner_id
      JOIN templates t ON t.id = w.template_id
     WHERE tp.kind = 'agent' AND tp.node IS NOT NULL AND NOT w.deleted
       AND b.build_number = (SELECT max(b2.build_number) FROM workspace_builds b2 WHERE b2.workspace_id = w.id)`.execute(db);
  return rows;
}
