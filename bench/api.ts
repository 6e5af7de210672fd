// API benchmark: starts the real `coder server` binary (built-in Postgres) as a child process,
// creates the first user and 200 more through the typed SDK client, then measures
// GET /api/v2/users/me and GET /api/v2/users?limit=25 with autocannon at 1, 16 and 64
// connections. Returns one JSON document; progress goes to stderr.
import { availableParallelism, cpus } from "node:os";
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
}

const log = (msg: string) => logAs("api", msg);

const PASSWORD = "BenchmarkPassword!1";
const EXTRA_USERS = 200;
const CONNECTIONS = [1, 16, 64];

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

    const cases = [
      { name: "users_me", path: "/api/v2/users/me" },
      { name: "users_list", path: "/api/v2/users?limit=25&offset=0" },
    ];
    const results: CaseResult[] = [];
    for (const c of cases) {
      for (const connections of CONNECTIONS) {
        const url = server.url + c.path;
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
    const rss = rssMb(server.child.pid!);
    const doc: ApiBenchmarkDoc = {
      benchmark: "api",
      machine: { cpus: availableParallelism(), cpu_model: cpus()[0]?.model ?? "unknown", node: process.version, busy_before_pct: busy },
      users: EXTRA_USERS + 1,
      results,
      server_rss_mb: rss,
    };
    const ok = results.every((r) => r.non_2xx === 0 && r.errors === 0);
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
