import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { checkAccessUrl, checkDatabase, checkDerp, checkProvisionerDaemons, DAEMON_STALE_AFTER_MS, median, withTimeout } from "./checks.js";

async function httpServer(handler: (res: import("node:http").ServerResponse) => void): Promise<{ url: string; close: () => Promise<void> }> {
  const srv = createServer((_req, res) => handler(res));
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => srv.close(() => r())) };
}

/** A port nothing listens on. */
async function deadPort(): Promise<number> {
  const s = await httpServer(() => {});
  const port = Number(new URL(s.url).port);
  await s.close();
  return port;
}

describe("health checks", () => {
  it("median", () => {
    expect(median([])).toBe(0);
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it("withTimeout rejects a promise that never settles", async () => {
    await expect(withTimeout(new Promise(() => {}), 20, "x")).rejects.toThrow(/within 20 ms/);
  });

  it("database: ok, EDB02 above the threshold, EDB01 when a ping fails or hangs", async () => {
    const ok = await checkDatabase(async () => {}, 1_000);
    expect(ok).toMatchObject({ severity: "ok", healthy: true, reachable: true, warnings: [] });
    expect(ok.pings_ms).toHaveLength(5);

    const slow = await checkDatabase(() => new Promise((r) => setTimeout(r, 5)), 1);
    expect(slow).toMatchObject({ severity: "warning", healthy: true });
    expect(slow.warnings.map((w) => w.code)).toEqual(["EDB02"]);

    let n = 0;
    const failing = await checkDatabase(async () => {
      if (++n === 3) throw new Error("connection refused");
    }, 1_000);
    expect(failing).toMatchObject({ severity: "error", healthy: false, reachable: false });
    expect(failing.warnings[0]!.code).toBe("EDB01");
    expect(failing.error).toContain("connection refused");

    const hung = await checkDatabase(() => new Promise(() => {}), 1_000, { timeoutMs: 30 });
    expect(hung.warnings[0]!.code).toBe("EDB01");
  });

  it("access URL: 200 OK, EACS02 on a wrong answer, EACS01 when unreachable", async () => {
    const good = await httpServer((res) => res.end("OK"));
    const wrong = await httpServer((res) => res.writeHead(502).end("bad gateway"));
    try {
      expect(await checkAccessUrl(good.url)).toMatchObject({ severity: "ok", status_code: 200, healthz_response: "OK", reachable: true });
      const w = await checkAccessUrl(wrong.url);
      expect(w).toMatchObject({ severity: "error", status_code: 502, reachable: true });
      expect(w.warnings[0]!.code).toBe("EACS02");
    } finally {
      await good.close();
      await wrong.close();
    }
    const dead = await checkAccessUrl(`http://127.0.0.1:${await deadPort()}`, 2_000);
    expect(dead).toMatchObject({ severity: "error", reachable: false });
    expect(dead.warnings[0]!.code).toBe("EACS01");
    expect((await checkAccessUrl("not a url")).warnings[0]!.code).toBe("EACS01");
  });

  it("derp: per-region latency, EDERP01 for an unreachable region", async () => {
    const relay = await httpServer((res) => res.end(""));
    const region = (id: number, port: number) => ({ RegionID: id, RegionCode: `r${id}`, RegionName: `R${id}`, Nodes: [{ Name: `${id}a`, RegionID: id, HostName: "127.0.0.1", DERPPort: port, ForceHTTP: true }] });
    try {
      const map = { Regions: { "1": region(1, Number(new URL(relay.url).port)), "2": region(2, await deadPort()) } } as never;
      const r = await checkDerp(map, 2_000);
      expect(r.severity).toBe("warning");
      expect(r.regions["1"]).toMatchObject({ healthy: true, latency_ms: expect.any(Number) });
      expect(r.regions["2"]).toMatchObject({ healthy: false, error: expect.any(String) });
      expect(r.warnings.map((w) => w.code)).toEqual(["EDERP01"]);
      const none = await checkDerp({ Regions: {} } as never);
      expect(none.warnings.map((w) => w.code)).toEqual(["EDERP02"]);
    } finally {
      await relay.close();
    }
  });

  it("provisioner daemons: EPD01, EPD02 stale, EPD03 version mismatch", () => {
    const now = Date.now();
    const d = (name: string, seenAgoMs: number, version = "v1") => ({ id: name, name, organization_id: "o", version, last_seen_at: new Date(now - seenAgoMs), disconnected_at: null });
    expect(checkProvisionerDaemons([d("a", 1000)], 3, "v1", now)).toMatchObject({ severity: "ok", connected: 1, pending_jobs: 3 });
    expect(checkProvisionerDaemons([], 0, "v1", now).severity).toBe("ok");
    const none = checkProvisionerDaemons([d("old", DAEMON_STALE_AFTER_MS + 1000)], 2, "v1", now);
    expect(none).toMatchObject({ severity: "error", healthy: false, connected: 0 });
    expect(none.warnings.map((w) => w.code)).toEqual(["EPD01", "EPD02"]);
    const mixed = checkProvisionerDaemons([d("a", 0, "v0.9"), d("b", DAEMON_STALE_AFTER_MS + 1)], 0, "v1", now);
    expect(mixed.severity).toBe("warning");
    expect(mixed.warnings.map((w) => w.code).sort()).toEqual(["EPD02", "EPD03"]);
  });
});
