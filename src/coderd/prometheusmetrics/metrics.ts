// coderd's Prometheus metrics: one registry per coderd instance (several run in one test
// process), named as operators of Coder know them. Hot-path instruments (API requests, database
// queries, pubsub messages) cache their labelled children, so observing allocates nothing new
// per call; everything that lives elsewhere (agents, relay, pubsub state) is read at scrape time.
import type { IncomingMessage } from "node:http";
import { performance } from "node:perf_hooks";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { sql } from "kysely";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { WebSocket } from "ws";
import type { Pubsub, Store } from "../../database/index.js";
import type { AcquiredJob, CompletedJob, FailedJob } from "../../provisionerd/index.js";
import type { ReplicaSync } from "../../replicasync/index.js";
import type { RelayMap, RelayMesh, RelayServer } from "../../tailnet/index.js";
import type { ProvisionerdServer } from "../provisionerdserver/server.js";
import { collectAgents, type AgentLabel } from "./agents.js";
import { DEFAULT_LATENCY_TIMEOUT_MS, PubsubLatencyProbe, type LatencyMeasurement } from "./pubsub-latency.js";

export interface PrometheusOptions {
  /** CODER_PROMETHEUS_COLLECT_DB_METRICS: time every store query. */
  collectDbMetrics: boolean;
  /** CODER_PROMETHEUS_COLLECT_AGENT_STATS: export coderd_agentstats_*. */
  collectAgentStats: boolean;
  /** CODER_PROMETHEUS_AGGREGATE_AGENT_STATS_BY: the labels agent metrics keep. */
  aggregateAgentStatsBy: readonly AgentLabel[];
  /** Process metrics (CPU, memory, fds, event loop); default true. */
  collectProcessMetrics?: boolean;
  /** How long a scrape waits for its pubsub latency probe before counting an error (default 5 s). */
  pubsubLatencyTimeoutMs?: number;
}

/** This process's Postgres connection pool, as Database.poolStats() reports it. */
export interface DatabasePoolStats {
  open: number;
  idle: number;
  waiting: number;
  max: number;
}

/** API latencies: 1 ms to 30 s, like Coder's. */
const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5, 10, 30];
const DB_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5, 10];
const WS_BUCKETS = [0.001, 1, 60, 3600, 4 * 3600, 24 * 3600];
const JOB_BUCKETS = [1, 10, 30, 60, 300, 600, 1800, 3600];
/** Time jobs wait for a daemon: from "picked at once" to "nobody took it for an hour". */
const QUEUE_BUCKETS = [0.1, 0.5, 1, 5, 10, 30, 60, 300, 600, 1800, 3600];
/** NOTIFY round trips: well under a millisecond on a local database, to the probe's timeout. */
const PUBSUB_LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** Route label of requests no route matched (404s of unknown paths): never the raw path. */
export const UNMATCHED_ROUTE = "";

export class CoderdMetrics {
  readonly registry = new Registry();
  private readonly requestLatency: Histogram<"method" | "route">;
  private readonly requestsProcessed: Counter<"code" | "method" | "route">;
  private readonly concurrentRequests: Gauge;
  private readonly concurrentWebsockets: Gauge;
  private readonly websocketDurations: Histogram<"route">;
  private readonly latencyChildren = new Map<string, { observe(v: number): void }>();
  private readonly processedChildren = new Map<string, { inc(): void }>();
  private inflight = 0;
  private websockets = 0;
  private readonly wsRoutes = new WeakMap<IncomingMessage, string>();
  private readonly cleanups: Array<() => void> = [];

  constructor(readonly opts: PrometheusOptions) {
    const registers = [this.registry];
    this.requestLatency = new Histogram({
      name: "coderd_api_request_latencies_seconds",
      help: "Latency distribution of requests in seconds, by method and route pattern.",
      labelNames: ["method", "route"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.requestsProcessed = new Counter({
      name: "coderd_api_requests_processed_total",
      help: "The total number of processed API requests, by status code, method and route pattern.",
      labelNames: ["code", "method", "route"],
      registers,
    });
    const self = this;
    this.concurrentRequests = new Gauge({
      name: "coderd_api_concurrent_requests",
      help: "The number of concurrent API requests (WebSockets excluded).",
      registers,
      collect() {
        this.set(self.inflight);
      },
    });
    this.concurrentWebsockets = new Gauge({
      name: "coderd_api_concurrent_websockets",
      help: "The total number of concurrent API WebSockets.",
      registers,
      collect() {
        this.set(self.websockets);
      },
    });
    this.websocketDurations = new Histogram({
      name: "coderd_api_websocket_durations_seconds",
      help: "WebSocket duration distribution in seconds, by route pattern.",
      labelNames: ["route"],
      buckets: WS_BUCKETS,
      registers,
    });
    if (opts.collectProcessMetrics !== false) this.processMetrics();
  }

  /**
   * prom-client's process and Node.js metrics, without its three gauges named *_total, which
   * `promtool check metrics` rejects (only counters end in _total); their per-type versions
   * (nodejs_active_handles{type} and the like) carry the same numbers.
   */
  private processMetrics(): void {
    collectDefaultMetrics({ register: this.registry });
    for (const name of ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"]) this.registry.removeSingleMetric(name);
  }

  // ---------------------------------------------------------------- API

  /** Installs the request hooks; call before routes are registered. */
  instrumentApi(app: FastifyInstance): void {
    const onClose = () => {
      this.inflight--;
    };
    app.addHook("onRequest", (req: FastifyRequest, reply: FastifyReply, done: () => void) => {
      if (req.raw.headers.upgrade === undefined) {
        this.inflight++;
        reply.raw.on("close", onClose);
      } else {
        this.wsRoutes.set(req.raw, req.routeOptions.url ?? UNMATCHED_ROUTE);
      }
      done();
    });
    app.addHook("onResponse", (req: FastifyRequest, reply: FastifyReply, done: () => void) => {
      this.observeRequest(req.method, req.routeOptions.url ?? UNMATCHED_ROUTE, reply.statusCode, reply.elapsedTime / 1000);
      done();
    });
  }

  /** Counts the WebSockets @fastify/websocket accepts; call once its plugin is registered. */
  instrumentWebsockets(app: FastifyInstance): void {
    const wss = (app as FastifyInstance & { websocketServer?: import("ws").WebSocketServer }).websocketServer;
    if (!wss) return;
    const onConnection = (socket: WebSocket, req: IncomingMessage) => {
      const route = this.wsRoutes.get(req) ?? UNMATCHED_ROUTE;
      const start = performance.now();
      this.websockets++;
      socket.once("close", () => {
        this.websockets--;
        this.websocketDurations.labels(route).observe((performance.now() - start) / 1000);
      });
    };
    wss.on("connection", onConnection);
    this.cleanups.push(() => wss.off("connection", onConnection));
  }

  observeRequest(method: string, route: string, code: number, seconds: number): void {
    const key = method + " " + route;
    let lat = this.latencyChildren.get(key);
    if (!lat) {
      lat = this.requestLatency.labels(method, route);
      this.latencyChildren.set(key, lat);
    }
    lat.observe(seconds);
    const ckey = code + " " + key;
    let cnt = this.processedChildren.get(ckey);
    if (!cnt) {
      cnt = this.requestsProcessed.labels(String(code), method, route);
      this.processedChildren.set(ckey, cnt);
    }
    cnt.inc();
  }

  // ---------------------------------------------------------------- database

  /**
   * A store whose every query is timed as coderd_db_query_latencies_seconds{query}, and whose
   * transactions are timed as coderd_db_tx_duration_seconds. Only used with DB metrics on.
   */
  instrumentStore(store: Store): Store {
    const queryLatency = new Histogram({
      name: "coderd_db_query_latencies_seconds",
      help: "Latency distribution of queries in seconds, by query name.",
      labelNames: ["query"],
      buckets: DB_BUCKETS,
      registers: [this.registry],
    });
    const txDuration = new Histogram({
      name: "coderd_db_tx_duration_seconds",
      help: "Duration of transactions in seconds, by outcome.",
      labelNames: ["success"],
      buckets: DB_BUCKETS,
      registers: [this.registry],
    });
    const txOk = txDuration.labels("true");
    const txFailed = txDuration.labels("false");
    const children = new Map<string, { observe(v: number): void }>();
    const child = (name: string) => {
      let c = children.get(name);
      if (!c) {
        c = queryLatency.labels(name);
        children.set(name, c);
      }
      return c;
    };
    const wrap = (inner: Store): Store => {
      const out = { kysely: inner.kysely } as Store;
      const rec = out as unknown as Record<string, unknown>;
      for (const [name, fn] of Object.entries(inner)) {
        if (typeof fn !== "function" || name === "inTx") continue;
        const h = child(name);
        rec[name] = async (...args: unknown[]) => {
          const start = performance.now();
          try {
            return await (fn as (...a: unknown[]) => Promise<unknown>)(...args);
          } finally {
            h.observe((performance.now() - start) / 1000);
          }
        };
      }
      out.inTx = async <T>(fn: (tx: Store) => Promise<T>): Promise<T> => {
        // Nested: already inside a transaction that is being timed.
        if (inner.kysely.isTransaction) return inner.inTx(fn);
        const start = performance.now();
        let ok = false;
        try {
          const r = await inner.inTx((tx) => fn(wrap(tx)));
          ok = true;
          return r;
        } finally {
          (ok ? txOk : txFailed).observe((performance.now() - start) / 1000);
        }
      };
      return out;
    };
    return wrap(store);
  }

  /**
   * The connection pool of this process, read at scrape time: connections open (in use or idle),
   * idle, queries waiting for a connection, and the pool's size. Always on with metrics.
   */
  instrumentDatabasePool(stats: () => DatabasePoolStats): void {
    const registers = [this.registry];
    const gauge = (name: string, help: string, read: (s: DatabasePoolStats) => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read(stats()));
        },
      });
    gauge("coderd_db_pool_open_connections", "Connections of this process's database pool open now, in use or idle (the pubsub's LISTEN connection is not counted).", (s) => s.open);
    gauge("coderd_db_pool_idle_connections", "Open connections of the database pool that no query uses now.", (s) => s.idle);
    gauge("coderd_db_pool_waiting_requests", "Queries waiting for a connection because every connection of the pool is in use.", (s) => s.waiting);
    gauge("coderd_db_pool_max_connections", "The most connections the database pool opens.", (s) => s.max);
  }

  // ---------------------------------------------------------------- pubsub

  instrumentPubsub(pubsub: Pubsub): void {
    const registers = [this.registry];
    const publishes = new Counter({ name: "coder_pubsub_publishes_total", help: "Total number of calls to Publish, by success.", labelNames: ["success"], registers });
    const pubOk = publishes.labels("true");
    const pubFailed = publishes.labels("false");
    const messages = new Counter({ name: "coder_pubsub_messages_total", help: "Total number of messages received from the database.", registers });
    const publishedBytes = new Counter({ name: "coder_pubsub_published_bytes_total", help: "Total number of payload bytes successfully published.", registers });
    const receivedBytes = new Counter({ name: "coder_pubsub_received_bytes_total", help: "Total number of payload bytes received.", registers });
    const disconnections = new Counter({ name: "coder_pubsub_disconnections_total", help: "Total number of times the pubsub listener lost its database connection.", registers });
    const stats = () => pubsub.stats?.();
    new Gauge({
      name: "coder_pubsub_connected",
      help: "Whether the pubsub listener is connected to the database (1) or not (0).",
      registers,
      collect() {
        this.set(stats()?.connected ? 1 : 0);
      },
    });
    new Gauge({
      name: "coder_pubsub_current_subscribers",
      help: "The current number of active pubsub subscribers.",
      registers,
      collect() {
        this.set(stats()?.subscribers ?? 0);
      },
    });
    new Gauge({
      name: "coder_pubsub_current_events",
      help: "The current number of channels listened to.",
      registers,
      collect() {
        this.set(stats()?.channels ?? 0);
      },
    });
    this.pubsubLatency(pubsub);
    const stop = pubsub.observe?.({
      published(bytes, ok) {
        if (ok) {
          pubOk.inc();
          publishedBytes.inc(bytes);
        } else pubFailed.inc();
      },
      received(bytes) {
        messages.inc();
        receivedBytes.inc(bytes);
      },
      disconnected() {
        disconnections.inc();
      },
    });
    if (stop) this.cleanups.push(stop);
  }

  /**
   * coder_pubsub_{send,receive}_latency_seconds and coder_pubsub_latency_measure_errs_total: each
   * scrape publishes one probe and times its round trip. The three families are collected in
   * parallel and share the scrape's one measurement (so do scrapes that overlap it).
   */
  private pubsubLatency(pubsub: Pubsub): void {
    const registers = [this.registry];
    const probe = new PubsubLatencyProbe(pubsub, this.opts.pubsubLatencyTimeoutMs ?? DEFAULT_LATENCY_TIMEOUT_MS);
    this.cleanups.push(() => probe.close());
    let current: Promise<LatencyMeasurement> | undefined;
    const send = new Histogram({
      name: "coder_pubsub_send_latency_seconds",
      help: "The time taken to send a message into a pubsub event channel (pg_notify returning), measured at each scrape.",
      buckets: PUBSUB_LATENCY_BUCKETS,
      registers,
      collect: () => measured(),
    });
    const receive = new Histogram({
      name: "coder_pubsub_receive_latency_seconds",
      help: "The time taken to receive a message from a pubsub event channel (this process's LISTEN delivering it), measured at each scrape.",
      buckets: PUBSUB_LATENCY_BUCKETS,
      registers,
      collect: () => measured(),
    });
    const errors = new Counter({
      name: "coder_pubsub_latency_measure_errs_total",
      help: "The number of pubsub latency measurements that failed (the probe could not be published or did not come back in time).",
      registers,
      collect: () => measured(),
    });
    const measured = async (): Promise<void> => {
      if (!current) {
        const m = probe.measure().then((r) => {
          if (r.send !== undefined) send.observe(r.send);
          if (r.receive !== undefined) receive.observe(r.receive);
          if (r.error) errors.inc();
          return r;
        });
        current = m;
        // Every collector of this scrape has joined it by now; the next scrape measures anew.
        const done = () => {
          if (current === m) current = undefined;
        };
        m.then(done, done);
      }
      await current;
    };
  }

  // ---------------------------------------------------------------- provisioner jobs

  /**
   * Follows the jobs this replica hands out: how many run now, how long each took, and the
   * workspace builds that ended. Wraps the server's methods (its internal calls go through them too).
   */
  instrumentProvisionerd(server: ProvisionerdServer, store: Store): void {
    const registers = [this.registry];
    this.instrumentProvisionerQueue(store);
    const queueWait = new Histogram({
      name: "coderd_provisionerd_job_queue_wait_seconds",
      help: "The time provisioner jobs waited for a daemon, from creation until a daemon acquired them (through this replica), by provisioner.",
      labelNames: ["provisioner"],
      buckets: QUEUE_BUCKETS,
      registers,
    });
    /** Both timestamps come from the database's clock; read off the acquiring path. */
    const observeQueueWait = (job: AcquiredJob) => {
      sql<{ wait: number | null }>`
        SELECT EXTRACT(EPOCH FROM started_at - created_at)::float8 AS wait FROM provisioner_jobs WHERE id = ${job.job_id}`
        .execute(store.kysely)
        .then(
          ({ rows }) => {
            const wait = rows[0]?.wait;
            if (typeof wait === "number" && wait >= 0) queueWait.labels(job.provisioner).observe(wait);
          },
          () => {},
        );
    };
    type Outcome = "success" | "failed";
    /** Jobs handed out here; outcome is set while completeJob/failJob runs (it calls ended()). */
    const running = new Map<string, { provisioner: string; start: number; build?: AcquiredJob["workspace_build"]; outcome?: Outcome }>();
    new Gauge({
      name: "coderd_provisionerd_jobs_current",
      help: "The number of provisioner jobs running now (handed out by this replica), by provisioner.",
      labelNames: ["provisioner"],
      registers,
      collect() {
        this.reset();
        const counts = new Map<string, number>();
        for (const j of running.values()) counts.set(j.provisioner, (counts.get(j.provisioner) ?? 0) + 1);
        for (const [p, n] of counts) this.labels(p).set(n);
      },
    });
    const timings = new Histogram({
      name: "coderd_provisionerd_job_timings_seconds",
      help: "The provisioner job time duration in seconds, by provisioner and final status.",
      labelNames: ["provisioner", "status"],
      buckets: JOB_BUCKETS,
      registers,
    });
    const builds = new Counter({
      name: "coderd_workspace_builds_total",
      help: "The number of workspace builds that ended, by template, transition and status.",
      labelNames: ["template_name", "template_version", "workspace_transition", "status"],
      registers,
    });
    const finish = (jobId: string, status: Outcome) => {
      const j = running.get(jobId);
      if (!j) return;
      running.delete(jobId);
      timings.labels(j.provisioner, status).observe((performance.now() - j.start) / 1000);
      if (j.build) builds.labels(j.build.template_name, j.build.template_version_name, j.build.transition, status).inc();
    };
    const s = server as unknown as {
      acquireJob: ProvisionerdServer["acquireJob"];
      completeJob: ProvisionerdServer["completeJob"];
      failJob: ProvisionerdServer["failJob"];
      releaseJob: ProvisionerdServer["releaseJob"];
      ended: ProvisionerdServer["ended"];
    };
    const { acquireJob, completeJob, failJob, releaseJob, ended } = {
      acquireJob: s.acquireJob.bind(server),
      completeJob: s.completeJob.bind(server),
      failJob: s.failJob.bind(server),
      releaseJob: s.releaseJob.bind(server),
      ended: s.ended.bind(server),
    };
    s.acquireJob = async (daemon, signal) => {
      const job = await acquireJob(daemon, signal);
      if (job) {
        running.set(job.job_id, { provisioner: job.provisioner, start: performance.now(), build: job.workspace_build });
        observeQueueWait(job);
      }
      return job;
    };
    const ending = async (jobId: string, outcome: Outcome, run: () => Promise<void>) => {
      const j = running.get(jobId);
      if (j) j.outcome = outcome;
      try {
        await run();
      } catch (err) {
        if (j) j.outcome = undefined;
        throw err;
      }
      finish(jobId, outcome);
    };
    s.completeJob = (daemon, done: CompletedJob) => ending(done.job_id, "success", () => completeJob(daemon, done));
    s.failJob = (daemon, failed: FailedJob) => ending(failed.job_id, "failed", () => failJob(daemon, failed));
    s.releaseJob = async (daemon, jobId) => {
      running.delete(jobId);
      await releaseJob(daemon, jobId);
    };
    // Every end passes here; a job reaped (its daemon went silent) ends without completeJob/failJob.
    s.ended = async (job) => {
      finish(job.id, running.get(job.id)?.outcome ?? "failed");
      await ended(job);
    };
  }

  /**
   * coderd_provisionerd_jobs_pending{provisioner,tags}: the jobs no daemon has taken yet, by the
   * tags a daemon needs (bounded by the tag sets templates use), from one grouped query per
   * scrape. It is the deployment's queue: every replica reports the same numbers.
   */
  instrumentProvisionerQueue(store: Store): void {
    let inflight: Promise<Array<{ provisioner: string; tags: Record<string, string>; n: number }>> | undefined;
    const load = () => {
      inflight ??= sql<{ provisioner: string; tags: Record<string, string>; n: number }>`
        SELECT provisioner, tags, count(*)::int AS n FROM provisioner_jobs
         WHERE started_at IS NULL AND canceled_at IS NULL AND completed_at IS NULL
         GROUP BY provisioner, tags`
        .execute(store.kysely)
        .then((r) => r.rows)
        .finally(() => (inflight = undefined));
      return inflight;
    };
    new Gauge({
      name: "coderd_provisionerd_jobs_pending",
      help: "Provisioner jobs waiting for a daemon, by provisioner and the tags a daemon needs to take them (deployment-wide: every replica reports the same, aggregate with max).",
      labelNames: ["provisioner", "tags"],
      registers: [this.registry],
      async collect() {
        let rows: Awaited<ReturnType<typeof load>>;
        try {
          rows = await load();
        } catch {
          // The database is unreachable: no series rather than a failed scrape, which would hide
          // the pool and pubsub metrics that tell why.
          this.reset();
          return;
        }
        const counts = new Map<string, { provisioner: string; tags: string; n: number }>();
        for (const r of rows) {
          const tags = formatTags(r.tags);
          const k = r.provisioner + "\0" + tags;
          const e = counts.get(k);
          if (e) e.n += r.n;
          else counts.set(k, { provisioner: r.provisioner, tags, n: r.n });
        }
        this.reset();
        for (const { provisioner, tags, n } of counts.values()) this.labels(provisioner, tags).set(n);
      },
    });
  }

  // ---------------------------------------------------------------- agents

  /**
   * coderd_agents_* and (optionally) coderd_agentstats_*, read from the database at scrape time;
   * relayMap (read at every scrape) names the regions of coderd_agents_connection_latencies_seconds.
   */
  instrumentAgents(store: Store, relayMap?: () => RelayMap): void {
    collectAgents(this.registry, store, this.opts, relayMap);
  }

  // ---------------------------------------------------------------- relay

  instrumentRelay(relay: RelayServer): void {
    const registers = [this.registry];
    new Gauge({
      name: "coderd_relay_peers",
      help: "Peers connected to this replica's relay now.",
      registers,
      collect() {
        this.set(relay.stats().peers);
      },
    });
    this.readCounter("coderd_relay_forwarded_frames_total", "Frames the relay handed to a connected destination.", () => relay.stats().frames_forwarded);
    this.readCounter("coderd_relay_forwarded_bytes_total", "Body bytes of the frames the relay forwarded.", () => relay.stats().bytes_forwarded);
    this.readCounter("coderd_relay_dropped_frames_total", "Frames dropped because their destination's queue was full or it was closing.", () => relay.stats().frames_dropped);
    this.readCounter("coderd_relay_dropped_bytes_total", "Body bytes of the frames the relay dropped.", () => relay.stats().bytes_dropped);
  }

  /** HA: the replicas this one sees, their latency, and the relay mesh between them. */
  instrumentReplicas(sync: ReplicaSync, mesh: RelayMesh | undefined): void {
    const registers = [this.registry];
    new Gauge({
      name: "coderd_replicas",
      help: "Alive replicas of the deployment (this one included), as this replica sees them.",
      registers,
      collect() {
        this.set(sync.peers().length + 1);
      },
    });
    new Gauge({
      name: "coderd_replica_database_latency_seconds",
      help: "This replica's last measured round trip to Postgres.",
      registers,
      collect() {
        this.set(sync.databaseLatency() / 1000);
      },
    });
    new Gauge({
      name: "coderd_replica_peer_latency_seconds",
      help: "Round trip from this replica to another replica's relay (alive replicas that answered).",
      labelNames: ["replica_id"] as const,
      registers,
      collect() {
        this.reset();
        for (const p of sync.peers()) {
          const ms = sync.peerLatency(p.id)?.latencyMs;
          if (ms !== undefined) this.set({ replica_id: p.id }, ms / 1000);
        }
      },
    });
    if (!mesh) return;
    new Gauge({
      name: "coderd_relay_mesh_peers",
      help: "Relay mesh links from this replica to other replicas that are up.",
      registers,
      collect() {
        this.set(mesh.stats().mesh_peers);
      },
    });
    this.readCounter("coderd_relay_mesh_forwarded_frames_total", "Frames this replica's relay sent to another replica's relay.", () => mesh.stats().frames_forwarded);
    this.readCounter("coderd_relay_mesh_forwarded_bytes_total", "Body bytes of the frames sent over the relay mesh.", () => mesh.stats().bytes_forwarded);
    this.readCounter("coderd_relay_mesh_received_frames_total", "Frames that arrived from other replicas' relays for peers connected here.", () => mesh.stats().frames_received);
    this.readCounter("coderd_relay_mesh_received_bytes_total", "Body bytes of the frames that arrived over the relay mesh.", () => mesh.stats().bytes_received);
    this.readCounter("coderd_relay_mesh_dropped_frames_total", "Frames dropped because a mesh link's queue was full.", () => mesh.stats().frames_dropped);
  }

  /** A counter whose value is read from a running total at scrape time. */
  private readCounter(name: string, help: string, read: () => number): void {
    new Counter({
      name,
      help,
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  }

  /** The text exposition format. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  close(): void {
    for (const c of this.cleanups.splice(0)) c();
  }
}

/** A job's tags as one label value: "k=v" pairs sorted by key, comma-separated. */
export function formatTags(tags: Record<string, string> | null | undefined): string {
  return Object.keys(tags ?? {})
    .sort()
    .map((k) => `${k}=${tags![k]}`)
    .join(",");
}
