import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { createTestDatabase } from "../../test/helpers/database.js";
import { loadMigrations, migrate, SchemaTooNewError } from "./migrate.js";

describe("migrate", () => {
  it("applies each migration once when many processes race", async () => {
    const url = await createTestDatabase({ empty: true });
    const pools = Array.from({ length: 6 }, () => new pg.Pool({ connectionString: url, max: 2 }));
    try {
      const results = await Promise.all(pools.map((p) => migrate(p)));
      const applied = results.flatMap((r) => r.applied);
      expect(applied).toEqual(loadMigrations().map((m) => m.name));
      const { rows } = await pools[0]!.query("SELECT count(*)::int AS n FROM schema_migrations");
      expect(rows[0].n).toBe(loadMigrations().length);
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
  });

  it("refuses a database migrated by a newer binary", async () => {
    const pool = new pg.Pool({ connectionString: await createTestDatabase() });
    try {
      await pool.query("INSERT INTO schema_migrations (version, name) VALUES (424242, 'x')");
      await expect(migrate(pool)).rejects.toBeInstanceOf(SchemaTooNewError);
    } finally {
      await pool.end();
    }
  });

  it("rolls back a failing migration and leaves earlier ones applied", async () => {
    const dir = mkdtempSync(join(tmpdir(), "migrations-"));
    writeFileSync(join(dir, "000001_ok.up.sql"), "CREATE TABLE a (id int);");
    writeFileSync(join(dir, "000002_bad.up.sql"), "CREATE TABLE b (id int); SELECT * FROM missing_table;");
    const pool = new pg.Pool({ connectionString: await createTestDatabase({ empty: true }) });
    try {
      await expect(migrate(pool, loadMigrations(dir))).rejects.toThrow(/000002_bad failed/);
      const { rows } = await pool.query("SELECT version FROM schema_migrations");
      expect(rows.map((r) => r.version)).toEqual([1]);
      const b = await pool.query("SELECT to_regclass('b') AS t");
      expect(b.rows[0].t).toBeNull();
    } finally {
      await pool.end();
    }
  });
});
