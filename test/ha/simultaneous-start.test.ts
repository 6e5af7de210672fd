// Three replicas started at the same moment on an empty database: one set of migrations, one
// mesh key, and all three healthy and meshed.
import pg from "pg";
import { describe, expect, it } from "vitest";
import { Client, type HealthReport } from "../../src/codersdk/index.js";
import { loadMigrations } from "../../src/database/index.js";
import { startCluster } from "../helpers/cluster.js";
import { DEFAULT_PASSWORD } from "../helpers/coderd.js";

describe("replicas starting together", () => {
  it("on an empty database: migrations run once, one mesh key, all three healthy", { timeout: 120_000 }, async () => {
    const cluster = await startCluster(3, { empty: true });
    const migratedBy = cluster.replicas.filter((r) => r.process.output().includes("database migrated"));
    expect(migratedBy).toHaveLength(1);

    const db = new pg.Client({ connectionString: cluster.databaseUrl });
    await db.connect();
    const versions = await db.query<{ version: number }>("SELECT version FROM schema_migrations ORDER BY version");
    expect(versions.rows.map((r) => r.version)).toEqual(loadMigrations().map((m) => m.version));
    const keys = await db.query("SELECT value FROM site_configs WHERE key = 'derp_mesh_key'");
    expect(keys.rows).toHaveLength(1);
    await db.end();

    const lb = new Client(cluster.url);
    await lb.createFirstUser({ email: "owner@example.com", username: "owner", password: DEFAULT_PASSWORD });
    lb.sessionToken = (await lb.loginWithPassword("owner@example.com", DEFAULT_PASSWORD)).session_token;

    // Each replica, asked directly, sees all three and finds nothing wrong with its peers.
    for (const r of cluster.replicas) {
      const direct = Object.assign(new Client(r.url), { sessionToken: lb.sessionToken });
      let report: HealthReport;
      for (;;) {
        report = await direct.debugHealth({ force: true });
        const peers = report.sections.replicas.peers;
        if (peers.length === 2 && peers.every((p) => p.latency_ms !== undefined && p.mesh?.connected)) break;
        await new Promise((res) => setTimeout(res, 250));
      }
      const section = report.sections.replicas;
      expect(section.self.relay_address).toBe(r.url);
      expect(section.warnings.filter((w) => w.code === "EREP01")).toEqual([]);
      expect(section.replicas_with_errors).toEqual([]);
      const replicas = await direct.replicas();
      expect(replicas.map((x) => x.relay_address).sort()).toEqual(cluster.replicas.map((x) => x.url).sort());
    }
    // The mesh links (which prove the one key: a wrong one is refused) are up between every pair.

    // A clean shutdown marks the replica stopped, so the others drop it without waiting for it to go silent.
    const leaving = cluster.replicas[2]!;
    expect(await leaving.process.stop("SIGTERM")).toBe(0);
    const after = new pg.Client({ connectionString: cluster.databaseUrl });
    await after.connect();
    const row = await after.query<{ stopped: boolean }>("SELECT stopped_at IS NOT NULL AS stopped FROM replicas WHERE relay_address = $1", [leaving.url]);
    await after.end();
    expect(row.rows).toEqual([{ stopped: true }]);
    const first = Object.assign(new Client(cluster.replicas[0]!.url), { sessionToken: lb.sessionToken });
    expect((await first.replicas()).map((x) => x.relay_address)).not.toContain(leaving.url);
  });
});
