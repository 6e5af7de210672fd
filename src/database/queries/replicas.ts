// The replica registry (HA): one row per `coder server` process. "Alive" is judged by the
// database's clock, so replicas with skewed clocks still agree on who is gone.
import { sql, type Kysely } from "kysely";
import type { DB, Replica } from "../schema.js";

export async function insertReplica(
  db: Kysely<DB>,
  r: { id: string; hostname: string; regionId: number; relayAddress: string; version: string; databaseLatencyUs: number; error: string },
): Promise<Replica> {
  return db
    .insertInto("replicas")
    .values({ id: r.id, hostname: r.hostname, region_id: r.regionId, relay_address: r.relayAddress, version: r.version, database_latency: r.databaseLatencyUs, error: r.error })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** The heartbeat: what this replica measured. Undefined when the row is gone (deleted by cleanup). */
export async function updateReplica(
  db: Kysely<DB>,
  r: { id: string; relayAddress: string; databaseLatencyUs: number; error: string },
): Promise<Replica | undefined> {
  return db
    .updateTable("replicas")
    .set({ updated_at: sql`now()`, relay_address: r.relayAddress, database_latency: r.databaseLatencyUs, error: r.error, stopped_at: null })
    .where("id", "=", r.id)
    .returningAll()
    .executeTakeFirst();
}

export async function stopReplica(db: Kysely<DB>, id: string): Promise<void> {
  await db.updateTable("replicas").set({ stopped_at: sql`now()`, updated_at: sql`now()` }).where("id", "=", id).execute();
}

/** Replicas that heartbeat within the last `withinMs` and have not stopped, oldest first. */
export async function getAliveReplicas(db: Kysely<DB>, withinMs: number): Promise<Replica[]> {
  return db
    .selectFrom("replicas")
    .selectAll()
    .where("stopped_at", "is", null)
    .where("updated_at", ">", sql<Date>`now() - make_interval(secs => ${withinMs / 1000})`)
    .orderBy("started_at")
    .orderBy("id")
    .execute();
}

/** Forgets replicas not heard from for longer than `olderThanMs`. */
export async function deleteReplicasUpdatedBefore(db: Kysely<DB>, olderThanMs: number): Promise<number> {
  const r = await db
    .deleteFrom("replicas")
    .where("updated_at", "<", sql<Date>`now() - make_interval(secs => ${olderThanMs / 1000})`)
    .executeTakeFirst();
  return Number(r.numDeletedRows);
}
