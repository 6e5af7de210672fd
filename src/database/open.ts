// One call that gives coderd a ready database: pool, migrations, store, pubsub.
import type pg from "pg";
import { createKysely, createPool, ping } from "./connect.js";
import { migrate, type MigrateResult } from "./migrate.js";
import { PgPubsub, type Pubsub } from "./pubsub.js";
import { createStore, type Store } from "./store.js";

export interface Database {
  store: Store;
  pool: pg.Pool;
  pubsub: Pubsub;
  migrations: MigrateResult;
  close(): Promise<void>;
}

export async function openDatabase(
  url: string,
  opts: { maxConnections?: number; onPubsubError?: (err: unknown) => void } = {},
): Promise<Database> {
  const pool = createPool({ connectionString: url, max: opts.maxConnections });
  try {
    await ping(pool);
    const migrations = await migrate(pool);
    const kysely = createKysely(pool);
    const pubsub = new PgPubsub(pool, url, opts.onPubsubError);
    return {
      store: createStore(kysely),
      pool,
      pubsub,
      migrations,
      close: async () => {
        await pubsub.close();
        await kysely.destroy();
      },
    };
  } catch (err) {
    await pool.end().catch(() => {});
    throw err;
  }
}
