// The replica registry: every `coder server` process on one Postgres registers itself, heartbeats
// what it measured (database round trip, its peers' relays), and learns of the others from the
// table and from pubsub. Several processes on one database is all it takes to be in HA mode.
//
// A replica whose heartbeat is older than three intervals is gone (judged by the database's
// clock). Conditions worth an operator's attention (an unreachable or slow peer, a slow
// database, a missing relay URL) are logged once when they appear and once when they clear,
// and carried in this replica's `error` column for everyone to see.
import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import type { Logger } from "pino";
import type { Pubsub, Replica, Store } from "../database/index.js";

/** Payload: the id of a replica that started, stopped or whose condition changed. */
export const CHANNEL_REPLICAS = "replicas";

export const DEFAULT_UPDATE_INTERVAL_MS = 5_000;
/** The seeds: every node within 10 ms of each other and of Postgres. */
export const DEFAULT_LATENCY_THRESHOLD_MS = 10;
/** Conditions judge the median of this many recent samples, so one slow tick neither warns nor flaps. */
const SAMPLES = 5;
/** Rows of replicas not heard from for this long are deleted. */
const FORGET_AFTER_MS = 24 * 60 * 60_000;

export type ReplicaStore = Pick<Store, "insertReplica" | "updateReplica" | "stopReplica" | "getAliveReplicas" | "deleteReplicasUpdatedBefore">;

export interface ReplicaSyncOptions {
  store: ReplicaStore;
  pubsub: Pubsub;
  logger: Logger;
  /** One round trip to Postgres (e.g. SELECT 1). */
  pingDatabase: () => Promise<unknown>;
  id?: string;
  hostname: string;
  regionId: number;
  /** CODER_DERP_SERVER_RELAY_URL ("" when unset). */
  relayAddress: string;
  version: string;
  /** The embedded relay meshes with the other replicas' (false with custom relays only). */
  meshRequired: boolean;
  updateIntervalMs?: number;
  latencyThresholdMs?: number;
  /** Longest a peer relay's latency check may take. Default: the update interval, at most 3 s. */
  peerTimeoutMs?: number;
}

/** How this replica last saw a peer's relay. */
export interface PeerLatency {
  /** Round trip of GET <relay>/derp/latency-check, when it answered. */
  latencyMs?: number;
  error?: string;
}

interface Condition {
  key: string;
  message: string;
}

export interface ReplicaSync {
  on(event: "peers", listener: (peers: Replica[]) => void): this;
}

/** Emits "peers" (the other alive replicas) whenever their set or relay addresses change. */
export class ReplicaSync extends EventEmitter {
  readonly id: string;
  readonly updateIntervalMs: number;
  readonly latencyThresholdMs: number;
  private readonly peerTimeoutMs: number;
  private selfRow: Replica | undefined;
  private alive: Replica[] = [];
  private peerKey = "";
  private known = new Map<string, string>();
  private latencies = new Map<string, PeerLatency>();
  private peerSamples = new Map<string, number[]>();
  private databaseLatencyMs = 0;
  private databaseSamples: number[] = [];
  private active = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private beats: Promise<void> = Promise.resolve();
  private failing = false;

  constructor(private readonly opts: ReplicaSyncOptions) {
    super();
    this.id = opts.id ?? randomUUID();
    this.updateIntervalMs = opts.updateIntervalMs ?? DEFAULT_UPDATE_INTERVAL_MS;
    this.latencyThresholdMs = opts.latencyThresholdMs ?? DEFAULT_LATENCY_THRESHOLD_MS;
    this.peerTimeoutMs = opts.peerTimeoutMs ?? Math.min(this.updateIntervalMs, 3_000);
  }

  async start(): Promise<void> {
    const o = this.opts;
    const t0 = performance.now();
    await o.pingDatabase();
    this.databaseLatencyMs = performance.now() - t0;
    this.selfRow = await o.store.insertReplica({
      id: this.id,
      hostname: o.hostname,
      regionId: o.regionId,
      relayAddress: o.relayAddress,
      version: o.version,
      databaseLatencyUs: Math.round(this.databaseLatencyMs * 1000),
      error: "",
    });
    this.unsubscribe = await o.pubsub.subscribe(CHANNEL_REPLICAS, {
      onMessage: (id) => {
        if (id !== this.id) this.refresh();
      },
      onDrop: () => this.refresh(),
    });
    await this.loadPeers();
    await o.pubsub.publish(CHANNEL_REPLICAS, this.id).catch((err: unknown) => o.logger.warn({ err }, "announcing this replica failed"));
    o.logger.info({ replica_id: this.id, relay_address: o.relayAddress || undefined, peers: this.peers().length }, "registered replica");
    this.schedule();
  }

  /** For a replica that learns its relay URL only once it listens; written at the next heartbeat. */
  setRelayAddress(url: string): void {
    this.opts.relayAddress = url;
    void this.heartbeat();
  }

  /** This replica as last written. */
  self(): Replica {
    if (!this.selfRow) throw new Error("replica sync not started");
    return this.selfRow;
  }

  /** Every alive replica, this one included, oldest first. */
  all(): Replica[] {
    const others = this.alive.filter((r) => r.id !== this.id);
    return [this.self(), ...others].sort((a, b) => +a.started_at - +b.started_at || a.id.localeCompare(b.id));
  }

  /** Every alive replica as the database has them now (for the API: no wait for the next sync). */
  async fetchAll(): Promise<Replica[]> {
    return this.opts.store.getAliveReplicas(3 * this.updateIntervalMs);
  }

  /** The other alive replicas. */
  peers(): Replica[] {
    return this.alive.filter((r) => r.id !== this.id);
  }

  peerLatency(id: string): PeerLatency | undefined {
    return this.latencies.get(id);
  }

  databaseLatency(): number {
    return this.databaseLatencyMs;
  }

  /** What is wrong now, as logged (one message per condition; latency conditions have "latency" in their key). */
  conditions(): Array<{ key: string; message: string }> {
    return [...this.active].map(([key, message]) => ({ key, message }));
  }

  /** A sync soon (another replica announced a change); coalesced with one already running. */
  refresh(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.loadPeers()
      .catch((err: unknown) => this.opts.logger.warn({ err }, "reading the replica registry failed"))
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.refresh();
        }
      });
  }

  /** Marks this replica stopped so the others drop it at once. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    this.unsubscribe?.();
    await Promise.all([this.running, this.beats]);
    try {
      await this.opts.store.stopReplica(this.id);
      await this.opts.pubsub.publish(CHANNEL_REPLICAS, this.id);
    } catch (err) {
      this.opts.logger.warn({ err }, "marking this replica stopped failed");
    }
  }

  // Jittered, so replicas started together do not heartbeat in lockstep.
  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.heartbeat().finally(() => this.schedule()), this.updateIntervalMs * (0.8 + Math.random() * 0.4));
    this.timer.unref();
  }

  /** One heartbeat after any in flight (never two at once). */
  private heartbeat(): Promise<void> {
    this.beats = this.beats.then(() => (this.stopped ? undefined : this.tick()));
    return this.beats;
  }

  private async tick(): Promise<void> {
    const o = this.opts;
    try {
      const t0 = performance.now();
      await o.pingDatabase();
      this.databaseLatencyMs = performance.now() - t0;
      push(this.databaseSamples, this.databaseLatencyMs);
      await this.loadPeers();
      await this.measurePeers();
      const before = `${this.selfRow?.relay_address} ${this.selfRow?.error}`;
      const error = this.evaluate();
      const row = {
        id: this.id,
        relayAddress: o.relayAddress,
        databaseLatencyUs: Math.round(this.databaseLatencyMs * 1000),
        error,
      };
      // The row is gone when others forgot us (a long partition): register again.
      this.selfRow = (await o.store.updateReplica(row)) ?? (await o.store.insertReplica({ ...row, hostname: o.hostname, regionId: o.regionId, version: o.version }));
      if (`${this.selfRow.relay_address} ${this.selfRow.error}` !== before) await o.pubsub.publish(CHANNEL_REPLICAS, this.id);
      await o.store.deleteReplicasUpdatedBefore(FORGET_AFTER_MS);
      if (this.failing) o.logger.info("replica heartbeat works again");
      this.failing = false;
    } catch (err) {
      // Once per outage, not once per tick.
      if (!this.failing) o.logger.warn({ err }, "replica heartbeat failed (retrying every interval)");
      this.failing = true;
    }
  }

  private async loadPeers(): Promise<void> {
    this.alive = await this.opts.store.getAliveReplicas(3 * this.updateIntervalMs);
    const peers = this.peers();
    for (const id of this.latencies.keys()) {
      if (peers.some((p) => p.id === id)) continue;
      this.latencies.delete(id);
      this.peerSamples.delete(id);
    }
    const key = peers.map((p) => `${p.id}=${p.relay_address}`).join(",");
    if (key === this.peerKey) return;
    const log = this.opts.logger;
    for (const p of peers) if (!this.known.has(p.id)) log.info({ replica_id: p.id, hostname: p.hostname, relay_address: p.relay_address || undefined }, "replica joined");
    for (const [id, hostname] of this.known) if (!peers.some((p) => p.id === id)) log.info({ replica_id: id, hostname }, "replica left");
    this.known = new Map(peers.map((p) => [p.id, p.hostname]));
    this.peerKey = key;
    this.emit("peers", peers);
  }

  /** GET <relay>/derp/latency-check of every peer, in parallel, each bounded by the peer timeout. */
  private async measurePeers(): Promise<void> {
    await Promise.all(
      this.peers().map(async (p) => {
        if (!p.relay_address) {
          this.latencies.delete(p.id);
          return;
        }
        const t0 = performance.now();
        try {
          const res = await fetch(new URL("/derp/latency-check", p.relay_address), { signal: AbortSignal.timeout(this.peerTimeoutMs) });
          await res.arrayBuffer();
          if (!res.ok) throw new Error(`HTTP ${res.status}`);
          const ms = performance.now() - t0;
          this.latencies.set(p.id, { latencyMs: ms });
          push(this.peerSamples.get(p.id) ?? this.peerSamples.set(p.id, []).get(p.id)!, ms);
        } catch (err) {
          this.latencies.set(p.id, { error: describeFetchError(err, this.peerTimeoutMs) });
        }
      }),
    );
  }

  /** Updates the active conditions, logging those that appear and clear; returns the error text. */
  private evaluate(): string {
    const o = this.opts;
    const limit = this.latencyThresholdMs;
    const now: Condition[] = [];
    const db = median(this.databaseSamples);
    if (db > limit) now.push({ key: "db-latency", message: `the database round trip is ${fmt(db)} ms, above the ${limit} ms threshold` });
    const peers = this.peers();
    if (o.meshRequired && peers.length && !o.relayAddress) {
      now.push({
        key: "no-relay-url",
        message: `CODER_DERP_SERVER_RELAY_URL is not set on this replica: the other replicas' relays cannot reach it, so peers connected to different replicas cannot talk`,
      });
    }
    for (const p of peers) {
      const name = `replica ${p.hostname} (${p.id})`;
      if (o.meshRequired && !p.relay_address) {
        now.push({ key: `peer-no-relay:${p.id}`, message: `${name} has no CODER_DERP_SERVER_RELAY_URL: this replica's relay cannot reach it` });
        continue;
      }
      const l = this.latencies.get(p.id);
      const typical = median(this.peerSamples.get(p.id) ?? []);
      if (l?.error) now.push({ key: `peer-unreachable:${p.id}`, message: `cannot reach the relay of ${name} at ${p.relay_address}: ${l.error}` });
      else if (typical > limit) now.push({ key: `peer-latency:${p.id}`, message: `the relay of ${name} is ${fmt(typical)} ms away, above the ${limit} ms threshold` });
    }
    const next = new Map(now.map((c) => [c.key, c.message]));
    for (const [key, message] of next) if (!this.active.has(key)) o.logger.warn({ condition: key }, message);
    for (const key of this.active.keys()) if (!next.has(key)) o.logger.info({ condition: key }, "replica condition cleared: %s", key);
    this.active = next;
    return [...next.values()].join("; ");
  }
}

function push(samples: number[], ms: number): void {
  samples.push(ms);
  if (samples.length > SAMPLES) samples.shift();
}

function median(xs: number[]): number {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const fmt = (ms: number) => (Math.round(ms * 10) / 10).toString();

function describeFetchError(err: unknown, timeoutMs: number): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e?.name === "TimeoutError" || e?.name === "AbortError") return `no answer within ${timeoutMs} ms`;
  const cause = e?.cause?.code ?? e?.cause?.message;
  return cause ? `${e.message} (${cause})` : String(e?.message ?? err);
}
