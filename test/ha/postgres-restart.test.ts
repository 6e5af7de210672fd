// Postgres restarts under load: the replicas reconnect by themselves, pubsub resumes, and every
// write that was answered with a 2xx is in the database afterwards.
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { describe, expect, it, onTestFinished } from "vitest";
import { Client, isCoderSDKError } from "../../src/codersdk/index.js";
import { startEmbedded, type EmbeddedInstance } from "../../src/database/index.js";
import { startCluster, type ClusterReplica } from "../helpers/cluster.js";
import { DEFAULT_PASSWORD } from "../helpers/coderd.js";

const withClient = (base: Client, url: string) => Object.assign(new Client(url), { sessionToken: base.sessionToken });

/** Resolves once fn stops throwing (polled: the outage has no event to wait on). */
async function eventually<T>(fn: () => Promise<T>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

describe("Postgres restart under load", () => {
  it("replicas reconnect, pubsub resumes, and no 2xx write is lost", { timeout: 180_000 }, async () => {
    const dir = mkdtempSync(join(process.env.CODER_TEST_RUN_DIR ?? tmpdir(), "coder-pg-"));
    chmodSync(dir, 0o755);
    let postgres: EmbeddedInstance = await startEmbedded({ dir });
    onTestFinished(async () => {
      await postgres.stop().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    });
    const cluster = await startCluster(2, { databaseUrl: postgres.url });
    const [a, b] = cluster.replicas as [ClusterReplica, ClusterReplica];

    const lb = new Client(cluster.url);
    await lb.createFirstUser({ email: "owner@example.com", username: "owner", password: DEFAULT_PASSWORD });
    lb.sessionToken = (await lb.loginWithPassword("owner@example.com", DEFAULT_PASSWORD)).session_token;

    // Load through the load balancer: users created one after another by four workers.
    const acknowledged: string[] = [];
    const failures: number[] = [];
    let restarted = false;
    let afterRestart = 0;
    let stop = false;
    let n = 0;
    const worker = async () => {
      while (!stop) {
        const name = `load-${n++}`;
        try {
          const u = await lb.createUser({ email: `${name}@example.com`, username: name, password: DEFAULT_PASSWORD });
          acknowledged.push(u.id);
          if (restarted) afterRestart++;
        } catch (err) {
          if (!isCoderSDKError(err)) throw err;
          failures.push(err.status);
          // Clients retry after an outage; not in a hot loop.
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    };
    const load = Promise.all([worker(), worker(), worker(), worker()]);
    await eventually(async () => expect(acknowledged.length).toBeGreaterThan(20), 30_000);

    const port = postgres.port;
    await postgres.stop();
    postgres = await startEmbedded({ dir });
    expect(postgres.port).toBe(port);
    restarted = true;
    await eventually(async () => expect(afterRestart).toBeGreaterThan(20), 60_000);
    stop = true;
    await load;
    // The outage was real, and requests during it failed as server errors, never as a 2xx that did not commit.
    expect(failures.length).toBeGreaterThan(0);
    for (const s of failures) expect(s).toBeGreaterThanOrEqual(500);

    // Every acknowledged write is there.
    const db = new pg.Client({ connectionString: postgres.url });
    await db.connect();
    const { rows } = await db.query<{ id: string }>("SELECT id FROM users WHERE id = ANY($1::uuid[])", [acknowledged]);
    await db.end();
    expect(rows.length).toBe(acknowledged.length);

    // Both replicas serve again, directly (none of them gave up and exited).
    for (const r of [a, b]) {
      await eventually(async () => {
        if (r.process.proc.exitCode !== null) throw new Error(`${r.name} exited (${r.process.proc.exitCode}):\n${r.process.output().slice(-3000)}`);
        return withClient(lb, r.url).user("me");
      }, 30_000);
    }

    // Pubsub resumed on both: a token B has cached is refused by B right after A deletes it
    // (B's cache would otherwise keep it for 10 s).
    const token = await withClient(lb, a.url).createToken("me", { token_name: "after-restart", lifetime_seconds: 3600 });
    const onB = Object.assign(new Client(b.url), { sessionToken: token.key });
    await onB.user("me");
    const key = (await lb.tokenByName("me", "after-restart")).id;
    await withClient(lb, a.url).deleteAPIKey("me", key);
    const t0 = Date.now();
    const refused = await eventually(async () => {
      try {
        await onB.user("me");
      } catch (err) {
        if (isCoderSDKError(err) && err.status === 401) return Date.now() - t0;
      }
      throw new Error("B still accepts the deleted token");
    }, 10_000);
    expect(refused).toBeLessThan(3_000);

    // And the replicas still see each other.
    const replicas = await eventually(async () => {
      const rs = await lb.replicas();
      if (rs.length !== 2) throw new Error(`${rs.length} replicas`);
      return rs;
    }, 15_000);
    expect(new Set(replicas.map((r) => r.relay_address))).toEqual(new Set([a.url, b.url]));
  });
});
