import { sql, type Kysely } from "kysely";
import type { DB, NewUser, User, UserStatus, UserUpdate } from "../schema.js";

export async function getUserById(db: Kysely<DB>, id: string): Promise<User | undefined> {
  return db.selectFrom("users").selectAll().where("id", "=", id).where("deleted", "=", false).executeTakeFirst();
}

export async function getUserByUsername(db: Kysely<DB>, username: string): Promise<User | undefined> {
  return db
    .selectFrom("users")
    .selectAll()
    .where(sql<string>`lower(username)`, "=", username.toLowerCase())
    .where("deleted", "=", false)
    .executeTakeFirst();
}

export async function getUserByEmail(db: Kysely<DB>, email: string): Promise<User | undefined> {
  return db
    .selectFrom("users")
    .selectAll()
    .where(sql<string>`lower(email)`, "=", email.toLowerCase())
    .where("deleted", "=", false)
    .executeTakeFirst();
}

export async function countUsers(db: Kysely<DB>): Promise<number> {
  const row = await db
    .selectFrom("users")
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .where("deleted", "=", false)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

export async function insertUser(db: Kysely<DB>, user: NewUser): Promise<User> {
  return db.insertInto("users").values(user).returningAll().executeTakeFirstOrThrow();
}

export async function updateUser(db: Kysely<DB>, id: string, patch: UserUpdate): Promise<User | undefined> {
  return db
    .updateTable("users")
    .set({ ...patch, updated_at: new Date() })
    .where("id", "=", id)
    .where("deleted", "=", false)
    .returningAll()
    .executeTakeFirst();
}

export async function touchUserLastSeen(db: Kysely<DB>, id: string, at: Date): Promise<void> {
  await db.updateTable("users").set({ last_seen_at: at }).where("id", "=", id).execute();
}

export interface UserSearch {
  /** Matched case-insensitively against username, email and name. */
  text?: string;
  status?: UserStatus;
  role?: string;
  loginType?: User["login_type"];
  /** Restricts the result to these ids (the caller's visibility). */
  ids?: string[];
  afterId?: string;
  limit: number;
  offset: number;
}

export async function searchUsers(db: Kysely<DB>, q: UserSearch): Promise<{ users: User[]; count: number }> {
  let base = db.selectFrom("users").where("deleted", "=", false);
  if (q.text) {
    const like = `%${q.text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    base = base.where((eb) =>
      eb.or([eb("username", "ilike", like), eb("email", "ilike", like), eb("name", "ilike", like)]),
    );
  }
  if (q.status) base = base.where("status", "=", q.status);
  if (q.loginType) base = base.where("login_type", "=", q.loginType);
  if (q.role) {
    const role = q.role;
    base = base.where(sql<boolean>`${role} = ANY(rbac_roles)`);
  }
  if (q.ids) base = base.where("id", "in", q.ids.length ? q.ids : ["00000000-0000-0000-0000-000000000000"]);
  const countRow = await base.select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
  let page = base.selectAll().orderBy("created_at").orderBy("id");
  if (q.afterId) {
    page = page.where(sql<boolean>`(created_at, id) > (SELECT u.created_at, u.id FROM users u WHERE u.id = ${q.afterId})`);
  }
  const users = await page.limit(q.limit).offset(q.offset).execute();
  return { users, count: Number(countRow.n) };
}

export async function updateUserStatus(db: Kysely<DB>, id: string, status: UserStatus): Promise<User | undefined> {
  return updateUser(db, id, { status });
}
