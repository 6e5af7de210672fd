// Prometheus metrics as operators scrape them: a real server with real traffic (API calls, 404s,
// a workspace build, a connected agent), the exposition validated by the real `promtool`, every
// metric the scaling guide and issue 7 name present with its type and labels, and label
// cardinality bounded however many distinct paths clients request.
import { spawn, spawnSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { resolve } from "node:path";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { packDirectory } from "../../src/archive/index.js";
import type { Client, Workspace } from "../../src/codersdk/index.js";
import { CoderdMetrics } from "../../src/coderd/prometheusmetrics/index.js";
import { serveMetrics, type MetricsEndpoint } from "../../src/promhttp/index.js";
import { createPool, openDatabase, PgPubsub } from "../../src/database/index.js";
import { EXAMPLE_TEMPLATE } from "../../src/provisioners/index.js";
import { runCli, startServerProcess, tempConfigDir } from "../helpers/binary.js";
import { createFirstUser, startTestServer, type TestServer } from "../helpers/coderd.js";
import { createTestDatabase } from "../helpers/database.js";
import { writeTemplateDir } from "../helpers/templates.js";
import { deleteWorkspace, runningWorkspace } from "../helpers/workspaces.js";

interface Family {
  type: string;
  samples: Array<{ name: string; labels: Record<string, string>; value: number }>;
}

/** Parses the text exposition format into families (by name) with their samples. */
function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const family = (name: string) => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { type: "untyped", samples: [] }));
    return f;
  };
  for (const line of text.split("\n")) {
    if (!line) continue;
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      family(type[1]!).type = type[2]!;
      continue;
    }
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    const name = m[1]!;
    const base = families.has(name) ? name : name.replace(/_(bucket|sum|count|total|created)$/, "");
    family(families.has(name) ? name : base).samples.push({ name, labels, value: Number(m[3]) });
  }
  return families;
}

function promtool(): string {
  const r = spawnSync("promtool", ["--version"], { encoding: "utf8" });
  if (r.error) throw new Error("promtool is not installed: install the Debian package `prometheus` (.ci/run installs it when missing)");
  return "promtool";
}

/** `promtool check metrics` on the exposition, through stdin as Prometheus' docs show. */
function checkMetrics(text: string): Promise<{ code: number | null; output: string }> {
  return new Promise((res, rej) => {
    const p = spawn(promtool(), ["check", "metrics"], { stdio: ["pipe", "pipe", "pipe"] });
    let output = "";
    p.stdout.on("data", (d) => (output += d));
    p.stderr.on("data", (d) => (output += d));
    p.on("error", rej);
    p.on("close", (code) => res({ code, output }));
    p.stdin.end(text);
  });
}

/** A template import whose tags no running daemon has: it stays pending. */
async function queueUntakeableImport(client: Client, tags: Record<string, string>): Promise<void> {
  const dir = writeTemplateDir(EXAMPLE_TEMPLATE, { cleanup: false });
  try {
    const { id } = await client.uploadFile(await packDirectory(dir));
    await client.createTemplateVersion("default", { file_id: id, tags });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const sample = (families: Map<string, Family>, name: string, labels: Record<string, string> = {}) =>
  families.get(name.replace(/_(count|sum)$/, ""))?.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

const AGENT_LABELS = ["agent_name", "template_name", "username", "workspace_name"];

/** Every metric named by the scaling guide and the first part of issue 7: type and label names. */
const EXPECTED: Array<[string, string, string[]]> = [
  ["coderd_api_request_latencies_seconds", "histogram", ["method", "route"]],
  ["coderd_api_requests_processed_total", "counter", ["code", "method", "route"]],
  ["coderd_api_concurrent_requests", "gauge", []],
  ["coderd_api_concurrent_websockets", "gauge", []],
  ["coderd_api_websocket_durations_seconds", "histogram", ["route"]],
  ["coderd_db_query_latencies_seconds", "histogram", ["query"]],
  ["coderd_db_tx_duration_seconds", "histogram", ["success"]],
  ["coder_pubsub_publishes_total", "counter", ["success"]],
  ["coder_pubsub_messages_total", "counter", []],
  ["coder_pubsub_published_bytes_total", "counter", []],
  ["coder_pubsub_received_bytes_total", "counter", []],
  ["coder_pubsub_disconnections_total", "counter", []],
  ["coder_pubsub_connected", "gauge", []],
  ["coder_pubsub_current_subscribers", "gauge", []],
  ["coder_pubsub_send_latency_seconds", "histogram", []],
  ["coder_pubsub_receive_latency_seconds", "histogram", []],
  ["coder_pubsub_latency_measure_errs_total", "counter", []],
  ["coderd_db_pool_open_connections", "gauge", []],
  ["coderd_db_pool_idle_connections", "gauge", []],
  ["coderd_db_pool_waiting_requests", "gauge", []],
  ["coderd_db_pool_max_connections", "gauge", []],
  ["coderd_provisionerd_job_timings_seconds", "histogram", ["provisioner", "status"]],
  ["coderd_provisionerd_jobs_pending", "gauge", ["provisioner", "tags"]],
  ["coderd_provisionerd_job_queue_wait_seconds", "histogram", ["provisioner"]],
  ["coderd_workspace_builds_total", "counter", ["template_name", "template_version", "workspace_transition", "status"]],
  ["coderd_agents_up", "gauge", AGENT_LABELS],
  ["coderd_agents_connections", "gauge", [...AGENT_LABELS, "status", "lifecycle_state"]],
  ["coderd_agents_connection_latencies_seconds", "gauge", [...AGENT_LABELS, "derp_region", "preferred"]],
  ["coderd_agentstats_rx_bytes", "gauge", AGENT_LABELS],
  ["coderd_agentstats_tx_bytes", "gauge", AGENT_LABELS],
  ["coderd_agentstats_open_connections", "gauge", AGENT_LABELS],
  ["coderd_agentstats_session_count_ssh", "gauge", AGENT_LABELS],
  ["coderd_agentstats_session_count_reconnecting_pty", "gauge", AGENT_LABELS],
  ["coderd_agentstats_startup_script_seconds", "gauge", [...AGENT_LABELS, "success"]],
  ["coderd_relay_peers", "gauge", []],
  ["coderd_relay_forwarded_frames_total", "counter", []],
  ["coderd_relay_forwarded_bytes_total", "counter", []],
  ["coderd_relay_dropped_frames_total", "counter", []],
  ["coderd_replicas", "gauge", []],
  ["coderd_replica_database_latency_seconds", "gauge", []],
  ["coderd_relay_mesh_peers", "gauge", []],
  ["coderd_relay_mesh_forwarded_bytes_total", "counter", []],
  ["coderd_relay_mesh_received_bytes_total", "counter", []],
  ["coderd_relay_mesh_dropped_frames_total", "counter", []],
  ["process_cpu_seconds_total", "counter", []],
  ["process_resident_memory_bytes", "gauge", []],
  ["process_open_fds", "gauge", []],
  ["nodejs_eventloop_lag_seconds", "gauge", []],
];

describe("Prometheus metrics after real traffic", () => {
  let srv: TestServer;
  let listener: MetricsEndpoint;
  let owner: Client;
  let workspace: Workspace | undefined;
  const scrape = async () => {
    const res = await fetch(listener.url);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/plain");
    return res.text();
  };

  beforeAll(async () => {
    promtool();
    srv = await startTestServer({
      provisionerDaemons: 1,
      manualClose: true,
      prometheus: { collectDbMetrics: true, collectAgentStats: true, aggregateAgentStatsBy: AGENT_LABELS as never },
    });
    listener = await serveMetrics(srv.coderd.metrics!, "127.0.0.1", 0);
    ({ client: owner } = await createFirstUser(srv));
    await owner.user("me");
    await owner.users();
    expect((await fetch(`${srv.url}/api/v2/nonexistent`)).status).toBe(404);
    ({ workspace } = await runningWorkspace(owner, "metrics"));
    // The agent sends its node (with its relay latencies) to the coordinator right after it
    // connects; the agent metrics are cached for 5 s.
    for (let deadline = Date.now() + 20_000; !(await scrape()).includes("coderd_agents_connection_latencies_seconds{"); ) {
      if (Date.now() > deadline) throw new Error("the agent's relay latencies never showed up in coderd_agents_connection_latencies_seconds");
      await new Promise((r) => setTimeout(r, 500));
    }
    // Waits for a daemon tagged arch=riscv,cluster=nowhere; the built-in one has only host=….
    await queueUntakeableImport(owner, { cluster: "nowhere", arch: "riscv" });
  });

  afterAll(async () => {
    if (workspace) await deleteWorkspace(owner, workspace).catch(() => {});
    await listener?.close();
    await srv?.close();
  });

  it("passes promtool check metrics and has every named metric with its type and labels", async () => {
    const text = await scrape();
    const check = await checkMetrics(text);
    expect(check.output, check.output).toBe("");
    expect(check.code, check.output).toBe(0);

    const families = parseExposition(text);
    for (const [name, type, labels] of EXPECTED) {
      const f = families.get(name);
      expect(f, `${name} missing`).toBeDefined();
      expect(f!.type, name).toBe(type);
      const withLabels = f!.samples.filter((s) => !s.name.endsWith("_bucket"));
      expect(withLabels.length, `${name} has no samples`).toBeGreaterThan(0);
      for (const s of withLabels) expect(Object.keys(s.labels).sort(), `${name} labels`).toEqual([...labels].sort());
    }

    const routes = new Set(families.get("coderd_api_requests_processed_total")!.samples.map((s) => s.labels.route));
    expect(routes).toContain("/api/v2/users/:user");
    expect(routes).toContain("/api/v2/users/first");
    expect(routes).toContain(""); // the 404 of an unknown path, under no route
    for (const r of routes) expect(r).not.toMatch(/[0-9a-f]{8}-[0-9a-f]{4}-/); // never a raw id

    const latency = families.get("coderd_api_request_latencies_seconds")!;
    const meCount = latency.samples.find((s) => s.name.endsWith("_count") && s.labels.route === "/api/v2/users/:user" && s.labels.method === "GET");
    expect(meCount?.value).toBeGreaterThanOrEqual(1);

    const up = families.get("coderd_agents_up")!.samples;
    expect(up).toContainEqual({ name: "coderd_agents_up", labels: { agent_name: "main", template_name: "tpl-metrics", username: "owner", workspace_name: "metrics" }, value: 1 });
    // The agent's latency to the one relay region there is (its home), from its node.
    const relayLatency = families.get("coderd_agents_connection_latencies_seconds")!.samples;
    expect(relayLatency).toHaveLength(1);
    expect(relayLatency[0]!.labels).toEqual({ agent_name: "main", template_name: "tpl-metrics", username: "owner", workspace_name: "metrics", derp_region: "Coder Embedded Relay", preferred: "true" });
    expect(relayLatency[0]!.value).toBeGreaterThan(0);
    expect(relayLatency[0]!.value).toBeLessThan(1);
    const builds = families.get("coderd_workspace_builds_total")!.samples;
    expect(builds.some((s) => s.labels.workspace_transition === "start" && s.labels.status === "success" && s.value >= 1)).toBe(true);
    const timings = families.get("coderd_provisionerd_job_timings_seconds")!.samples;
    expect(timings.some((s) => s.name.endsWith("_count") && s.labels.status === "success" && s.value >= 2)).toBe(true); // import + build

    const queries = new Set(families.get("coderd_db_query_latencies_seconds")!.samples.map((s) => s.labels.query));
    expect(queries).toContain("getUserById");
    expect(families.get("coder_pubsub_connected")!.samples[0]!.value).toBe(1);
    expect(families.get("coder_pubsub_messages_total")!.samples[0]!.value).toBeGreaterThan(0);
    // The agent holds WebSockets to this server (coordination, relay) while it is connected.
    expect(families.get("coderd_api_concurrent_websockets")!.samples[0]!.value).toBeGreaterThan(0);
    expect(families.get("coderd_relay_peers")!.samples[0]!.value).toBeGreaterThanOrEqual(0);

    // The pool: its configured size (createPool's default: the test server sets none), and counts within it.
    const max = sample(families, "coderd_db_pool_max_connections")!;
    expect(max).toBe(20);
    expect(max).toBe(srv.db.pool.options.max);
    const open = sample(families, "coderd_db_pool_open_connections")!;
    expect(open).toBeGreaterThanOrEqual(1);
    expect(open).toBeLessThanOrEqual(max);
    expect(sample(families, "coderd_db_pool_idle_connections")!).toBeLessThanOrEqual(open);
    expect(sample(families, "coderd_db_pool_waiting_requests")!).toBeGreaterThanOrEqual(0);

    // This scrape measured one NOTIFY round trip, and it came back.
    expect(sample(families, "coder_pubsub_send_latency_seconds_count")).toBeGreaterThanOrEqual(1);
    expect(sample(families, "coder_pubsub_receive_latency_seconds_count")).toBeGreaterThanOrEqual(1);
    const receiveSum = sample(families, "coder_pubsub_receive_latency_seconds_sum")!;
    expect(receiveSum).toBeGreaterThan(0);
    expect(receiveSum).toBeLessThan(5);
    expect(sample(families, "coder_pubsub_latency_measure_errs_total")).toBe(0);

    // The queue: the import nobody can take, under its sorted tags; the built-in daemon's jobs waited briefly.
    expect(families.get("coderd_provisionerd_jobs_pending")!.samples).toEqual([
      { name: "coderd_provisionerd_jobs_pending", labels: { provisioner: "local", tags: "arch=riscv,cluster=nowhere" }, value: 1 },
    ]);
    expect(sample(families, "coderd_provisionerd_job_queue_wait_seconds_count", { provisioner: "local" })).toBeGreaterThanOrEqual(2); // import + build
    const waited = sample(families, "coderd_provisionerd_job_queue_wait_seconds_sum", { provisioner: "local" })!;
    expect(waited).toBeGreaterThanOrEqual(0);
    expect(waited).toBeLessThan(60);

    // The agent's startup script ran (the example template's ends at once) and it became ready.
    const startup = families.get("coderd_agentstats_startup_script_seconds")!.samples;
    expect(startup).toHaveLength(1);
    expect(startup[0]!.labels).toEqual({ agent_name: "main", template_name: "tpl-metrics", username: "owner", workspace_name: "metrics", success: "true" });
    expect(startup[0]!.value).toBeGreaterThanOrEqual(0);
    expect(startup[0]!.value).toBeLessThan(60);
  });

  it("measures pubsub latency at every scrape", async () => {
    const count = (f: Map<string, Family>) => sample(f, "coder_pubsub_receive_latency_seconds_count")!;
    const before = count(parseExposition(await scrape()));
    const after = parseExposition(await scrape());
    expect(count(after)).toBe(before + 1);
    expect(sample(after, "coder_pubsub_latency_measure_errs_total")).toBe(0);
  });

  it("the alert rule examples pass promtool check rules and use only metrics the server exports", async () => {
    const file = resolve(import.meta.dirname, "../../deploy/prometheus/coder-alerts.yml");
    const r = spawnSync(promtool(), ["check", "rules", file], { encoding: "utf8" });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const exported = parseExposition(await scrape());
    const used = new Set([...readFileSync(file, "utf8").matchAll(/\b((?:coderd?|process|nodejs)_[a-z0-9_]+)\b/g)].map((m) => m[1]!));
    for (const name of used) {
      const base = name.replace(/_(bucket|count|sum)$/, "");
      expect(exported.has(base) || exported.has(name), `${name} in the rules is not exported`).toBe(true);
    }
  });

  it("keeps route labels bounded with 1,000 distinct request paths", async () => {
    const before = parseExposition(await scrape());
    const seriesBefore = before.get("coderd_api_requests_processed_total")!.samples.length;
    const ids = Array.from({ length: 1000 }, () => randomBytes(6).toString("hex"));
    const paths = ids.map((r, i) => (i % 2 ? `/api/v2/users/${r}` : `/api/v2/nonexistent/${r}`));
    const headers = { "Coder-Session-Token": owner.sessionToken! };
    for (let i = 0; i < paths.length; i += 50) {
      await Promise.all(paths.slice(i, i + 50).map(async (p) => (await fetch(srv.url + p, { headers })).arrayBuffer()));
    }
    const text = await scrape();
    const after = parseExposition(text);
    const processed = after.get("coderd_api_requests_processed_total")!.samples;
    expect(processed.length - seriesBefore).toBeLessThanOrEqual(4);
    const routes = new Set(processed.map((s) => s.labels.route));
    expect(routes.size).toBeLessThan(40);
    for (const id of ids) expect(text).not.toContain(id);
    const unknown = processed.find((s) => s.labels.route === "" && s.labels.code === "404" && s.labels.method === "GET");
    expect(unknown!.value).toBeGreaterThanOrEqual(500);
    // Every one of those requests ended: the in-flight gauge is back to (about) nothing.
    const inflight = after.get("coderd_api_concurrent_requests")!.samples[0]!.value;
    expect(inflight).toBeGreaterThanOrEqual(0);
    expect(inflight).toBeLessThan(5);
    expect((await checkMetrics(text)).code).toBe(0);
  });
});

describe("pubsub latency probes", () => {
  const bare = (timeoutMs?: number) =>
    new CoderdMetrics({ collectDbMetrics: false, collectAgentStats: false, aggregateAgentStatsBy: [], collectProcessMetrics: false, pubsubLatencyTimeoutMs: timeoutMs });

  it("two replicas on one database, scraped at once and repeatedly, each get their own probes back", async () => {
    const url = await createTestDatabase();
    const dbs = [await openDatabase(url), await openDatabase(url)];
    const metrics = dbs.map((db) => {
      const m = bare();
      m.instrumentPubsub(db.pubsub);
      return m;
    });
    onTestFinished(async () => {
      for (const m of metrics) m.close();
      for (const db of dbs) await db.close();
    });
    for (let i = 0; i < 5; i++) await Promise.all([metrics[0]!.metrics(), metrics[1]!.metrics(), metrics[0]!.metrics()]);
    for (const m of metrics) {
      const f = parseExposition(await m.metrics());
      expect(sample(f, "coder_pubsub_receive_latency_seconds_count")).toBeGreaterThanOrEqual(6);
      expect(sample(f, "coder_pubsub_send_latency_seconds_count")).toBe(sample(f, "coder_pubsub_receive_latency_seconds_count"));
      expect(sample(f, "coder_pubsub_latency_measure_errs_total")).toBe(0);
    }
  });

  it("a probe that never comes back, or cannot be sent, counts an error within the time limit", async () => {
    const url = await createTestDatabase();
    const db = await openDatabase(url);
    onTestFinished(() => db.close());
    // Its LISTEN connection is gone: the probe is published but never delivered.
    const deaf = new PgPubsub(db.pool, url);
    await deaf.close();
    const m1 = bare(300);
    m1.instrumentPubsub(deaf);
    const started = performance.now();
    let f = parseExposition(await m1.metrics());
    expect(performance.now() - started).toBeLessThan(3000);
    expect(sample(f, "coder_pubsub_latency_measure_errs_total")).toBe(1);
    expect(sample(f, "coder_pubsub_send_latency_seconds_count")).toBe(1);
    expect(sample(f, "coder_pubsub_receive_latency_seconds_count")).toBe(0);
    m1.close();

    // Its pool was shut: publishing fails.
    const pool = createPool({ connectionString: url, max: 1 });
    await pool.end();
    const mute = new PgPubsub(pool, url);
    onTestFinished(() => mute.close());
    const m2 = bare(2000);
    m2.instrumentPubsub(mute);
    f = parseExposition(await m2.metrics());
    expect(sample(f, "coder_pubsub_latency_measure_errs_total")).toBe(1);
    expect(sample(f, "coder_pubsub_send_latency_seconds_count")).toBe(0);
    expect((await checkMetrics(await m2.metrics())).code).toBe(0);
    m2.close();
  });
});

describe("a scrape while the database is unreachable", () => {
  it("still answers, with the pool's numbers and the probe's error, and no series from queries", async () => {
    const db = await openDatabase(await createTestDatabase());
    const m = new CoderdMetrics({ collectDbMetrics: false, collectAgentStats: true, aggregateAgentStatsBy: ["agent_name"], collectProcessMetrics: false, pubsubLatencyTimeoutMs: 1000 });
    m.instrumentDatabasePool(db.poolStats);
    m.instrumentPubsub(db.pubsub);
    m.instrumentAgents(db.store, () => ({ Regions: {} }));
    m.instrumentProvisionerQueue(db.store);
    await db.close();
    const text = await m.metrics();
    m.close();
    const f = parseExposition(text);
    expect(sample(f, "coderd_db_pool_max_connections")).toBe(20);
    expect(sample(f, "coder_pubsub_latency_measure_errs_total")).toBe(1);
    expect(f.get("coderd_agents_up")!.samples).toEqual([]);
    expect(f.get("coderd_agents_connection_latencies_seconds")!.samples).toEqual([]);
    expect(f.get("coderd_provisionerd_jobs_pending")!.samples).toEqual([]);
    expect((await checkMetrics(text)).code).toBe(0);
  });
});

describe("coder server with CODER_PROMETHEUS_ENABLE", () => {
  it("serves /metrics on its own address, not on the API port", async () => {
    const url = await createTestDatabase();
    const srv = await startServerProcess(["--config-dir", tempConfigDir()], {
      CODER_PG_CONNECTION_URL: url,
      CODER_PROVISIONER_DAEMONS: "0",
      CODER_PROMETHEUS_ENABLE: "true",
      CODER_PROMETHEUS_ADDRESS: "127.0.0.1:0",
    });
    await srv.waitFor("Prometheus metrics at");
    const metricsUrl = /Prometheus metrics at (http:\/\/\S+\/metrics)/.exec(srv.output())![1]!;
    expect(new URL(metricsUrl).port).not.toBe(new URL(srv.url).port);
    await fetch(`${srv.url}/api/v2/buildinfo`);
    const res = await fetch(metricsUrl);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/coderd_api_requests_processed_total\{code="200",method="GET",route="\/api\/v2\/buildinfo"\} 1/);
    expect(text).not.toContain("coderd_db_query_latencies_seconds"); // DB metrics are off by default
    expect(text).toMatch(/^coderd_db_pool_max_connections 20$/m); // the pool metrics are not
    expect(text).toMatch(/^coder_pubsub_receive_latency_seconds_count 1$/m);
    expect((await fetch(`${srv.url}/metrics`)).status).toBe(404);
    expect(await srv.stop()).toBe(0);
  });
});

describe("Prometheus configuration errors", () => {
  it.each([
    [[], { CODER_PROMETHEUS_AGGREGATE_AGENT_STATS_BY: "agent_name,user_id" }, "CODER_PROMETHEUS_AGGREGATE_AGENT_STATS_BY", "user_id"],
    [["--prometheus-aggregate-agent-stats-by", "owner"], {}, "--prometheus-aggregate-agent-stats-by / CODER_PROMETHEUS_AGGREGATE_AGENT_STATS_BY", "owner"],
    [[], { CODER_PROMETHEUS_ENABLE: "maybe" }, "CODER_PROMETHEUS_ENABLE", "maybe"],
    [[], { CODER_PROMETHEUS_ADDRESS: "localhost" }, "CODER_PROMETHEUS_ADDRESS", "localhost"],
    [[], { CODER_PROMETHEUS_COLLECT_DB_METRICS: "sometimes" }, "CODER_PROMETHEUS_COLLECT_DB_METRICS", "sometimes"],
  ])("%j %j names %s", async (args, env, name, value) => {
    const r = await runCli(["--config-dir", tempConfigDir(), "server", ...args], env as Record<string, string>);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split("\n").filter((l) => l.startsWith("error: "));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(name);
    expect(lines[0]).toContain(value);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
