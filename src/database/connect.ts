// Opening a pool to Postgres and turning connection failures into messages an operator can act on.
import pg from "pg";
import { Kysely, PostgresDialect } from "kysely";
import type { DB } from "./schema.js";

// int8 (counts, lifetimes in seconds) fits a JS number for every value we store.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number.parseInt(v, 10));

export interface PoolOptions {
  connectionString: string;
  max?: number;
  applicationName?: string;
}

export class DatabaseConnectError extends Error {}

/** The URL with its password masked, safe to print. */
export function redactConnectionString(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "xxxxx";
    return u.toString();
  } catch {
    return "<unparseable URL>";
  }
}

export function validateConnectionString(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `"${redactConnectionString(url)}" is not a valid URL (expected postgres://user:password@host:port/database)`;
  }
  if (u.protocol !== "postgres:" && u.protocol !== "postgresql:") {
    return `scheme "${u.protocol.replace(/:$/, "")}" is not supported (expected postgres:// or postgresql://)`;
  }
  return undefined;
}

export function createPool(opts: PoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: opts.connectionString,
    max: opts.max ?? 20,
    application_name: opts.applicationName ?? "coderd",
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
  });
  // A client losing its connection (Postgres restarting, a failover, an idle timeout on the way)
  // must not crash the process. Idle clients report it to the pool, which replaces them; a client
  // checked out by a transaction reports it on itself, between two of its queries, and its next
  // query fails, so the request fails and the pool discards the client when it comes back.
  pool.on("error", () => {});
  pool.on("connect", (client) => client.on("error", () => {}));
  return pool;
}

export function createKysely(pool: pg.Pool): Kysely<DB> {
  return new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
}

/** Checks that Postgres answers, with a one-line reason when it does not. */
export async function ping(pool: pg.Pool): Promise<void> {
  try {
    await pool.query("SELECT 1");
  } catch (err) {
    throw new DatabaseConnectError(describePgError(err));
  }
}

export function describePgError(err: unknown): string {
  const e = err as { code?: string; message?: string; address?: string; port?: number };
  switch (e.code) {
    case "ECONNREFUSED":
      return `connection refused${e.address ? ` at ${e.address}:${e.port}` : ""} (is Postgres running?)`;
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return `host not found (${e.message ?? e.code})`;
    case "28P01":
    case "28000":
      return "authentication failed (check the user and password)";
    case "3D000":
      return e.message ?? "database does not exist";
    default:
      return e.message ?? String(err);
  }
}
