import { afterEach, describe, expect, it } from "vitest";
import type pg from "pg";
import { createTestDatabase } from "../../test/helpers/database.js";
import { createPool } from "./connect.js";

let pool: pg.Pool | undefined;
afterEach(async () => {
  await pool?.end();
  pool = undefined;
});

describe("createPool", () => {
  // What a Postgres restart does to a replica in the middle of a transaction. Without a listener
  // on the checked-out client, pg throws its "error" event and the process dies.
  it("survives Postgres ending the connection of a checked-out client between two queries", async () => {
    pool = createPool({ connectionString: await createTestDatabase({ empty: true }), max: 2 });
    const held = await pool.connect();
    await held.query("BEGIN");
    const pid = (await held.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
    const ended = new Promise((resolve) => held.once("end", resolve));
    await pool.query("SELECT pg_terminate_backend($1)", [pid]);
    await ended;
    await expect(held.query("SELECT 1")).rejects.toThrow();
    held.release(true);
    expect((await pool.query<{ one: number }>("SELECT 1 AS one")).rows[0]!.one).toBe(1);
  });
});
