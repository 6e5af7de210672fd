// Applies the numbered SQL files in migrations/ once, under an advisory lock, so replicas that
// start together against one database never race.
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type pg from "pg";

const MIGRATIONS_DIR = fileURLToPath(new URL("./migrations/", import.meta.url));
// Arbitrary but fixed: every replica must contend on the same key.
const MIGRATION_LOCK_KEY = 0x636f6465; // "code"

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export class SchemaTooNewError extends Error {}

export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d+_.+\.up\.sql$/.test(f))
    .map((f) => ({
      version: Number.parseInt(f.split("_")[0]!, 10),
      name: f.replace(/\.up\.sql$/, ""),
      sql: readFileSync(`${dir}/${f}`, "utf8"),
    }))
    .sort((a, b) => a.version - b.version);
}

export interface MigrateResult {
  applied: string[];
  version: number;
}

export async function migrate(pool: pg.Pool, migrations = loadMigrations()): Promise<MigrateResult> {
  const client = await pool.connect();
  try {
    await client.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK_KEY]);
    try {
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
      const { rows } = await client.query<{ version: number }>("SELECT version FROM schema_migrations");
      const done = new Set(rows.map((r) => r.version));
      const latestKnown = migrations.at(-1)?.version ?? 0;
      const newest = Math.max(0, ...done);
      if (newest > latestKnown) {
        throw new SchemaTooNewError(
          `the database schema is at version ${newest} but this coder binary knows only up to version ${latestKnown}; ` +
            "run a coder release at least as new as the one that last migrated this database",
        );
      }
      const applied: string[] = [];
      for (const m of migrations) {
        if (done.has(m.version)) continue;
        await client.query("BEGIN");
        try {
          await client.query(m.sql);
          await client.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [m.version, m.name]);
          await client.query("COMMIT");
        } catch (err) {
          await client.query("ROLLBACK");
          throw new Error(`migration ${m.name} failed: ${(err as Error).message}`);
        }
        applied.push(m.name);
      }
      return { applied, version: Math.max(newest, latestKnown) };
    } finally {
      await client.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK_KEY]);
    }
  } finally {
    client.release();
  }
}
