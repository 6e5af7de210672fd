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
