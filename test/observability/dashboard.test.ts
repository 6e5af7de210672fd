// The Grafana dashboard in deploy/grafana: well-formed for Grafana (schema version, a Prometheus
// datasource variable every panel uses), every PromQL expression valid for the real
// `promtool check rules` (written out as recording rules), and every metric it queries one that
// a coderd with all metrics on (DB metrics, agent stats) actually registers.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../helpers/coderd.js";

interface Target {
  expr?: string;
  datasource?: { type?: string; uid?: string };
  refId?: string;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type?: string; uid?: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  schemaVersion: number;
  uid: string;
  title: string;
  templating: { list: Array<{ name: string; type: string; query?: unknown }> };
  panels: Panel[];
}

const FILE = resolve(import.meta.dirname, "../../deploy/grafana/coder-dashboard.json");
const dashboard = JSON.parse(readFileSync(FILE, "utf8")) as Dashboard;
const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
const queries = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr ?? "", target: t })));

/** Grafana's variables as a query run sees them: the interval variables become a duration, $instance "all". */
function substitute(expr: string): string {
  return expr
    .replace(/\$__rate_interval|\$\{__rate_interval\}|\$__interval|\$\{__interval\}|\$__range|\$\{__range\}/g, "5m")
    .replace(/\$\{instance(?::\w+)?\}|\$instance\b/g, ".*");
}

const NOT_METRICS = new Set(["by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset", "inf", "nan"]);

/** The metric names a PromQL expression selects (string literals, matchers, ranges and grouping labels removed). */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, "")
    .replace(/\[[^\]]*\]/g, "")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, "");
  const names: string[] = [];
  for (const m of bare.matchAll(/(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()/g)) {
    if (!NOT_METRICS.has(m[1]!.toLowerCase())) names.push(m[1]!);
  }
  return names;
}

function promtool(): string {
  const r = spawnSync("promtool", ["--version"], { encoding: "utf8" });
  if (r.error) throw new Error("promtool is not installed: install the Debian package `prometheus` (.ci/run installs it when missing)");
  return "promtool";
}

describe("deploy/grafana/coder-dashboard.json", () => {
  it("is a Grafana dashboard on a ${datasource} Prometheus variable", () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.uid).toBeTruthy();
    const ds = dashboard.templating.list.find((v) => v.name === "datasource");
    expect(ds).toMatchObject({ type: "datasource", query: "prometheus" });
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size, "panel ids are unique").toBe(ids.length);
    for (const p of panels) {
      expect(p.gridPos.x + p.gridPos.w, `${p.title} fits the 24-column grid`).toBeLessThanOrEqual(24);
      if (p.type === "row") continue;
      expect(p.datasource, p.title).toEqual({ type: "prometheus", uid: "${datasource}" });
      expect(p.targets?.length, `${p.title} has queries`).toBeGreaterThan(0);
      for (const t of p.targets!) {
        expect(t.expr, `${p.title} ${t.refId}`).toBeTruthy();
        expect(t.datasource?.uid, `${p.title} ${t.refId}`).toBe("${datasource}");
      }
    }
    // Every variable a query uses is defined (or one of Grafana's own).
    const defined = new Set(dashboard.templating.list.map((v) => v.name));
    for (const { panel, expr } of queries) {
      for (const m of expr.matchAll(/\$\{?(\w+)/g)) {
        expect(m[1]!.startsWith("__") || defined.has(m[1]!), `${panel}: $${m[1]} is not a dashboard variable`).toBe(true);
      }
    }
  });

  it("has only expressions `promtool check rules` accepts", () => {
    expect(queries.length).toBeGreaterThan(20);
    const dir = mkdtempSync(join(tmpdir(), "coder-dashboard-rules-"));
    try {
      const file = join(dir, "dashboard-rules.yml");
      const rules = queries.map((q, i) => `      - record: dashboard:expr_${i}\n        expr: ${JSON.stringify(substitute(q.expr))}\n`).join("");
      writeFileSync(file, `groups:\n  - name: coder-dashboard\n    rules:\n${rules}`);
      const r = spawnSync(promtool(), ["check", "rules", file], { encoding: "utf8" });
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain(`SUCCESS: ${queries.length} rules found`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe("against the metrics a coderd registers", () => {
    let srv: TestServer;
    let registered: Set<string>;
    beforeAll(async () => {
      srv = await startTestServer({
        manualClose: true,
        prometheus: { collectDbMetrics: true, collectAgentStats: true, aggregateAgentStatsBy: ["agent_name", "template_name", "username", "workspace_name"] },
      });
      registered = new Set(srv.coderd.metrics!.registry.getMetricsAsArray().map((m) => m.name));
    });
    afterAll(async () => {
      await srv?.close();
    });

    it("queries only registered metrics", () => {
      expect(registered.has("coderd_api_request_latencies_seconds")).toBe(true);
      for (const { panel, expr } of queries) {
        const names = metricNames(substitute(expr));
        expect(names.length, `${panel}: no metric in ${expr}`).toBeGreaterThan(0);
        for (const name of names) {
          const base = name.replace(/_(bucket|sum|count)$/, "");
          expect(registered.has(name) || registered.has(base), `${panel}: ${name} is not a metric coderd registers`).toBe(true);
        }
      }
    });

    it("covers what operators need: API and DB tail latency, resources, jobs, agents, relay, pubsub", () => {
      const used = new Set(queries.flatMap((q) => metricNames(substitute(q.expr))));
      for (const name of [
        "coderd_api_request_latencies_seconds_bucket",
        "coderd_api_requests_processed_total",
        "coderd_api_concurrent_requests",
        "coderd_api_concurrent_websockets",
        "coderd_db_query_latencies_seconds_bucket",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "nodejs_eventloop_lag_p99_seconds",
        "coderd_provisionerd_jobs_current",
        "coderd_provisionerd_job_timings_seconds_bucket",
        "coderd_workspace_builds_total",
        "coderd_agents_up",
        "coderd_agents_connections",
        "coderd_agentstats_rx_bytes",
        "coderd_agentstats_tx_bytes",
        "coderd_relay_peers",
        "coderd_relay_forwarded_bytes_total",
        "coderd_relay_dropped_bytes_total",
        "coder_pubsub_connected",
        "coder_pubsub_publishes_total",
      ]) {
        expect(used.has(name), `no panel queries ${name}`).toBe(true);
      }
      // Tail latency by route: p50, p95 and p99 of the API histogram.
      const routeQuantiles = queries
        .filter((q) => q.expr.includes("coderd_api_request_latencies_seconds_bucket") && /by \([^)]*route/.test(q.expr))
        .map((q) => /histogram_quantile\((0\.\d+)/.exec(q.expr)?.[1]);
      expect(routeQuantiles).toEqual(expect.arrayContaining(["0.50", "0.95", "0.99"]));
      const dbQuantiles = queries.filter((q) => q.expr.includes("coderd_db_query_latencies_seconds_bucket")).map((q) => /histogram_quantile\((0\.\d+)/.exec(q.expr)?.[1]);
      expect(dbQuantiles).toEqual(expect.arrayContaining(["0.95", "0.99"]));
    });
  });
});
