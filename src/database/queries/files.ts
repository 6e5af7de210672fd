import type { Kysely } from "kysely";
import type { DB, File } from "../schema.js";

/** Stores the bytes unless the same hash is stored already; returns the stored file either way. */
export async function insertFileIfAbsent(db: Kysely<DB>, f: { id: string; hash: string; mimetype: string; data: Buffer; created_by: string }): Promise<File> {
  await db.insertInto("files").values(f).onConflict((oc) => oc.column("hash").doNothing()).execute();
  return db.selectFrom("files").selectAll().where("hash", "=", f.hash).executeTakeFirstOrThrow();
}

export async function getFileById(db: Kysely<DB>, id: string): Promise<File | undefined> {
  return db.selectFrom("files").selectAll().where("id", "=", id).executeTakeFirst();
}

/** Metadata only, for permission checks without loading the bytes. */
export async function getFileMeta(db: Kysely<DB>, id: string): Promise<Omit<File, "data"> | undefined> {
  return db.selectFrom("files").select(["id", "hash", "mimetype", "created_by", "created_at"]).where("id", "=", id).executeTakeFirst();
}
