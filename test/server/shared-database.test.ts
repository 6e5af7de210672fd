// Several servers on one external Postgres: they start together, migrate once, and refuse a
// database migrated by a newer binary.
import pg from "pg";
import { describe, expect, it } from "vitest";
import { loadMigrations } from "../../src/database/index.js";
import { runCli, startServerProcess, tempConfigDir } from "../helpers/binary.js";
import { createTestDatabase } from "../helpers/database.js";

describe("servers sharing one Postgres", () => {
  it("two servers started at the same moment on a fresh database both come up, migrations run once", async () => {
    const url = await createTestDatabase({ empty: true });
    const env = { CODER_PG_CONNECTION_URL: url };
    const [a, b] = await Promise.all([
      startServerProcess(["--config-dir", tempConfigDir()], env),
      startServerProcess(["--config-dir", tempConfigDir()], env),
    ]);
    const migratedBy = [a, b].filter((s) => s.output().includes("database migrated"));
    expect(migratedBy).toHaveLength(1);
    for (const s of [a, b]) expect((await fetch(`${s.url}/healthz`)).status).toBe(200);

    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const { rows } = await client.query<{ version: number }>("SELECT version FROM schema_migrations ORDER BY version");
    expect(rows.map((r) => r.version)).toEqual(loadMigrations().map((m) => m.version));
    await client.end();

    // A user created through one is visible through the other.
    const cli = { CODER_CONFIG_DIR: tempConfigDir() };
    await runCli(["login", a.url, "--first-user-username", "admin", "--first-user-email", "a@example.com", "--first-user-password", "correct-horse-1"], cli);
    const who = await runCli(["whoami", "--url", b.url], cli);
    expect(who.stdout).toContain("authenticated as admin");
    expect(await Promise.all([a.stop(), b.stop()])).toEqual([0, 0]);
  });

  it("refuses a database whose schema is newer than the binary", async () => {
    const url = await createTestDatabase();
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query("INSERT INTO schema_migrations (version, name) VALUES (999999, '999999_from_the_future')");
    await client.end();
    const r = await runCli(["--config-dir", tempConfigDir(), "server", "--http-address", "127.0.0.1:0"], { CODER_PG_CONNECTION_URL: url });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("error: database: the database schema is at version 999999");
  });
});
