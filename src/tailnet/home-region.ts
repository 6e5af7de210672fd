// A peer's home relay: the region whose relay answers fastest (/derp/latency-check), so relayed
// traffic takes the shortest detour. Every region is measured, even a lone one: the latencies go
// into the agent's node, and coderd exports them (coderd_agents_connection_latencies_seconds).
import { MAX_RELAY_LATENCIES, MAX_RELAY_LATENCY_MS } from "./coordination/protocol.js";
import { relayNodeUrl, type RelayMap, type RelayRegion } from "./relay-map.js";

const CHECK_TIMEOUT_MS = 2_000;

/** One region's latency-check round trip, in milliseconds; throws when the check fails. */
export type LatencyCheck = (region: RelayRegion) => Promise<number>;

/** Round trips per measurement: the first also opens the connection (TCP, TLS), the next reuse it. */
const PROBES = 3;

async function probe(url: URL): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(url, { signal: AbortSignal.timeout(CHECK_TIMEOUT_MS) });
  await res.arrayBuffer();
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return performance.now() - t0;
}

/** The fastest of a few round trips: the others carry connection setup and queueing noise. */
async function latency(region: RelayRegion): Promise<number> {
  const url = new URL(relayNodeUrl(region.Nodes[0]!));
  url.protocol = url.protocol === "wss:" ? "https:" : "http:";
  url.pathname = "/derp/latency-check";
  let best = await probe(url);
  for (let i = 1; i < PROBES; i++) {
    const ms = await probe(url).catch(() => undefined);
    if (ms === undefined) break; // one slow failure is enough to wait for
    best = Math.min(best, ms);
  }
  return best;
}

export interface HomeRegion {
  /** The fastest region (the first one when none answered); undefined for an empty map. */
  region: RelayRegion | undefined;
  /** Region id → round trip in ms (to the microsecond), for the regions that answered. */
  latencyMs: Record<string, number>;
}

/** Measures every region of the map at once and picks the fastest as home. */
export async function pickHomeRegion(map: RelayMap, check: LatencyCheck = latency): Promise<HomeRegion> {
  const regions = Object.values(map.Regions);
  const measured = await Promise.all(regions.map(async (r) => ({ r, ms: await check(r).catch(() => Infinity) })));
  // A stable sort: with no answers at all, the map's first region stays home.
  measured.sort((a, b) => (a.ms === b.ms ? 0 : a.ms - b.ms));
  const latencyMs: Record<string, number> = {};
  // What the coordinator accepts: the fastest regions, within bounds.
  for (const { r, ms } of measured.slice(0, MAX_RELAY_LATENCIES)) {
    if (Number.isFinite(ms) && ms >= 0 && ms <= MAX_RELAY_LATENCY_MS) latencyMs[String(r.RegionID)] = Math.round(ms * 1000) / 1000;
  }
  return { region: measured[0]?.r, latencyMs };
}
