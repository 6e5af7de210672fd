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
  c: { connected: boolean; version?: string; operatingSystem?: string; expandedDirectory?: string; sshHostPublicKey?: string },
): Promise<void> {
  const now = new Date();
  await db
    .updateTable("workspace_agents")
    .set(
      c.connected
        ? {
            first_connected_at: sql`coalesce(first_connected_at, ${now})`,
            last_connected_at: now,
            disconnected_at: null,
            ...(c.version !== undefined ? { version: c.version } : {}),
            ...(c.operatingSystem !== undefined ? { operating_system: c.operatingSystem } : {}),
            ...(c.expandedDirectory !== undefined ? { expanded_directory: c.expandedDirectory } : {}),
            ...(c.sshHostPublicKey !== undefined ? { ssh_host_public_key: c.sshHostPublicKey } : {}),
            updated_at: now,
          }
        : { disconnected_at: now, updated_at: now },
    )
    .where("id", "=", id)
    .execute();
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
export async function insertAgentLogs(
  db: Kysely<DB>,
  agentId: string,
  logs: Array<{ seq: number; created_at: Date; source: string; level: string; output: string }>,
): Promise<number> {
  if (logs.length === 0) return 0;
  const rows = await db
    .insertInto("workspace_agent_logs")
    .values(logs.map((l) => ({ agent_id: agentId, ...l })))
    .onConflict((oc) => oc.columns(["agent_id", "seq"]).doNothing())
    .returning("id")
    .execute();
  return rows.length;
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
