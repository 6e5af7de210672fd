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
  /** The pool's connections now (for metrics; read at scrape time, costs nothing). */
  poolStats(): PoolStats;
  close(): Promise<void>;
}

/** This process's connection pool (the pubsub's LISTEN connection is separate and not counted). */
export interface PoolStats {
  /** Connections open now, in use or idle. */
  open: number;
  idle: number;
  /** Queries waiting for a connection because all `max` are in use. */
  waiting: number;
  max: number;
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
      poolStats: () => ({ open: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount, max: pool.options.max ?? 10 }),
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
