import { sql, type Kysely } from "kysely";
import type { ApiKey, DB, NewApiKey, User } from "../schema.js";

export async function insertApiKey(db: Kysely<DB>, key: NewApiKey): Promise<ApiKey> {
  return db.insertInto("api_keys").values(key).returningAll().executeTakeFirstOrThrow();
}

/** The key and its user in one round trip: this runs on every authenticated request. */
export async function getApiKeyWithUser(
  db: Kysely<DB>,
  id: string,
): Promise<{ key: ApiKey; user: User; orgRoles: Array<{ organization_id: string; roles: string[] }> } | undefined> {
  const row = await db
    .selectFrom("api_keys as k")
    .innerJoin("users as u", "u.id", "k.user_id")
    .select([
      sql<ApiKey>`to_jsonb(k.*) - 'hashed_secret'`.as("key"),
      "k.hashed_secret",
      sql<User>`to_jsonb(u.*)`.as("user"),
      sql<Array<{ organization_id: string; roles: string[] }>>`coalesce((
        SELECT jsonb_agg(jsonb_build_object('organization_id', m.organization_id, 'roles', m.roles))
        FROM organization_members m WHERE m.user_id = u.id), '[]'::jsonb)`.as("org_roles"),
    ])
    .where("k.id", "=", id)
    .where("u.deleted", "=", false)
    .executeTakeFirst();
  if (!row) return undefined;
  const key = row.key as unknown as Record<string, unknown>;
  const user = row.user as unknown as Record<string, unknown>;
  return {
    key: {
      ...(key as unknown as ApiKey),
      hashed_secret: row.hashed_secret,
      expires_at: new Date(key.expires_at as string),
      last_used: new Date(key.last_used as string),
      created_at: new Date(key.created_at as string),
      updated_at: new Date(key.updated_at as string),
    },
    user: {
      ...(user as unknown as User),
      created_at: new Date(user.created_at as string),
      updated_at: new Date(user.updated_at as string),
      last_seen_at: user.last_seen_at ? new Date(user.last_seen_at as string) : null,
    },
    orgRoles: row.org_roles,
  };
}

export async function getApiKeyById(db: Kysely<DB>, id: string): Promise<ApiKey | undefined> {
  return db.selectFrom("api_keys").selectAll().where("id", "=", id).executeTakeFirst();
}

export async function getApiKeyByName(db: Kysely<DB>, userId: string, tokenName: string): Promise<ApiKey | undefined> {
  return db
    .selectFrom("api_keys")
    .selectAll()
    .where("user_id", "=", userId)
    .where("login_type", "=", "token")
    .where(sql<string>`lower(token_name)`, "=", tokenName.toLowerCase())
    .executeTakeFirst();
}

export async function listTokensByUser(db: Kysely<DB>, userId: string): Promise<ApiKey[]> {
  return db
    .selectFrom("api_keys")
    .selectAll()
    .where("user_id", "=", userId)
    .where("login_type", "=", "token")
    .orderBy("created_at")
    .execute();
}

export async function deleteApiKey(db: Kysely<DB>, id: string): Promise<boolean> {
  const res = await db.deleteFrom("api_keys").where("id", "=", id).executeTakeFirst();
  return res.numDeletedRows > 0n;
}

export async function touchApiKey(db: Kysely<DB>, id: string, lastUsed: Date, expiresAt?: Date): Promise<void> {
  await db
    .updateTable("api_keys")
    .set(expiresAt ? { last_used: lastUsed, expires_at: expiresAt } : { last_used: lastUsed })
    .where("id", "=", id)
    .execute();
}

export async function deleteApiKeysByUser(db: Kysely<DB>, userId: string): Promise<void> {
  await db.deleteFrom("api_keys").where("user_id", "=", userId).execute();
}

/** Ends the user's login sessions (not named tokens), optionally keeping one. */
export async function deleteLoginSessionsByUser(db: Kysely<DB>, userId: string, keepId?: string): Promise<void> {
  let q = db.deleteFrom("api_keys").where("user_id", "=", userId).where("login_type", "!=", "token");
  if (keepId) q = q.where("id", "!=", keepId);
  await q.execute();
}
