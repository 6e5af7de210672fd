import type { Kysely } from "kysely";
import type { DB } from "../schema.js";

export async function getSiteConfig(db: Kysely<DB>, key: string): Promise<string | undefined> {
  const row = await db.selectFrom("site_configs").select("value").where("key", "=", key).executeTakeFirst();
  return row?.value;
}

/** Inserts the value unless the key exists; returns the stored value either way. */
export async function ensureSiteConfig(db: Kysely<DB>, key: string, value: string): Promise<string> {
  await db
    .insertInto("site_configs")
    .values({ key, value })
    .onConflict((oc) => oc.column("key").doNothing())
    .execute();
  return (await getSiteConfig(db, key))!;
}

export async function ensureDeploymentId(db: Kysely<DB>): Promise<string> {
  return ensureSiteConfig(db, "deployment_id", crypto.randomUUID());
}

/** The relay mesh's shared secret: created by the first replica, read by every later one. */
export async function ensureRelayMeshKey(db: Kysely<DB>): Promise<string> {
  return ensureSiteConfig(db, "derp_mesh_key", Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("hex"));
}
