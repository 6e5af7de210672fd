// One call that gives coderd a ready database: pool, migrations, store.
import type pg from "pg";
import { createKysely, createPool, ping } from "./connect.js";
import { migrate, type MigrateResult } from "./migrate.js";
import { createStore, type Store } from "./store.js";

export interface Database {
  store: Store;
  pool: pg.Pool;
  migrations: MigrateResult;
  close(): Promise<void>;
}

export async function openDatabase(url: string, opts: { maxConnections?: number } = {}): Promise<Database> {
  const pool = createPool({ connectionString: url, max: opts.maxConnections });
  try {
    await ping(pool);
    const migrations = await migrate(pool);
    const kysely = createKysely(pool);
    return {
      store: createStore(kysely),
      pool,
      migrations,
      close: () => kysely.destroy(),
    };
  } catch (err) {
    await pool.end().catch(() => {});
    throw err;
  }
}
