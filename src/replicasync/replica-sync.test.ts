import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { sql } from "kysely";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { createTestDatabase } from "../../test/helpers/database.js";
import { closedPort } from "../../test/helpers/net.js";
import { openDatabase, type Database, type Replica } from "../database/index.js";
import { ReplicaSync, type ReplicaSyncOptions } from "./replica-sync.js";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** A logger whose lines the test can read. */
function capturedLogger() {
  const lines: Array<{ level: number; msg: string; condition?: string }> = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { logger: pino({ level: "debug" }, stream), lines };
}

/** What a peer's relay answers: GET /derp/latency-check, optionally slowed down. */
async function relayStub(delayMs = 0): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    setTimeout(() => res.writeHead(req.url === "/derp/latency-check" ? 200 : 404).end(), delayMs);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  cleanups.push(() => new Promise((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

async function database(url: string): Promise<Database> {
  const db = await openDatabase(url);
  cleanups.push(() => db.close());
  return db;
}

async function replica(db: Database, over: Partial<ReplicaSyncOptions> = {}) {
  const log = capturedLogger();
  const sync = new ReplicaSync({
    store: db.store,
    pubsub: db.pubsub,
    logger: log.logger,
    pingDatabase: () => sql`SELECT 1`.execute(db.store.kysely),
    hostname: "host-a",
    regionId: 999,
    relayAddress: "",
    version: "v0-test",
    meshRequired: true,
    updateIntervalMs: 200,
    latencyThresholdMs: 1000,
    ...over,
  });
  await sync.start();
  cleanups.push(() => sync.stop());
  return { sync, lines: log.lines };
}

/** Resolves with the first "peers" event that satisfies ok (or at once if the current set does). */
function peersWhen(sync: ReplicaSync, ok: (peers: Replica[]) => boolean): Promise<Replica[]> {
  if (ok(sync.peers())) return Promise.resolve(sync.peers());
  return new Promise((res) => {
    const on = (peers: Replica[]) => {
      if (!ok(peers)) return;
      sync.off("peers", on);
      res(peers);
    };
    sync.on("peers", on);
  });
}

/** Waits for `n` more heartbeats of sync (each writes updated_at). */
async function heartbeats(sync: ReplicaSync, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const before = sync.self().updated_at.getTime();
    while (sync.self().updated_at.getTime() === before) await new Promise((r) => setTimeout(r, 20));
  }
}

describe("ReplicaSync", () => {
  it("replicas on one database register, learn of each other at once, measure each other's relays, and a stopped one is gone at once", async () => {
    const url = await createTestDatabase();
    const [dbA, dbB] = [await database(url), await database(url)];
    const relayA = await relayStub();
    const relayB = await relayStub();
    const a = await replica(dbA, { hostname: "host-a", relayAddress: relayA.url, updateIntervalMs: 60_000 });
    const b = await replica(dbB, { hostname: "host-b", relayAddress: relayB.url, updateIntervalMs: 60_000 });

    // B saw A while starting; A learns of B through pubsub, long before its next heartbeat.
    expect(b.sync.peers().map((p) => p.hostname)).toEqual(["host-a"]);
    const peersOfA = await peersWhen(a.sync, (p) => p.length === 1);
    expect(peersOfA[0]).toMatchObject({ id: b.sync.id, hostname: "host-b", relay_address: relayB.url, version: "v0-test", region_id: 999 });
    expect(a.sync.all().map((r) => r.hostname)).toEqual(["host-a", "host-b"]);

    await b.sync.stop();
    expect(await peersWhen(a.sync, (p) => p.length === 0)).toEqual([]);
    expect(a.lines.some((l) => l.msg === "replica left")).toBe(true);
  });

  it("a replica that stops heartbeating (killed) is gone after three intervals", async () => {
    const url = await createTestDatabase();
    const db = await database(url);
    const relay = await relayStub();
    const a = await replica(db, { relayAddress: relay.url });
    // A replica that registered and then died without a word: its row is never updated again.
    await db.store.insertReplica({ id: crypto.randomUUID(), hostname: "dead", regionId: 999, relayAddress: relay.url, version: "v0", databaseLatencyUs: 1, error: "" });
    a.sync.refresh();
    await peersWhen(a.sync, (p) => p.some((r) => r.hostname === "dead"));
    const t0 = Date.now();
    await peersWhen(a.sync, (p) => p.length === 0);
    // Three 200 ms intervals, with jitter and one tick of slack.
    expect(Date.now() - t0).toBeLessThan(3 * 200 + 2 * 240 + 500);
  });

  it("an unreachable or slow peer relay becomes a condition: logged once, carried in the replica's error, cleared when it heals", async () => {
    const url = await createTestDatabase();
    const [dbA, dbB] = [await database(url), await database(url)];
    const port = await closedPort();
    const a = await replica(dbA, { hostname: "host-a", relayAddress: (await relayStub()).url, latencyThresholdMs: 50 });
    const b = await replica(dbB, { hostname: "host-b", relayAddress: `http://127.0.0.1:${port}` });
    await peersWhen(a.sync, (p) => p.length === 1);
    await heartbeats(a.sync, 4);
    const key = `peer-unreachable:${b.sync.id}`;
    expect(a.sync.conditions().map((c) => c.key)).toEqual([key]);
    expect(a.sync.self().error).toContain(`cannot reach the relay of replica host-b (${b.sync.id}) at http://127.0.0.1:${port}`);
    expect(a.sync.peerLatency(b.sync.id)?.error).toBeTruthy();
    // Four heartbeats, one warning.
    expect(a.lines.filter((l) => l.condition === key && l.level === 40)).toHaveLength(1);
    // Others see the error on A's row.
    await heartbeats(b.sync, 1);
    expect(b.sync.peers()[0]!.error).toContain("cannot reach the relay of replica host-b");

    // B's relay now answers, but slowly: the condition becomes a latency warning.
    const slow = await relayStub(120);
    b.sync.setRelayAddress(slow.url);
    await peersWhen(a.sync, (p) => p[0]?.relay_address === slow.url);
    await heartbeats(a.sync, 3);
    const latencyKey = `peer-latency:${b.sync.id}`;
    expect(a.sync.conditions().map((c) => c.key)).toEqual([latencyKey]);
    expect(a.sync.conditions()[0]!.message).toMatch(/the relay of replica host-b .* is [\d.]+ ms away, above the 50 ms threshold/);
    expect(a.sync.peerLatency(b.sync.id)!.latencyMs).toBeGreaterThanOrEqual(120);
    expect(a.lines.filter((l) => l.condition === key && l.level === 30)).toHaveLength(1); // cleared, once
    expect(a.lines.filter((l) => l.condition === latencyKey && l.level === 40)).toHaveLength(1);

    const fast = await relayStub();
    b.sync.setRelayAddress(fast.url);
    await peersWhen(a.sync, (p) => p[0]?.relay_address === fast.url);
    // Conditions judge the median of the last five samples: four fast ones outvote the slow.
    await heartbeats(a.sync, 4);
    expect(a.sync.conditions()).toEqual([]);
    expect(a.sync.self().error).toBe("");
    expect(a.sync.peerLatency(b.sync.id)!.latencyMs).toBeLessThan(50);
  });

  it("warns when the database is further than the threshold, and when the embedded relay has peers but no relay URL", async () => {
    const url = await createTestDatabase();
    const [dbA, dbB] = [await database(url), await database(url)];
    const a = await replica(dbA, { relayAddress: "", latencyThresholdMs: 0.001 });
    await replica(dbB, { hostname: "host-b", relayAddress: (await relayStub()).url });
    await peersWhen(a.sync, (p) => p.length === 1);
    await heartbeats(a.sync, 2);
    const keys = a.sync.conditions().map((c) => c.key);
    expect(keys).toContain("db-latency");
    expect(keys).toContain("no-relay-url");
    expect(a.sync.self().error).toContain("CODER_DERP_SERVER_RELAY_URL is not set on this replica");
    expect(a.sync.self().database_latency).toBeGreaterThan(0);
  });

  it("with custom relays only (no mesh), missing relay URLs are fine", async () => {
    const url = await createTestDatabase();
    const [dbA, dbB] = [await database(url), await database(url)];
    const a = await replica(dbA, { meshRequired: false });
    await replica(dbB, { meshRequired: false, hostname: "host-b" });
    await peersWhen(a.sync, (p) => p.length === 1);
    await heartbeats(a.sync, 2);
    expect(a.sync.conditions()).toEqual([]);
  });
});
