// API benchmark: starts the real `coder server` binary (built-in Postgres) as a child process,
// creates the first user and 200 more through the typed SDK client, then measures
// GET /api/v2/users/me and GET /api/v2/users?limit=25 with autocannon at 1, 16 and 64
// connections. Then the same users/me runs against a second server with Prometheus metrics on
// (--prometheus-enable --prometheus-collect-db-metrics, scraped as Prometheus would: every 15 s)
// and reports the throughput the metrics cost (metrics_overhead_percent; target under 5%).
// Returns one JSON document; progress goes to stderr.
import { existsSync, readFileSync } from "node:fs";
import { availableParallelism, cpus } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import autocannon from "autocannon";
import { Client, SESSION_TOKEN_HEADER } from "../src/codersdk/index.js";
import { envSeconds, log as logAs, machineBusyPct, percentile, rssMb, ServerProcess } from "./lib.js";

/** Latencies of the 2xx responses; null when there were none. */
export interface LatencyMs {
  p50: number | null;
  p90: number | null;
  p95: number | null;
  p97_5: number | null;
  p99: number | null;
  max: number | null;
}

export interface CaseResult {
  name: string;
  path: string;
  connections: number;
  duration_seconds: number;
  requests: number;
  requests_per_second: number;
  latency_ms: LatencyMs;
  non_2xx: number;
  errors: number;
  timeouts: number;
}

export interface ApiBenchmarkDoc {
  benchmark: "api";
  /** busy_before_pct: how busy the machine's CPUs were in the second before the server started (other work skews the figures). */
  machine: { cpus: number; cpu_model: string; node: string; busy_before_pct: number | null };
  users: number;
  results: CaseResult[];
  server_rss_mb: number | null;
  /** The users_me runs again, on a server with --prometheus-enable --prometheus-collect-db-metrics. */
  metrics_results: Array<CaseResult & { overhead_percent: number | null }>;
  /** Throughput lost to metrics: 1 - (users_me requests with metrics / without), summed over the connection counts, in %. */
  metrics_overhead_percent: number | null;
  metrics_overhead_target_percent: number;
  /** Scrapes of /metrics during the metrics runs, and the users/me requests the last one counted. */
  metrics_scrapes: number;
  metrics_scraped_users_me_requests: number | null;
  metrics_server_rss_mb: number | null;
}

const log = (msg: string) => logAs("api", msg);

const PASSWORD = "BenchmarkPassword!1";
const EXTRA_USERS = 200;
const CONNECTIONS = [1, 16, 64];
const METRICS_OVERHEAD_TARGET_PERCENT = 5;
/** Prometheus' usual scrape_interval is 15 s (its default is 1 m); BENCH_SCRAPE_SECONDS=1 stresses it. */
const SCRAPE_INTERVAL_MS = envSeconds("BENCH_SCRAPE_SECONDS", 15) * 1000;
const CASES = [
  { name: "users_me", path: "/api/v2/users/me" },
  { name: "users_list", path: "/api/v2/users?limit=25&offset=0" },
];

async function inParallel<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

async function setup(url: string): Promise<string> {
  const client = new Client(url);
  await client.createFirstUser({ email: "admin@example.com", username: "admin", name: "Bench Admin", password: PASSWORD });
  client.sessionToken = (await client.loginWithPassword("admin@example.com", PASSWORD)).session_token;
  const me = await client.user("me");
  if (me.username !== "admin") throw new Error(`logged in as ${me.username}, expected admin`);
  const started = Date.now();
  const ids = Array.from({ length: EXTRA_USERS }, (_, i) => i + 1);
  // login_type "none": the rows are the same shape for the list, and 200 scrypt hashes would
  // only add ~20 s of setup on a small machine.
  await inParallel(ids, 8, async (i) => {
    await client.createUser({ email: `user${i}@example.com`, username: `user-${i}`, name: `Bench User ${i}`, login_type: "none" });
  });
  const list = await client.users({ limit: 25, offset: 0 });
  if (list.count !== EXTRA_USERS + 1 || list.users.length !== 25) {
    throw new Error(`expected ${EXTRA_USERS + 1} users and a page of 25, got count ${list.count} and ${list.users.length}`);
  }
  log(`created ${EXTRA_USERS} users in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  return client.sessionToken;
}


interface Measured {
  result: autocannon.Result;
  latencies: Float64Array;
}

/** One autocannon run; records every 2xx response's latency (ms, sub-ms precision) for exact percentiles. */
async function cannon(url: string, token: string, connections: number, durationSeconds: number): Promise<Measured> {
  let buf = new Float64Array(1 << 16);
  let n = 0;
  let instance!: autocannon.Instance;
  const done = new Promise<autocannon.Result>((res, rej) => {
    instance = autocannon(
      {
        url,
        connections,
        duration: durationSeconds,
        headers: { [SESSION_TOKEN_HEADER]: token, accept: "application/json" },
        timeout: 10,
      },
      (err, result) => (err ? rej(err as Error) : res(result)),
    );
  });
  instance.on("response", (_client, statusCode, _bytes, responseTime) => {
    if (statusCode < 200 || statusCode >= 300) return;
    if (n === buf.length) {
      const bigger = new Float64Array(buf.length * 2);
      bigger.set(buf);
      buf = bigger;
    }
    buf[n++] = responseTime;
  });
  const result = await done;
  return { result, latencies: buf.slice(0, n).sort() };
}

const round1 = (n: number) => Math.round(n * 10) / 10;

/** Each case at each connection count: a warm-up run, then the measured run. */
async function runCases(baseUrl: string, token: string, cases: Array<{ name: string; path: string }>, warmup: number, duration: number): Promise<CaseResult[]> {
    const results: CaseResult[] = [];
    for (const c of cases) {
      for (const connections of CONNECTIONS) {
        const url = baseUrl + c.path;
        log(`${c.name} @ ${connections} connections: warm-up ${warmup}s, run ${duration}s`);
        const w = await cannon(url, token, connections, warmup);
        if (w.result.non2xx || w.result.errors) log(`  warm-up: ${w.result.non2xx} non-2xx, ${w.result.errors} errors`);
        const { result, latencies } = await cannon(url, token, connections, duration);
        const total = result.requests.total;
        const r: CaseResult = {
          name: c.name,
          path: c.path,
          connections,
          duration_seconds: result.duration,
          requests: total,
          requests_per_second: Math.round(total / result.duration),
          latency_ms: {
            p50: percentile(latencies, 50),
            p90: percentile(latencies, 90),
            p95: percentile(latencies, 95),
            p97_5: percentile(latencies, 97.5),
            p99: percentile(latencies, 99),
            max: percentile(latencies, 100),
          },
          non_2xx: result.non2xx,
          errors: result.errors,
          timeouts: result.timeouts,
        };
        if (r.non_2xx) log(`  status codes: ${JSON.stringify(result.statusCodeStats)}`);
        log(`  ${r.requests_per_second} req/s, p50 ${r.latency_ms.p50} ms, p95 ${r.latency_ms.p95} ms, p99 ${r.latency_ms.p99} ms, non-2xx ${r.non_2xx}, errors ${r.errors}`);
        results.push(r);
      }
    }
    return results;
}

/** The metrics endpoint's URL, from the server's log line "Prometheus metrics at <url>". */
async function metricsUrl(server: ServerProcess, timeoutMs = 30_000): Promise<string> {
  const files = [server.logFile, join(server.configDir, "server.json.log")];
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const f of files) {
      const m = existsSync(f) ? /Prometheus metrics at (http:\/\/[^\s"]+\/metrics)/.exec(readFileSync(f, "utf8")) : null;
      if (m) return m[1]!;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("the server never logged its Prometheus metrics address");
}

/** A server with metrics and DB metrics on, scraped every SCRAPE_INTERVAL_MS while users/me runs at each connection count. */
async function runWithMetrics(warmup: number, duration: number): Promise<{ results: CaseResult[]; scrapes: number; scrapedUsersMe: number | null; rss: number | null }> {
  const server = await ServerProcess.start({
    name: "server+metrics",
    args: ["--prometheus-enable", "--prometheus-collect-db-metrics", "--prometheus-address", "127.0.0.1:0"],
  });
  const onSignal = (sig: NodeJS.Signals) => {
    log(`received ${sig}: stopping the server`);
    server.stop().finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  let scrapes = 0;
  let scraping = true;
  let lastScrape = "";
  let scraper: Promise<void> | undefined;
  try {
    await server.waitReady();
    const url = await metricsUrl(server);
    log(`metrics at ${url}, scraped every ${SCRAPE_INTERVAL_MS} ms`);
    const token = await setup(server.url);
    scraper = (async () => {
      while (scraping) {
        const res = await fetch(url);
        if (!res.ok) throw new Error(`scraping ${url}: status ${res.status}`);
        lastScrape = await res.text();
        scrapes++;
        await new Promise((r) => setTimeout(r, SCRAPE_INTERVAL_MS));
      }
    })();
    const results = await runCases(server.url, token, CASES.filter((c) => c.name === "users_me"), warmup, duration);
    scraping = false;
    await scraper;
    const m = /^coderd_api_requests_processed_total\{code="200",method="GET",route="\/api\/v2\/users\/:user"\} (\d+)/m.exec(lastScrape);
    if (!/^coderd_db_query_latencies_seconds_count\{/m.test(lastScrape)) throw new Error("the metrics server exported no coderd_db_query_latencies_seconds: DB metrics are not on");
    return { results, scrapes, scrapedUsersMe: m ? Number(m[1]) : null, rss: rssMb(server.child.pid!) };
  } finally {
    scraping = false;
    await scraper?.catch(() => {});
    await server.stop();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

export async function runApiBenchmark(): Promise<{ doc: ApiBenchmarkDoc; ok: boolean }> {
  const duration = envSeconds("BENCH_DURATION_SECONDS", 5);
  const warmup = envSeconds("BENCH_WARMUP_SECONDS", 1);
  const busy = await machineBusyPct(1000);
  if (busy !== null && busy > 10) log(`warning: the CPUs were ${busy}% busy before the benchmark: other work will skew the figures`);
  const server = await ServerProcess.start();
  const onSignal = (sig: NodeJS.Signals) => {
    log(`received ${sig}: stopping the server`);
    server.stop().finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    await server.waitReady();
    const token = await setup(server.url);

    const results = await runCases(server.url, token, CASES, warmup, duration);
    const rss = rssMb(server.child.pid!);
    await server.stop();

    log("the same users/me runs with Prometheus metrics on (--prometheus-enable --prometheus-collect-db-metrics)");
    const withMetrics = await runWithMetrics(warmup, duration);
    const base = results.filter((r) => r.name === "users_me");
    const metrics_results = withMetrics.results.map((r) => {
      const b = base.find((x) => x.connections === r.connections);
      return { ...r, overhead_percent: b && b.requests_per_second > 0 ? round1((1 - r.requests_per_second / b.requests_per_second) * 100) : null };
    });
    const baseRps = base.reduce((a, r) => a + r.requests_per_second, 0);
    const metricsRps = withMetrics.results.reduce((a, r) => a + r.requests_per_second, 0);
    const overhead = baseRps > 0 ? round1((1 - metricsRps / baseRps) * 100) : null;
    log(`metrics overhead: ${overhead}% of users/me throughput (target < ${METRICS_OVERHEAD_TARGET_PERCENT}%)`);
    const doc: ApiBenchmarkDoc = {
      benchmark: "api",
      machine: { cpus: availableParallelism(), cpu_model: cpus()[0]?.model ?? "unknown", node: process.version, busy_before_pct: busy },
      users: EXTRA_USERS + 1,
      results,
      server_rss_mb: rss,
      metrics_results,
      metrics_overhead_percent: overhead,
      metrics_overhead_target_percent: METRICS_OVERHEAD_TARGET_PERCENT,
      metrics_scrapes: withMetrics.scrapes,
      metrics_scraped_users_me_requests: withMetrics.scrapedUsersMe,
      metrics_server_rss_mb: withMetrics.rss,
    };
    const ok = [...results, ...withMetrics.results].every((r) => r.non_2xx === 0 && r.errors === 0);
    return { doc, ok };
  } finally {
    await server.stop();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

// Runnable on its own too: node dist-bench/bench/api.js
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runApiBenchmark().then(
    ({ doc, ok }) => {
      process.stdout.write(`${JSON.stringify(doc)}\n`);
      if (!ok) process.exitCode = 1;
    },
    (err: unknown) => {
      log(`failed: ${(err as Error).stack ?? String(err)}`);
      process.exitCode = 1;
    },
  );
}
