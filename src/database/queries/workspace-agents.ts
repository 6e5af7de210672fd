import { sql, type Kysely } from "kysely";
import type { DB, WorkspaceAgent, WorkspaceAgentLog } from "../schema.js";

/** The agent whose token hashes to this, with its workspace and build (one query per agent request). */
export async function getAgentByTokenHash(
  db: Kysely<DB>,
  hash: Buffer,
): Promise<{ agent: WorkspaceAgent; workspaceId: string; ownerId: string; buildId: string; transition: string } | undefined> {
  const row = await db
    .selectFrom("workspace_agents as a")
    .innerJoin("workspace_resources as r", "r.id", "a.resource_id")
    .innerJoin("workspace_builds as b", "b.job_id", "r.job_id")
    .innerJoin("workspaces as w", "w.id", "b.workspace_id")
    .selectAll("a")
    .select(["w.id as workspace_id", "w.owner_id as owner_id", "b.id as build_id", "b.transition as build_transition"])
    .where("a.auth_token_hash", "=", hash)
    .where("w.deleted", "=", false)
    .executeTakeFirst();
  if (!row) return undefined;
  const { workspace_id, owner_id, build_id, build_transition, ...agent } = row;
  return { agent: agent as WorkspaceAgent, workspaceId: workspace_id, ownerId: owner_id, buildId: build_id, transition: build_transition };
}

export async function getWorkspaceAgentById(db: Kysely<DB>, id: string): Promise<WorkspaceAgent | undefined> {
  return db.selectFrom("workspace_agents").selectAll().where("id", "=", id).executeTakeFirst();
}

/** The workspace an agent belongs to (through its resource's build). */
export async function getWorkspaceIdByAgent(db: Kysely<DB>, agentId: string): Promise<string | undefined> {
  const row = await db
    .selectFrom("workspace_agents as a")
    .innerJoin("workspace_resources as r", "r.id", "a.resource_id")
    .innerJoin("workspace_builds as b", "b.job_id", "r.job_id")
    .select("b.workspace_id")
    .where("a.id", "=", agentId)
    .executeTakeFirst();
  return row?.workspace_id;
}

export async function updateAgentConnection(
  db: Kysely<DB>,
  id: string,
  c: { connected: boolean; replicaId: string; version?: string; operatingSystem?: string; expandedDirectory?: string; sshHostPublicKey?: string },
): Promise<void> {
  const now = new Date();
  let q = db
    .updateTable("workspace_agents")
    .set(
      c.connected
        ? {
            first_connected_at: sql`coalesce(first_connected_at, ${now})`,
            last_connected_at: now,
            last_connected_replica_id: c.replicaId,
            disconnected_at: null,
            ...(c.version !== undefined ? { version: c.version } : {}),
            ...(c.operatingSystem !== undefined ? { operating_system: c.operatingSystem } : {}),
            ...(c.expandedDirectory !== undefined ? { expanded_directory: c.expandedDirectory } : {}),
            ...(c.sshHostPublicKey !== undefined ? { ssh_host_public_key: c.sshHostPublicKey } : {}),
            updated_at: now,
          }
        : { disconnected_at: now, updated_at: now },
    )
    .where("id", "=", id);
  // A disconnect counts only where the agent did not already come back through another replica.
  if (!c.connected) q = q.where((eb) => eb.or([eb("last_connected_replica_id", "is", null), eb("last_connected_replica_id", "=", c.replicaId)]));
  await q.execute();
}

export async function updateAgentLifecycle(db: Kysely<DB>, id: string, state: string, at: Date): Promise<void> {
  await db
    .updateTable("workspace_agents")
    .set({
      lifecycle_state: state,
      updated_at: new Date(),
      ...(state === "starting" ? { started_at: at } : {}),
      ...(["ready", "start_error", "start_timeout"].includes(state) ? { ready_at: at } : {}),
    })
    .where("id", "=", id)
    .execute();
}

/** Stores a batch; lines already stored (same seq) are skipped. Returns how many were new. */
/** Log lines of many agents in one statement; returns how many were new, per agent. */
export async function insertAgentLogsMany(
  db: Kysely<DB>,
  logs: Array<{ agent_id: string; seq: number; created_at: Date; source: string; level: string; output: string }>,
): Promise<Map<string, number>> {
  const stored = new Map<string, number>();
  if (logs.length === 0) return stored;
  // unnest keeps the statement at six parameters whatever the number of rows.
  const { rows } = await sql<{ agent_id: string }>`
    INSERT INTO workspace_agent_logs (agent_id, seq, created_at, source, level, output)
    SELECT * FROM unnest(
      ${logs.map((l) => l.agent_id)}::uuid[], ${logs.map((l) => l.seq)}::bigint[], ${logs.map((l) => l.created_at)}::timestamptz[],
      ${logs.map((l) => l.source)}::text[], ${logs.map((l) => l.level)}::text[], ${logs.map((l) => l.output)}::text[])
    ON CONFLICT (agent_id, seq) DO NOTHING
    RETURNING agent_id`.execute(db);
  for (const r of rows) stored.set(r.agent_id, (stored.get(r.agent_id) ?? 0) + 1);
  return stored;
}

/**
 * Heartbeats of many agents in one statement, with the latest stats of those that sent some.
 * One statement for both, so two writers never lock the same rows in different orders.
 */
export async function touchAgents(db: Kysely<DB>, beats: Array<{ agent_id: string; stats?: object }>): Promise<void> {
  if (beats.length === 0) return;
  // Sorted ids: concurrent statements from other replicas lock rows in the same order.
  const sorted = [...beats].sort((x, y) => (x.agent_id < y.agent_id ? -1 : 1));
  // A heartbeat lost to a database crash costs nothing (the next one comes seconds later), so
  // these commits do not wait for the WAL flush: under load that wait was most of their latency.
  await db.transaction().execute(async (tx) => {
    await sql`SET LOCAL synchronous_commit = off`.execute(tx);
    await sql`
    UPDATE workspace_agents AS a SET
      last_connected_at = now(),
      stats = coalesce(v.stats, a.stats),
      stats_updated_at = CASE WHEN v.stats IS NULL THEN a.stats_updated_at ELSE now() END
    FROM unnest(${sorted.map((b) => b.agent_id)}::uuid[], ${sorted.map((b) => (b.stats ? JSON.stringify(b.stats) : null))}::jsonb[]) AS v(id, stats)
    WHERE a.id = v.id`.execute(tx);
  });
}

export async function getAgentLogsAfter(db: Kysely<DB>, agentId: string, afterId: number, limit = 10_000): Promise<WorkspaceAgentLog[]> {
  return db.selectFrom("workspace_agent_logs").selectAll().where("agent_id", "=", agentId).where("id", ">", afterId).orderBy("id").limit(limit).execute();
}

/** Agents of the given jobs' resources. */
export async function getAgentsByJobIds(db: Kysely<DB>, jobIds: string[]): Promise<WorkspaceAgent[]> {
  if (jobIds.length === 0) return [];
  return db
    .selectFrom("workspace_agents as a")
    .innerJoin("workspace_resources as r", "r.id", "a.resource_id")
    .selectAll("a")
    .where("r.job_id", "in", jobIds)
    .orderBy("a.name")
    .execute();
}

/** The job whose resources hold the agent. */
export async function getAgentJobId(db: Kysely<DB>, agentId: string): Promise<string> {
  const row = await db
    .selectFrom("workspace_agents as a")
    .innerJoin("workspace_resources as r", "r.id", "a.resource_id")
    .select("r.job_id")
    .where("a.id", "=", agentId)
    .executeTakeFirstOrThrow();
  return row.job_id;
}

/** Merges newly collected metadata values into what is stored. */
export async function updateAgentMetadata(
  db: Kysely<DB>,
  agentId: string,
  values: Record<string, { value: string; error: string; collected_at: string }>,
): Promise<void> {
  await db
    .updateTable("workspace_agents")
    .set({ metadata_values: sql`metadata_values || ${JSON.stringify(values)}::jsonb` })
    .where("id", "=", agentId)
    .execute();
}

export async function updateAgentListeningPorts(db: Kysely<DB>, agentId: string, ports: Array<{ port: number; network: string; process_name: string }>): Promise<void> {
  await db.updateTable("workspace_agents").set({ listening_ports: JSON.stringify(ports) }).where("id", "=", agentId).execute();
}

export async function updateAppHealth(db: Kysely<DB>, agentId: string, health: Record<string, string>): Promise<void> {
  for (const [slug, state] of Object.entries(health)) {
    await db.updateTable("workspace_apps").set({ health: state }).where("agent_id", "=", agentId).where("slug", "=", slug).execute();
  }
}
