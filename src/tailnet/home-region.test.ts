import { createServer, type Server } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { pickHomeRegion } from "./home-region.js";
import type { RelayMap, RelayRegion } from "./relay-map.js";

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A relay region whose /derp/latency-check answers after delayMs (or with status). */
async function region(id: number, delayMs: number, status = 200): Promise<RelayRegion> {
  const srv = createServer((req, res) => {
    if (req.url !== "/derp/latency-check") return void res.writeHead(404).end();
    setTimeout(() => res.writeHead(status).end(), delayMs);
  });
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  return { RegionID: id, RegionCode: `r${id}`, RegionName: `Region ${id}`, Nodes: [{ Name: `${id}a`, RegionID: id, HostName: "127.0.0.1", DERPPort: port, ForceHTTP: true }] };
}

const mapOf = (...regions: RelayRegion[]): RelayMap => ({ Regions: Object.fromEntries(regions.map((r) => [String(r.RegionID), r])) });

describe("pickHomeRegion", () => {
  it("measures a lone region too", async () => {
    const { region: home, latencyMs } = await pickHomeRegion(mapOf(await region(999, 0)));
    expect(home?.RegionID).toBe(999);
    expect(Object.keys(latencyMs)).toEqual(["999"]);
    expect(latencyMs["999"]).toBeGreaterThan(0);
    expect(latencyMs["999"]).toBeLessThan(1000);
  });

  it("measures every region, picks the fastest, and leaves out the ones whose check failed", async () => {
    const map = mapOf(await region(1, 150), await region(2, 0), await region(3, 0, 503));
    const { region: home, latencyMs } = await pickHomeRegion(map);
    expect(home?.RegionID).toBe(2);
    expect(Object.keys(latencyMs).sort()).toEqual(["1", "2"]);
    expect(latencyMs["1"]).toBeGreaterThanOrEqual(150);
    expect(latencyMs["2"]).toBeLessThan(latencyMs["1"]!);
  });

  it("keeps the map's first region home when none answers, with no latencies", async () => {
    const r = (id: number): RelayRegion => ({ RegionID: id, RegionCode: "x", RegionName: "X", Nodes: [{ Name: "n", RegionID: id, HostName: "127.0.0.1", DERPPort: 1, ForceHTTP: true }] });
    const { region: home, latencyMs } = await pickHomeRegion(mapOf(r(5), r(6)));
    expect(home?.RegionID).toBe(5);
    expect(latencyMs).toEqual({});
    expect(await pickHomeRegion({ Regions: {} })).toEqual({ region: undefined, latencyMs: {} });
  });

  it("reports at most 64 regions (what the coordinator accepts), the fastest ones", async () => {
    const regions = Array.from({ length: 70 }, (_, i) => ({ RegionID: i + 1, RegionCode: "x", RegionName: "X", Nodes: [{ Name: "n", RegionID: i + 1, HostName: "h" }] }));
    const { region: home, latencyMs } = await pickHomeRegion(mapOf(...regions), async (r) => 100 - r.RegionID);
    expect(home?.RegionID).toBe(70);
    expect(Object.keys(latencyMs)).toHaveLength(64);
    expect(latencyMs["1"]).toBeUndefined();
    expect(latencyMs["70"]).toBe(30);
  });
});
