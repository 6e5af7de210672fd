// The coordinator's checks on what peers say of themselves, over a real WebSocket and a real
// database: a malformed node is answered with an error naming the field and the connection is
// closed; nothing is stored.
import { randomUUID } from "node:crypto";
import pino from "pino";
import { describe, expect, it, onTestFinished } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { createTestDatabase } from "../../../test/helpers/database.js";
import { openDatabase } from "../../database/index.js";
import { Coordinator } from "./coordinator.js";

describe("the coordinator", () => {
  it("refuses a node with malformed relay latencies, naming the field", async () => {
    const db = await openDatabase(await createTestDatabase());
    const coordinator = new Coordinator(db.store, db.pubsub, pino({ level: "silent" }), 60_000);
    await coordinator.start();
    const agentId = randomUUID();
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    wss.on("connection", (socket) => coordinator.serveAgent(socket, agentId));
    await new Promise((r) => wss.once("listening", r));
    onTestFinished(async () => {
      await coordinator.stop();
      await new Promise((r) => wss.close(r));
      await db.close();
    });
    const url = `ws://127.0.0.1:${(wss.address() as { port: number }).port}`;
    const node = (relay_latency_ms: unknown) => JSON.stringify({ type: "node", node: { key: "A".repeat(43), preferred_relay: 999, endpoints: [], relay_latency_ms } });

    for (const [message, expected] of [
      [node({ "999": -3 }), /invalid message: node\.relay_latency_ms\.999: /],
      [node({ "999": "fast" }), /invalid message: node\.relay_latency_ms\.999: /],
      [node({ derp: 3 }), /invalid message: node\.relay_latency_ms\.derp: keys must be region IDs/],
      [node(Object.fromEntries(Array.from({ length: 65 }, (_, i) => [String(i + 1), 1]))), /invalid message: node\.relay_latency_ms: at most 64 regions/],
    ] as const) {
      const ws = new WebSocket(url);
      const errors: string[] = [];
      ws.on("message", (d) => {
        const msg = JSON.parse(d.toString()) as { type: string; message?: string };
        if (msg.type === "error") errors.push(msg.message!);
      });
      await new Promise((res) => ws.on("open", res));
      ws.send(message);
      const code = await new Promise<number>((res) => ws.on("close", (c) => res(c)));
      expect(code).toBe(1007);
      expect(errors.join("\n")).toMatch(expected);
    }
    expect(await db.store.getTailnetPeer(agentId)).toBeUndefined();
  });
});
