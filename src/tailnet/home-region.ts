// A peer's home relay: the region whose relay answers fastest (/derp/latency-check), so relayed
// traffic takes the shortest detour. With one region there is nothing to measure.
import { relayNodeUrl, type RelayMap, type RelayRegion } from "./relay-map.js";

const CHECK_TIMEOUT_MS = 2_000;

async function latency(region: RelayRegion): Promise<number> {
  const url = new URL(relayNodeUrl(region.Nodes[0]!));
  url.protocol = url.protocol === "wss:" ? "https:" : "http:";
  url.pathname = "/derp/latency-check";
  const t0 = performance.now();
  const res = await fetch(url, { signal: AbortSignal.timeout(CHECK_TIMEOUT_MS) });
  await res.arrayBuffer();
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return performance.now() - t0;
}

export async function pickHomeRegion(map: RelayMap): Promise<RelayRegion | undefined> {
  const regions = Object.values(map.Regions);
  if (regions.length <= 1) return regions[0];
  const measured = await Promise.all(regions.map(async (r) => ({ r, ms: await latency(r).catch(() => Infinity) })));
  measured.sort((a, b) => a.ms - b.ms);
  return measured[0]!.r;
}
