import { sql, type Kysely } from "kysely";
import type { DB, NewTemplateVersionParameter, Template, TemplateVersion, TemplateVersionParameter } from "../schema.js";

export async function insertTemplate(
  db: Kysely<DB>,
  t: { id: string; organization_id: string; name: string; display_name: string; description: string; active_version_id: string; created_by: string },
): Promise<Template> {
  return db.insertInto("templates").values(t).returningAll().executeTakeFirstOrThrow();
}

export async function getTemplateById(db: Kysely<DB>, id: string): Promise<Template | undefined> {
  return db.selectFrom("templates").selectAll().where("id", "=", id).where("deleted", "=", false).executeTakeFirst();
}

export async function getTemplateByOrganizationAndName(db: Kysely<DB>, organizationId: string, name: string): Promise<Template | undefined> {
  return db
    .selectFrom("templates")
    .selectAll()
    .where("organization_id", "=", organizationId)
    .where(sql<string>`lower(name)`, "=", name.toLowerCase())
    .where("deleted", "=", false)
    .executeTakeFirst();
}

export async function listTemplates(db: Kysely<DB>, organizationIds?: string[]): Promise<Template[]> {
  let q = db.selectFrom("templates").selectAll().where("deleted", "=", false).orderBy("name");
  if (organizationIds) {
    if (organizationIds.length === 0) return [];
    q = q.where("organization_id", "in", organizationIds);
  }
  return q.execute();
}

export async function updateTemplate(
  db: Kysely<DB>,
  id: string,
  patch: { name?: string; display_name?: string; description?: string; active_version_id?: string },
): Promise<Template | undefined> {
  return db.updateTable("templates").set({ ...patch, updated_at: new Date() }).where("id", "=", id).where("deleted", "=", false).returningAll().executeTakeFirst();
}

export async function softDeleteTemplate(db: Kysely<DB>, id: string): Promise<void> {
  await db.updateTable("templates").set({ deleted: true, updated_at: new Date() }).where("id", "=", id).execute();
}

export async function insertTemplateVersion(
  db: Kysely<DB>,
  v: { id: string; template_id: string | null; organization_id: string; name: string; message: string; job_id: string; created_by: string },
): Promise<TemplateVersion> {
  return db.insertInto("template_versions").values(v).returningAll().executeTakeFirstOrThrow();
}

export async function getTemplateVersionById(db: Kysely<DB>, id: string): Promise<TemplateVersion | undefined> {
  return db.selectFrom("template_versions").selectAll().where("id", "=", id).executeTakeFirst();
}

export async function getTemplateVersionByJobId(db: Kysely<DB>, jobId: string): Promise<TemplateVersion | undefined> {
  return db.selectFrom("template_versions").selectAll().where("job_id", "=", jobId).executeTakeFirst();
}

export async function getTemplateVersionByName(db: Kysely<DB>, templateId: string, name: string): Promise<TemplateVersion | undefined> {
  return db
    .selectFrom("template_versions")
    .selectAll()
    .where("template_id", "=", templateId)
    .where(sql<string>`lower(name)`, "=", name.toLowerCase())
    .executeTakeFirst();
}

export async function listTemplateVersions(db: Kysely<DB>, templateId: string): Promise<TemplateVersion[]> {
  return db.selectFrom("template_versions").selectAll().where("template_id", "=", templateId).orderBy("created_at").orderBy("id").execute();
}

export async function setTemplateVersionTemplate(db: Kysely<DB>, versionId: string, templateId: string): Promise<void> {
  await db.updateTable("template_versions").set({ template_id: templateId, updated_at: new Date() }).where("id", "=", versionId).execute();
}

export async function updateTemplateVersionReadme(db: Kysely<DB>, versionId: string, readme: string): Promise<void> {
  await db.updateTable("template_versions").set({ readme, updated_at: new Date() }).where("id", "=", versionId).execute();
}

export async function insertTemplateVersionParameters(db: Kysely<DB>, params: NewTemplateVersionParameter[]): Promise<void> {
  if (params.length === 0) return;
  await db.insertInto("template_version_parameters").values(params).execute();
}

export async function getTemplateVersionParameters(db: Kysely<DB>, versionId: string): Promise<TemplateVersionParameter[]> {
  return db.selectFrom("template_version_parameters").selectAll().where("template_version_id", "=", versionId).orderBy("ordering").orderBy("name").execute();
}

export async function countWorkspacesByTemplate(db: Kysely<DB>, templateId: string): Promise<number> {
  const row = await db
    .selectFrom("workspaces")
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .where("template_id", "=", templateId)
    .where("deleted", "=", false)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
