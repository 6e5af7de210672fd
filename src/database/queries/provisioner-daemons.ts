import { sql, type Kysely } from "kysely";
import type { DB, ProvisionerDaemon } from "../schema.js";

/** Registers a daemon by (organization, name): a reconnecting daemon keeps its row. */
export async function upsertProvisionerDaemon(
  db: Kysely<DB>,
  d: { id: string; organization_id: string; name: string; tags: Record<string, string>; provisioners: string[]; version: string; replica_id?: string | null },
): Promise<ProvisionerDaemon> {
  return db
    .insertInto("provisioner_daemons")
    .values({ ...d, tags: JSON.stringify(d.tags), last_seen_at: new Date() })
    .onConflict((oc) =>
      oc.columns(["organization_id", "name"]).doUpdateSet({
        tags: JSON.stringify(d.tags),
        provisioners: d.provisioners,
        version: d.version,
        replica_id: d.replica_id ?? null,
        last_seen_at: new Date(),
        disconnected_at: null,
      }),
    )
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function touchProvisionerDaemon(db: Kysely<DB>, id: string, currentJobId: string | null): Promise<void> {
  await db.updateTable("provisioner_daemons").set({ last_seen_at: new Date(), current_job_id: currentJobId }).where("id", "=", id).execute();
}

export async function disconnectProvisionerDaemon(db: Kysely<DB>, id: string): Promise<void> {
  await db.updateTable("provisioner_daemons").set({ disconnected_at: new Date(), current_job_id: null }).where("id", "=", id).execute();
}

export async function listProvisionerDaemons(db: Kysely<DB>, organizationId: string): Promise<ProvisionerDaemon[]> {
  return db.selectFrom("provisioner_daemons").selectAll().where("organization_id", "=", organizationId).orderBy("created_at").orderBy("name").execute();
}

/** Daemons seen since `since` whose tags include all of `tags`: who could run a job so tagged. */
export async function countMatchingProvisionerDaemons(
  db: Kysely<DB>,
  a: { organizationId: string; provisioner: string; tags: Record<string, string>; since: Date },
): Promise<number> {
  const row = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM provisioner_daemons
    WHERE organization_id = ${a.organizationId} AND disconnected_at IS NULL AND last_seen_at >= ${a.since}
      AND ${a.provisioner} = ANY(provisioners) AND ${JSON.stringify(a.tags)}::jsonb <@ tags`.execute(db);
  return row.rows[0]?.n ?? 0;
}
