import { sql, type Kysely } from "kysely";
import type { DB, Workspace, WorkspaceBuild, WorkspaceTransition } from "../schema.js";

export async function insertWorkspace(
  db: Kysely<DB>,
  w: { id: string; organization_id: string; owner_id: string; template_id: string; name: string },
): Promise<Workspace> {
  return db.insertInto("workspaces").values(w).returningAll().executeTakeFirstOrThrow();
}

export async function getWorkspaceById(db: Kysely<DB>, id: string, includeDeleted = false): Promise<Workspace | undefined> {
  let q = db.selectFrom("workspaces").selectAll().where("id", "=", id);
  if (!includeDeleted) q = q.where("deleted", "=", false);
  return q.executeTakeFirst();
}

export async function getWorkspaceByOwnerAndName(db: Kysely<DB>, ownerId: string, name: string): Promise<Workspace | undefined> {
  return db
    .selectFrom("workspaces")
    .selectAll()
    .where("owner_id", "=", ownerId)
    .where(sql<string>`lower(name)`, "=", name.toLowerCase())
    .where("deleted", "=", false)
    .executeTakeFirst();
}

export interface WorkspaceSearch {
  ownerIds?: string[];
  templateName?: string;
  /** The latest build's job status, or a derived workspace status such as "running". */
  nameContains?: string;
  organizationIds?: string[];
  limit: number;
  offset: number;
}

export async function searchWorkspaces(db: Kysely<DB>, q: WorkspaceSearch): Promise<Workspace[]> {
  let s = db.selectFrom("workspaces as w").selectAll("w").where("w.deleted", "=", false);
  if (q.ownerIds) s = q.ownerIds.length ? s.where("w.owner_id", "in", q.ownerIds) : s.where(sql<boolean>`false`);
  if (q.organizationIds) s = q.organizationIds.length ? s.where("w.organization_id", "in", q.organizationIds) : s.where(sql<boolean>`false`);
  if (q.nameContains) s = s.where("w.name", "ilike", `%${q.nameContains.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
  if (q.templateName) {
    const name = q.templateName.toLowerCase();
    s = s.where("w.template_id", "in", db.selectFrom("templates").select("id").where(sql<string>`lower(name)`, "=", name));
  }
  return s.orderBy("w.created_at").orderBy("w.id").limit(q.limit).offset(q.offset).execute();
}

export async function markWorkspaceDeleted(db: Kysely<DB>, id: string): Promise<void> {
  await db.updateTable("workspaces").set({ deleted: true, updated_at: new Date() }).where("id", "=", id).execute();
}

export async function touchWorkspace(db: Kysely<DB>, id: string): Promise<void> {
  await db.updateTable("workspaces").set({ updated_at: new Date() }).where("id", "=", id).execute();
}

export async function insertWorkspaceBuild(
  db: Kysely<DB>,
  b: {
    id: string;
    workspace_id: string;
    template_version_id: string;
    build_number: number;
    transition: WorkspaceTransition;
    initiator_id: string;
    reason: string;
    job_id: string;
    provisioner_state: Buffer | null;
  },
): Promise<WorkspaceBuild> {
  return db.insertInto("workspace_builds").values(b).returningAll().executeTakeFirstOrThrow();
}

export async function getLatestWorkspaceBuild(db: Kysely<DB>, workspaceId: string): Promise<WorkspaceBuild | undefined> {
  return db.selectFrom("workspace_builds").selectAll().where("workspace_id", "=", workspaceId).orderBy("build_number", "desc").limit(1).executeTakeFirst();
}

export async function getLatestWorkspaceBuilds(db: Kysely<DB>, workspaceIds: string[]): Promise<WorkspaceBuild[]> {
  if (workspaceIds.length === 0) return [];
  return db
    .selectFrom("workspace_builds")
    .selectAll()
    .distinctOn("workspace_id")
    .where("workspace_id", "in", workspaceIds)
    .orderBy("workspace_id")
    .orderBy("build_number", "desc")
    .execute();
}

export async function getWorkspaceBuildById(db: Kysely<DB>, id: string): Promise<WorkspaceBuild | undefined> {
  return db.selectFrom("workspace_builds").selectAll().where("id", "=", id).executeTakeFirst();
}

export async function getWorkspaceBuildByJobId(db: Kysely<DB>, jobId: string): Promise<WorkspaceBuild | undefined> {
  return db.selectFrom("workspace_builds").selectAll().where("job_id", "=", jobId).executeTakeFirst();
}

export async function getWorkspaceBuildByNumber(db: Kysely<DB>, workspaceId: string, buildNumber: number): Promise<WorkspaceBuild | undefined> {
  return db.selectFrom("workspace_builds").selectAll().where("workspace_id", "=", workspaceId).where("build_number", "=", buildNumber).executeTakeFirst();
}

export async function listWorkspaceBuilds(db: Kysely<DB>, workspaceId: string): Promise<WorkspaceBuild[]> {
  return db.selectFrom("workspace_builds").selectAll().where("workspace_id", "=", workspaceId).orderBy("build_number", "desc").execute();
}

/**
 * The driver state a build starts from: that of the latest earlier build whose job ended and
 * recorded one (a failed build that changed nothing records none; the earlier state still holds).
 */
export async function getPreviousBuildState(db: Kysely<DB>, workspaceId: string, beforeBuildNumber: number): Promise<Buffer | null> {
  const row = await db
    .selectFrom("workspace_builds as b")
    .innerJoin("provisioner_jobs as j", "j.id", "b.job_id")
    .select(["b.provisioner_state", "j.job_status"])
    .where("b.workspace_id", "=", workspaceId)
    .where("b.build_number", "<", beforeBuildNumber)
    .where("j.completed_at", "is not", null)
    .where((eb) => eb.or([eb("b.provisioner_state", "is not", null), eb("j.job_status", "=", "succeeded")]))
    .orderBy("b.build_number", "desc")
    .limit(1)
    .executeTakeFirst();
  return row?.provisioner_state ?? null;
}

export async function updateWorkspaceBuildState(db: Kysely<DB>, id: string, state: Buffer | null): Promise<void> {
  await db.updateTable("workspace_builds").set({ provisioner_state: state, updated_at: new Date() }).where("id", "=", id).execute();
}

export async function insertWorkspaceBuildParameters(db: Kysely<DB>, buildId: string, params: Array<{ name: string; value: string }>): Promise<void> {
  if (params.length === 0) return;
  await db
    .insertInto("workspace_build_parameters")
    .values(params.map((p) => ({ workspace_build_id: buildId, name: p.name, value: p.value })))
    .execute();
}

export async function getWorkspaceBuildParameters(db: Kysely<DB>, buildId: string): Promise<Array<{ name: string; value: string }>> {
  return db.selectFrom("workspace_build_parameters").select(["name", "value"]).where("workspace_build_id", "=", buildId).orderBy("name").execute();
}
