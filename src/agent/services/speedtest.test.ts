// Speed tests both ways over a loopback TCP connection that can half-close, as tunnel streams do.
import type { Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { runSpeedtest, serveSpeedtest } from "./speedtest.js";
import { socketPair } from "./testutil/pair.js";

const sockets: Socket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.destroy();
});

async function pair(): Promise<[Socket, Socket]> {
  const p = await socketPair({ allowHalfOpen: true });
  sockets.push(...p);
  return p;
}

const gbits = (bytes: number, ms: number) => ((bytes * 8) / (ms / 1000) / 1e9).toFixed(2);

describe("speedtest", () => {
  it("downloads: the agent sends for the duration, the client counts", async () => {
    const [client, agent] = await pair();
    const served = serveSpeedtest(agent, { direction: "down", duration_ms: 500 });
    const intervals: number[] = [];
    const result = await runSpeedtest(client, { direction: "down", duration_ms: 500, intervalMs: 100, onInterval: (b) => intervals.push(b) });
    await served;
    expect(result.bytes).toBeGreaterThan(0);
    expect(result.elapsedMs).toBeGreaterThanOrEqual(400);
    expect(intervals.reduce((a, b) => a + b, 0)).toBe(result.bytes);
    console.log(`down: ${gbits(result.bytes, result.elapsedMs)} Gbit/s over loopback TCP`);
  });

  it("uploads: the agent counts what arrived and the count matches what was sent", async () => {
    const [client, agent] = await pair();
    const served = serveSpeedtest(agent, { direction: "up", duration_ms: 500 });
    let sent = 0;
    const result = await runSpeedtest(client, { direction: "up", duration_ms: 500, intervalMs: 100, onInterval: (b) => (sent += b) });
    await served;
    expect(result.bytes).toBeGreaterThan(0);
    expect(result.bytes).toBe(sent);
    console.log(`up: ${gbits(result.bytes, result.elapsedMs)} Gbit/s over loopback TCP`);
  });

  it("fails the client, not the agent, when the stream goes away mid-test", async () => {
    const [client, agent] = await pair();
    const served = serveSpeedtest(agent, { direction: "down", duration_ms: 10_000 });
    const result = runSpeedtest(client, { direction: "down", duration_ms: 10_000, intervalMs: 100, onInterval: () => client.destroy() });
    await expect(result).rejects.toThrow(/closed before the test finished/);
    await served;
  });

  it("rejects a reply that is not an 8-byte count", async () => {
    const [client, agent] = await pair();
    agent.on("data", () => {});
    agent.once("end", () => agent.end("nope"));
    await expect(runSpeedtest(client, { direction: "up", duration_ms: 100 })).rejects.toThrow(/8-byte count/);
  });
});
