// Agent metrics, computed from the database when Prometheus scrapes (one query for all of them,
// and one for the connected agents' nodes, each cached a few seconds so several scrapers or
// replicas' dashboards cost one query), aggregated by the labels
// CODER_PROMETHEUS_AGGREGATE_AGENT_STATS_BY keeps so series stay bounded.
import { sql } from "kysely";
import { Gauge, type Registry } from "prom-client";
import type { AgentStatsReport, Store } from "../../database/index.js";
import type { RelayMap } from "../../tailnet/index.js";
import { agentStatus } from "../agents/status.js";

export type AgentLabel = "agent_name" | "template_name" | "username" | "workspace_name";

type NodeRow = Awaited<ReturnType<Store["getConnectedAgentNodes"]>>[number];

interface AgentRow {
  agent_name: string;
  workspace_name: string;
  username: string;
  template_name: string;
  first_connected_at: Date | null;
  last_connected_at: Date | null;
  disconnected_at: Date | null;
  created_at: Date;
  connection_timeout_seconds: number;
  lifecycle_state: string;
  /** When the agent last began its startup script (lifecycle "starting"). */
  started_at: Date | null;
  /** When that startup ended: ready, start_error or start_timeout. */
  ready_at: Date | null;
  stats: AgentStatsReport | null;
}

const CACHE_MS = 5_000;

/** The agents of every live workspace's latest build, with what names them. */
async function loadAgents(store: Store): Promise<AgentRow[]> {
  const { rows } = await sql<AgentRow>`
    SELECT wa.name AS agent_name, w.name AS workspace_name, u.username, t.name AS template_name,
           wa.first_connected_at, wa.last_connected_at, wa.disconnected_at, wa.created_at,
           wa.connection_timeout_seconds, wa.lifecycle_state, wa.started_at, wa.ready_at, wa.stats
      FROM workspaces w
      JOIN LATERAL (SELECT b.job_id, b.transition FROM workspace_builds b
                     WHERE b.workspace_id = w.id ORDER BY b.build_number DESC LIMIT 1) lb ON true
      JOIN workspace_resources r ON r.job_id = lb.job_id AND r.transition = lb.transition
      JOIN workspace_agents wa ON wa.resource_id = r.id
      JOIN users u ON u.id = w.owner_id
      JOIN templates t ON t.id = w.template_id
     WHERE NOT w.deleted`.execute(store.kysely);
  return rows;
}

/** load() at most once per CACHE_MS; a failed load is not kept, so the next scrape tries again. */
function cachedLoad<T>(load: () => Promise<T>): () => Promise<T> {
  let cached: { at: number; value: Promise<T> } | undefined;
  return () => {
    const now = Date.now();
    if (!cached || now - cached.at > CACHE_MS) {
      const p = load();
      cached = { at: now, value: p };
      p.catch(() => {
        if (cached?.value === p) cached = undefined;
      });
    }
    return cached.value;
  };
}

export interface AgentCollectOptions {
  collectAgentStats: boolean;
  aggregateAgentStatsBy: readonly AgentLabel[];
}

export function collectAgents(registry: Registry, store: Store, opts: AgentCollectOptions, relayMap?: () => RelayMap): void {
  const by = [...opts.aggregateAgentStatsBy];
  const rows = cachedLoad(() => loadAgents(store));
  const key = (r: Record<AgentLabel, string>, extra: string[] = []) => [...by.map((l) => r[l]), ...extra];

  /** Sets one series per label set, combining the values that share one (sum, or the largest). */
  const setAggregated = (g: Gauge, values: Iterable<{ labels: string[]; v: number }>, combine: "sum" | "max") => {
    const sums = new Map<string, { labels: string[]; v: number }>();
    for (const { labels, v } of values) {
      const k = labels.join("\0");
      const e = sums.get(k);
      if (e) e.v = combine === "sum" ? e.v + v : Math.max(e.v, v);
      else sums.set(k, { labels, v });
    }
    g.reset();
    for (const { labels, v } of sums.values()) g.labels(...labels).set(v);
  };

  /**
   * Combines value(row) per label set (sum, or the largest for durations, where a sum means
   * nothing); rows where value is undefined are skipped.
   */
  const gauge = (
    name: string,
    help: string,
    extraLabels: string[],
    value: (r: AgentRow, now: number) => { v: number; extra?: string[] } | undefined,
    combine: "sum" | "max" = "sum",
  ) =>
    new Gauge({
      name,
      help,
      labelNames: [...by, ...extraLabels],
      registers: [registry],
      async collect() {
        let list: AgentRow[];
        try {
          list = await rows();
        } catch {
          // The database is unreachable: no series rather than a failed scrape.
          this.reset();
          return;
        }
        const now = Date.now();
        const values: Array<{ labels: string[]; v: number }> = [];
        for (const r of list) {
          const got = value(r, now);
          if (got) values.push({ labels: key(r, got.extra), v: got.v });
        }
        setAggregated(this, values, combine);
      },
    });

  gauge("coderd_agents_up", "The number of connected agents.", [], (r, now) => ({ v: agentStatus(r, now) === "connected" ? 1 : 0 }));
  gauge("coderd_agents_connections", "The agents by connection status and lifecycle state.", ["status", "lifecycle_state"], (r, now) => ({
    v: 1,
    extra: [agentStatus(r, now), r.lifecycle_state],
  }));

  /**
   * Each connected agent's latency to every relay region, as its node (in tailnet_peers) last
   * reported it: one series per agent and region, named by the relay map (a region the map no
   * longer has is "Unnamed <id>", as Coder names it). Aggregated agents report the slowest.
   */
  const nodes = cachedLoad(() => store.getConnectedAgentNodes());
  new Gauge({
    name: "coderd_agents_connection_latencies_seconds",
    help: "Agent connection latencies to each relay (DERP) region, in seconds, and whether the region is the agent's preferred one.",
    labelNames: [...by, "derp_region", "preferred"],
    registers: [registry],
    async collect() {
      let list: NodeRow[];
      try {
        list = await nodes();
      } catch {
        // The database is unreachable: no series rather than a failed scrape.
        this.reset();
        return;
      }
      let regions: RelayMap["Regions"] = {};
      try {
        regions = relayMap?.().Regions ?? {};
      } catch {
        // No names this time: the regions are reported by id.
      }
      const values: Array<{ labels: string[]; v: number }> = [];
      for (const r of list) {
        const latencies = r.relay_latency_ms;
        // The coordinator validated the node; old rows or hand edits may still hold anything.
        if (!latencies || typeof latencies !== "object" || Array.isArray(latencies)) continue;
        for (const [id, ms] of Object.entries(latencies)) {
          if (!/^[1-9]\d{0,4}$/.test(id) || typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) continue;
          const name = regions[id]?.RegionName ?? `Unnamed ${id}`;
          values.push({ labels: key(r, [name, String(Number(id) === r.preferred_relay)]), v: ms / 1000 });
        }
      }
      setAggregated(this, values, "max");
    },
  });

  if (!opts.collectAgentStats) return;
  /**
   * Stats count only for agents connected now (a gone agent's last report says nothing); one
   * that has not reported yet (the first report comes with its first session or after 30 s)
   * counts as zero, so its series exist from the moment it connects.
   */
  const stat = (read: (s: AgentStatsReport) => number) => (r: AgentRow, now: number) =>
    agentStatus(r, now) === "connected" ? { v: r.stats ? read(r.stats) : 0 } : undefined;
  gauge("coderd_agentstats_open_connections", "The number of established connections to the agents (Coder names it ..._connection_count, which promtool rejects for a gauge).", [], stat((s) => s.connections));
  gauge("coderd_agentstats_rx_bytes", "Bytes the agents received over their connections (since each agent started).", [], stat((s) => s.rx_bytes));
  gauge("coderd_agentstats_tx_bytes", "Bytes the agents sent over their connections (since each agent started).", [], stat((s) => s.tx_bytes));
  gauge("coderd_agentstats_session_count_ssh", "The number of SSH sessions open on the agents.", [], stat((s) => s.sessions.ssh));
  gauge("coderd_agentstats_session_count_reconnecting_pty", "The number of web terminal (reconnecting PTY) sessions open on the agents.", [], stat((s) => s.sessions.reconnecting_pty));
  gauge("coderd_agentstats_session_count_tcp", "The number of forwarded TCP connections open on the agents.", [], stat((s) => s.sessions.tcp));

  /**
   * How long the startup script ran (lifecycle "starting" until "ready", or until it failed or
   * timed out: success="false"), for the agents of live workspaces whose startup has ended. Agents
   * aggregated into one label set report the slowest, as Coder's dashboards read it (max).
   */
  const ENDED: Record<string, string> = { ready: "true", start_error: "false", start_timeout: "false" };
  gauge(
    "coderd_agentstats_startup_script_seconds",
    "The time the agents' startup scripts took, in seconds (the slowest where agents are aggregated), by outcome.",
    ["success"],
    (r) => {
      const success = ENDED[r.lifecycle_state];
      if (!success || !r.started_at || !r.ready_at || r.ready_at < r.started_at) return undefined;
      return { v: (r.ready_at.getTime() - r.started_at.getTime()) / 1000, extra: [success] };
    },
    "max",
  );
}
