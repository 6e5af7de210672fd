// coderd_agents_connection_latencies_seconds from the rows the database would return: a stub
// store (the real query runs in test/observability/metrics.test.ts against a real agent), to
// check naming, the preferred label and aggregation without building many workspaces.
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import type { Store } from "../../database/index.js";
import { embeddedRegion, type RelayMap } from "../../tailnet/index.js";
import { collectAgents, type AgentLabel } from "./agents.js";

type NodeRow = Awaited<ReturnType<Store["getConnectedAgentNodes"]>>[number];

const row = (agent: string, workspace: string, preferred: number | null, latencies: unknown): NodeRow => ({
  agent_name: agent,
  workspace_name: workspace,
  username: "alice",
  template_name: "tpl",
  preferred_relay: preferred,
  relay_latency_ms: latencies as Record<string, number>,
});

const relayMap: RelayMap = { Regions: { "999": embeddedRegion("http://127.0.0.1:3000", 999, "coder", "Coder Embedded Relay"), "7": { ...embeddedRegion("http://10.0.0.7:3000", 7, "eu", "Frankfurt"), EmbeddedRelay: false } } };

async function scrape(rows: NodeRow[] | Error, by: AgentLabel[]) {
  const registry = new Registry();
  // Only the node query answers; the other agent metrics find no database (and report nothing).
  const store = {
    kysely: undefined,
    getConnectedAgentNodes: async () => {
      if (rows instanceof Error) throw rows;
      return rows;
    },
  } as unknown as Store;
  collectAgents(registry, store, { collectAgentStats: false, aggregateAgentStatsBy: by }, () => relayMap);
  const metric = registry.getSingleMetric("coderd_agents_connection_latencies_seconds")!;
  const { values } = await metric.get();
  return values.map((v) => ({ labels: v.labels, value: v.value })).sort((a, b) => JSON.stringify(a.labels).localeCompare(JSON.stringify(b.labels)));
}

describe("coderd_agents_connection_latencies_seconds", () => {
  it("has one series per agent and region, in seconds, named by the relay map", async () => {
    const got = await scrape(
      [
        row("main", "ws1", 999, { "999": 2.5, "7": 40 }),
        row("main", "ws2", 7, { "999": 30, "7": 1, "42": 80 }),
        row("old", "ws3", 999, null), // an agent that reports no latencies
      ],
      ["agent_name", "workspace_name"],
    );
    expect(got).toEqual([
      { labels: { agent_name: "main", workspace_name: "ws1", derp_region: "Coder Embedded Relay", preferred: "true" }, value: 0.0025 },
      { labels: { agent_name: "main", workspace_name: "ws1", derp_region: "Frankfurt", preferred: "false" }, value: 0.04 },
      { labels: { agent_name: "main", workspace_name: "ws2", derp_region: "Coder Embedded Relay", preferred: "false" }, value: 0.03 },
      { labels: { agent_name: "main", workspace_name: "ws2", derp_region: "Frankfurt", preferred: "true" }, value: 0.001 },
      // A region the map no longer has (the agent measured an older map), as Coder names it.
      { labels: { agent_name: "main", workspace_name: "ws2", derp_region: "Unnamed 42", preferred: "false" }, value: 0.08 },
    ]);
  });

  it("keeps derp_region and preferred when aggregating, reporting the slowest agent", async () => {
    const got = await scrape([row("a", "ws1", 999, { "999": 2 }), row("b", "ws2", 999, { "999": 9 }), row("c", "ws3", 7, { "999": 5 })], []);
    expect(got).toEqual([
      { labels: { derp_region: "Coder Embedded Relay", preferred: "false" }, value: 0.005 },
      { labels: { derp_region: "Coder Embedded Relay", preferred: "true" }, value: 0.009 },
    ]);
  });

  it("skips values that are not latencies", async () => {
    const got = await scrape([row("a", "ws1", 999, { "999": "2", "7": -1 }), row("b", "ws2", 999, [3]), row("c", "ws3", 999, "x")], ["agent_name"]);
    expect(got).toEqual([]);
  });

  it("has no series, rather than a failed scrape, when the database is unreachable", async () => {
    expect(await scrape(new Error("connection refused"), ["agent_name"])).toEqual([]);
  });
});
