import { sql, type Kysely } from "kysely";
import type { DB, JobType, ProvisionerJob, ProvisionerJobLog } from "../schema.js";

export async function insertProvisionerJob(
  db: Kysely<DB>,
  job: {
    id: string;
    organization_id: string;
    initiator_id: string;
    provisioner: string;
    type: JobType;
    file_id: string;
    input: Record<string, unknown>;
    tags: Record<string, string>;
  },
): Promise<ProvisionerJob> {
  return db
    .insertInto("provisioner_jobs")
    .values({ ...job, input: JSON.stringify(job.input), tags: JSON.stringify(job.tags) })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function getProvisionerJobById(db: Kysely<DB>, id: string): Promise<ProvisionerJob | undefined> {
  return db.selectFrom("provisioner_jobs").selectAll().where("id", "=", id).executeTakeFirst();
}

export async function getProvisionerJobsByIds(db: Kysely<DB>, ids: string[]): Promise<ProvisionerJob[]> {
  if (ids.length === 0) return [];
  return db.selectFrom("provisioner_jobs").selectAll().where("id", "in", ids).execute();
}

/**
 * Takes the oldest pending job this daemon can run: its tags must be a subset of the daemon's.
 * SKIP LOCKED lets many daemons (on many replicas) acquire at once without waiting on each other.
 */
export async function acquireProvisionerJob(
  db: Kysely<DB>,
  a: { workerId: string; organizationId: string; provisioners: string[]; tags: Record<string, string> },
): Promise<ProvisionerJob | undefined> {
  const result = await sql<ProvisionerJob>`
    UPDATE provisioner_jobs SET started_at = now(), updated_at = now(), heartbeat_at = now(), worker_id = ${a.workerId}
    WHERE id = (
      SELECT id FROM provisioner_jobs
      WHERE started_at IS NULL AND canceled_at IS NULL AND completed_at IS NULL
        AND organization_id = ${a.organizationId}
        AND provisioner = ANY(${a.provisioners}::text[])
        AND tags <@ ${JSON.stringify(a.tags)}::jsonb
      ORDER BY created_at, id
      FOR UPDATE SKIP LOCKED
      LIMIT 1
    )
    RETURNING *`.execute(db);
  return result.rows[0];
}

/** Records the worker's heartbeat; tells it whether the job was canceled meanwhile. */
export async function heartbeatProvisionerJob(db: Kysely<DB>, id: string, workerId: string): Promise<{ canceled: boolean } | undefined> {
  const row = await db
    .updateTable("provisioner_jobs")
    .set({ heartbeat_at: new Date(), updated_at: new Date() })
    .where("id", "=", id)
    .where("worker_id", "=", workerId)
    .where("completed_at", "is", null)
    .returning(["canceled_at"])
    .executeTakeFirst();
  return row ? { canceled: row.canceled_at !== null } : undefined;
}

/** Ends a running job; undefined when it was not this worker's or had already ended (reaped). */
export async function completeProvisionerJob(db: Kysely<DB>, id: string, workerId: string, error: string | null): Promise<ProvisionerJob | undefined> {
  return db
    .updateTable("provisioner_jobs")
    .set({ completed_at: new Date(), updated_at: new Date(), error })
    .where("id", "=", id)
    .where("worker_id", "=", workerId)
    .where("completed_at", "is", null)
    .returningAll()
    .executeTakeFirst();
}

/** Cancels: a pending job ends at once (canceled); a running one goes to canceling. */
export async function cancelProvisionerJob(db: Kysely<DB>, id: string): Promise<ProvisionerJob | undefined> {
  return db
    .updateTable("provisioner_jobs")
    .set({
      canceled_at: new Date(),
      updated_at: new Date(),
      completed_at: sql`CASE WHEN started_at IS NULL THEN now() ELSE completed_at END`,
    })
    .where("id", "=", id)
    .where("completed_at", "is", null)
    .where("canceled_at", "is", null)
    .returningAll()
    .executeTakeFirst();
}

/**
 * Fails running jobs whose heartbeat stopped, jobs of built-in daemons whose replica is gone
 * (stopped, or silent for `replicaGoneAfterMs`), and pending jobs nobody took in time.
 */
export async function reapProvisionerJobs(
  db: Kysely<DB>,
  cutoffs: { heartbeatBefore: Date; pendingBefore: Date; replicaGoneAfterMs: number },
): Promise<Array<{ id: string; reason: "hung" | "pending" | "replica_gone"; replica?: { id: string; hostname: string } }>> {
  const orphaned = await sql<{ id: string; replica_id: string; hostname: string }>`
    UPDATE provisioner_jobs j
       SET completed_at = now(), updated_at = now(),
           error = CASE WHEN j.canceled_at IS NOT NULL THEN j.error ELSE 'Build failed: the replica running its provisioner daemon stopped.' END
      FROM provisioner_daemons d
      LEFT JOIN replicas r ON r.id = d.replica_id
     WHERE j.worker_id = d.id
       AND d.replica_id IS NOT NULL
       AND j.started_at IS NOT NULL AND j.completed_at IS NULL
       AND (r.id IS NULL OR r.stopped_at IS NOT NULL OR r.updated_at < now() - make_interval(secs => ${cutoffs.replicaGoneAfterMs / 1000}))
    RETURNING j.id, d.replica_id, coalesce(r.hostname, '') AS hostname`.execute(db);
  const hung = await db
    .updateTable("provisioner_jobs")
    .set({
      completed_at: new Date(),
      updated_at: new Date(),
      error: sql`CASE WHEN canceled_at IS NOT NULL THEN error ELSE 'Build failed: the provisioner daemon stopped responding (no heartbeat).' END`,
    })
    .where("started_at", "is not", null)
    .where("completed_at", "is", null)
    .where("heartbeat_at", "<", cutoffs.heartbeatBefore)
    .returning(["id"])
    .execute();
  const pending = await db
    .updateTable("provisioner_jobs")
    .set({ completed_at: new Date(), updated_at: new Date(), error: "No provisioner daemon picked up the job in time." })
    .where("started_at", "is", null)
    .where("completed_at", "is", null)
    .where("created_at", "<", cutoffs.pendingBefore)
    .returning(["id"])
    .execute();
  return [
    ...orphaned.rows.map((r) => ({ id: r.id, reason: "replica_gone" as const, replica: { id: r.replica_id, hostname: r.hostname } })),
    ...hung.map((r) => ({ id: r.id, reason: "hung" as const })), ...pending.map((r) => ({ id: r.id, reason: "pending" as const }))];
}

export async function insertProvisionerJobLogs(
  db: Kysely<DB>,
  jobId: string,
  logs: Array<{ created_at?: Date; source: string; level: string; stage?: string; output: string }>,
): Promise<number[]> {
  if (logs.length === 0) return [];
  const rows = await db
    .insertInto("provisioner_job_logs")
    .values(logs.map((l) => ({ job_id: jobId, created_at: l.created_at ?? new Date(), source: l.source, level: l.level, stage: l.stage ?? "", output: l.output })))
    .returning(["id"])
    .execute();
  return rows.map((r) => r.id);
}

export async function getProvisionerJobLogsAfter(db: Kysely<DB>, jobId: string, afterId: number, limit = 10_000): Promise<ProvisionerJobLog[]> {
  return db
    .selectFrom("provisioner_job_logs")
    .selectAll()
    .where("job_id", "=", jobId)
    .where("id", ">", afterId)
    .orderBy("id")
    .limit(limit)
    .execute();
}

/** Pending jobs ahead of this one that its daemons could also take: its place in the queue. */
export async function getJobQueuePosition(db: Kysely<DB>, job: ProvisionerJob): Promise<{ position: number; size: number }> {
  const row = await sql<{ position: number; size: number }>`
    SELECT
      count(*) FILTER (WHERE (created_at, id) < (${job.created_at}, ${job.id}))::int AS position,
      count(*)::int AS size
    FROM provisioner_jobs
    WHERE started_at IS NULL AND canceled_at IS NULL AND completed_at IS NULL AND organization_id = ${job.organization_id}`.execute(db);
  return row.rows[0] ?? { position: 0, size: 0 };
}

/** Undoes an acquisition the daemon never started working on. */
export async function releaseProvisionerJob(db: Kysely<DB>, id: string, workerId: string): Promise<void> {
  await db
    .updateTable("provisioner_jobs")
    .set({ started_at: null, heartbeat_at: null, worker_id: null, updated_at: new Date() })
    .where("id", "=", id)
    .where("worker_id", "=", workerId)
    .where("completed_at", "is", null)
    .execute();
}
