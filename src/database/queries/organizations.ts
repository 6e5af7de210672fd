import { sql, type Kysely } from "kysely";
import type { DB, Organization, OrganizationMember } from "../schema.js";

export async function getOrganizationById(db: Kysely<DB>, id: string): Promise<Organization | undefined> {
  return db.selectFrom("organizations").selectAll().where("id", "=", id).executeTakeFirst();
}

export async function getOrganizationByName(db: Kysely<DB>, name: string): Promise<Organization | undefined> {
  return db
    .selectFrom("organizations")
    .selectAll()
    .where(sql<string>`lower(name)`, "=", name.toLowerCase())
    .executeTakeFirst();
}

export async function getDefaultOrganization(db: Kysely<DB>): Promise<Organization | undefined> {
  return db.selectFrom("organizations").selectAll().where("is_default", "=", true).executeTakeFirst();
}

export async function listOrganizations(db: Kysely<DB>, ids?: string[]): Promise<Organization[]> {
  let q = db.selectFrom("organizations").selectAll().orderBy("created_at").orderBy("id");
  if (ids) {
    if (ids.length === 0) return [];
    q = q.where("id", "in", ids);
  }
  return q.execute();
}

export async function insertOrganization(
  db: Kysely<DB>,
  org: { id: string; name: string; display_name: string; description?: string; is_default?: boolean },
): Promise<Organization> {
  return db.insertInto("organizations").values(org).returningAll().executeTakeFirstOrThrow();
}

export async function updateOrganization(
  db: Kysely<DB>,
  id: string,
  patch: { name?: string; display_name?: string; description?: string },
): Promise<Organization | undefined> {
  return db
    .updateTable("organizations")
    .set({ ...patch, updated_at: new Date() })
    .where("id", "=", id)
    .returningAll()
    .executeTakeFirst();
}

export async function deleteOrganization(db: Kysely<DB>, id: string): Promise<boolean> {
  const res = await db.deleteFrom("organizations").where("id", "=", id).executeTakeFirst();
  return res.numDeletedRows > 0n;
}

export async function getOrganizationMembershipsByUser(db: Kysely<DB>, userId: string): Promise<OrganizationMember[]> {
  return db.selectFrom("organization_members").selectAll().where("user_id", "=", userId).execute();
}

export async function getOrganizationMember(
  db: Kysely<DB>,
  organizationId: string,
  userId: string,
): Promise<OrganizationMember | undefined> {
  return db
    .selectFrom("organization_members")
    .selectAll()
    .where("organization_id", "=", organizationId)
    .where("user_id", "=", userId)
    .executeTakeFirst();
}

export async function listOrganizationMembers(db: Kysely<DB>, organizationId: string): Promise<OrganizationMember[]> {
  return db
    .selectFrom("organization_members")
    .selectAll()
    .where("organization_id", "=", organizationId)
    .orderBy("created_at")
    .orderBy("user_id")
    .execute();
}

export async function insertOrganizationMember(
  db: Kysely<DB>,
  m: { organization_id: string; user_id: string; roles: string[] },
): Promise<OrganizationMember> {
  return db.insertInto("organization_members").values(m).returningAll().executeTakeFirstOrThrow();
}

export async function updateOrganizationMemberRoles(
  db: Kysely<DB>,
  organizationId: string,
  userId: string,
  roles: string[],
): Promise<OrganizationMember | undefined> {
  return db
    .updateTable("organization_members")
    .set({ roles, updated_at: new Date() })
    .where("organization_id", "=", organizationId)
    .where("user_id", "=", userId)
    .returningAll()
    .executeTakeFirst();
}

export async function deleteOrganizationMember(db: Kysely<DB>, organizationId: string, userId: string): Promise<boolean> {
  const res = await db
    .deleteFrom("organization_members")
    .where("organization_id", "=", organizationId)
    .where("user_id", "=", userId)
    .executeTakeFirst();
  return res.numDeletedRows > 0n;
}

export async function getOrganizationMembershipsByUsers(db: Kysely<DB>, userIds: string[]): Promise<OrganizationMember[]> {
  if (userIds.length === 0) return [];
  return db.selectFrom("organization_members").selectAll().where("user_id", "in", userIds).execute();
}
