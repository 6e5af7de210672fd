// The agent's node carries its relay latencies, measured at start and again periodically; it is
// sent again only when they changed notably. A stand-in coordinator (a WebSocket that records the
// nodes it is sent) and a stand-in relay region (an HTTP server whose latency check answers as
// slowly as the test says) around a real AgentNetwork.
import { createServer } from "node:http";
import pino from "pino";
import { describe, expect, it, onTestFinished } from "vitest";
import { WebSocketServer } from "ws";
import type { Node } from "../tailnet/index.js";
import { AgentNetwork } from "./network.js";

async function until(what: string, ok: () => boolean, timeoutMs = 10_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !ok(); await new Promise((r) => setTimeout(r, 20))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
  }
}

describe("the agent's relay latencies", () => {
  it("are sent at start, and again when a region's latency changed notably, not for noise", async () => {
    // A region some 50 ms away, with noise of a few ms either way.
    let delayMs = 50;
    const noise = [0, 4, -3, 2, -4, 3];
    let checks = 0;
    const http = createServer((req, res) => {
      if (req.url === "/derp/latency-check") return void setTimeout(() => res.writeHead(200).end(), delayMs + noise[checks++ % noise.length]!);
      res.writeHead(404).end();
    });
    const nodes: Node[] = [];
    const wss = new WebSocketServer({ noServer: true });
    http.on("upgrade", (req, socket, head) => {
      if (!req.url?.startsWith("/api/v2/workspaceagents/me/coordinate")) return void socket.destroy(); // no relay here
      wss.handleUpgrade(req, socket, head, (ws) => ws.on("message", (d) => nodes.push((JSON.parse(d.toString()) as { node: Node }).node)));
    });
    await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
    const port = (http.address() as { port: number }).port;
    const network = new AgentNetwork({
      coderUrl: `http://127.0.0.1:${port}`,
      token: "t",
      connection: {
        relay_map: { Regions: { "999": { RegionID: 999, RegionCode: "coder", RegionName: "Coder", Nodes: [{ Name: "999a", RegionID: 999, HostName: "127.0.0.1", DERPPort: port, ForceHTTP: true }] } } },
        disable_direct_connections: true,
      },
      logger: pino({ level: "silent" }),
      onStream: () => {},
      relayLatencyIntervalMs: 100,
    });
    onTestFinished(async () => {
      network.close();
      for (const c of wss.clients) c.terminate();
      http.closeAllConnections();
      await new Promise((r) => http.close(r));
    });
    await network.start();

    // At start: the one region, measured, and home.
    await until("the first node", () => nodes.length >= 1);
    expect(nodes[0]!.preferred_relay).toBe(999);
    expect(Object.keys(nodes[0]!.relay_latency_ms!)).toEqual(["999"]);
    expect(nodes[0]!.relay_latency_ms!["999"]).toBeGreaterThanOrEqual(45);
    expect(nodes[0]!.relay_latency_ms!["999"]).toBeLessThan(1000);

    // Several more measurements, within the noise: nothing new is sent.
    const before = checks;
    await until("more measurements", () => checks >= before + 12);
    expect(nodes).toHaveLength(1);

    // The region got notably slower: the node goes out again, the rest of it unchanged.
    delayMs = 150;
    await until("a node with the new latency", () => nodes.length >= 2);
    const updated = nodes[1]!;
    expect(updated.relay_latency_ms!["999"]).toBeGreaterThanOrEqual(145);
    expect({ ...updated, relay_latency_ms: undefined }).toEqual({ ...nodes[0]!, relay_latency_ms: undefined });
    // ...once, while it stays that slow.
    const after = checks;
    await until("more measurements", () => checks >= after + 12);
    expect(nodes).toHaveLength(2);
  });
});
