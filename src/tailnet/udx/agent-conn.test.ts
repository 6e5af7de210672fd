// AgentConn's direct paths over UDP and TCP side by side: a hand-built agent (relay client, TCP
// listener, UdxListener, all sessions accepted as the real agent does) and a coordination stand-in
// that announces it. The relay is real (testutil); everything is on 127.0.0.1.
import { createHash, randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { createServer, type Server, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { AgentConn, type Coordination } from "../agent-conn.js";
import type { Node, PeerInfo } from "../coordination/protocol.js";
import { encodeKey, generateKeyPair } from "../keys.js";
import { RelayClient } from "../relay/index.js";
import { startRelay } from "../relay/testutil/index.js";
import type { RelayMap } from "../relay-map.js";
import { ResumableStreams, Session } from "../session/index.js";
import { UdxListener } from "./index.js";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

class FakeCoordination extends EventEmitter implements Coordination {
  readonly peers = new Map<string, PeerInfo>();
  self: Node | undefined;
  setNode(node: Node): void {
    this.self = node;
  }
  announce(node: Node): void {
    this.peers.set("agent", { id: "agent", kind: "agent", node });
    this.emit("peers", this.peers);
  }
  close(): void {}
}

/** What the real agent does with its network, minus coderd: accept sessions on every path, echo every stream. */
async function startAgent(relayUrl: string, opts: { resumable?: boolean } = {}) {
  const keyPair = generateKeyPair();
  const resumable = opts.resumable === false ? undefined : new ResumableStreams();
  const sessions: Array<{ via: string; session: Session; closed: boolean; transport: unknown }> = [];
  const accept = (transport: Duplex | Parameters<typeof Session.accept>[0], via: string, onReady?: () => void) => {
    transport.on("error", () => {});
    const session = Session.accept(transport, { keyPair, allow: () => true, resumable });
    const entry = { via, session, closed: false, transport };
    sessions.push(entry);
    session.on("close", () => (entry.closed = true));
    session.ready.then(() => onReady?.(), () => {});
    session.on("stream", (_h, s) => {
      s.on("error", () => {});
      s.pipe(s);
    });
  };
  const relay = new RelayClient({ url: relayUrl, keyPair });
  relay.on("conn", (_k, stream) => accept(stream, "relay"));
  await relay.connect();
  const tcp: Server = createServer((socket) => accept(socket, "tcp"));
  await new Promise<void>((resolve) => tcp.listen(0, "127.0.0.1", resolve));
  const udp = UdxListener.listen({ host: "127.0.0.1" });
  const udpConnections: unknown[] = [];
  udp.on("connection", (stream) => {
    udpConnections.push(stream);
    accept(stream, "udp", () => udp.established(stream));
  });
  cleanups.push(async () => {
    for (const { session } of sessions) session.close();
    await Promise.all(sessions.map((s) => s.session.closed));
    relay.close();
    tcp.close();
    await udp.close();
  });
  return {
    keyPair,
    sessions,
    udpConnections,
    udp,
    tcpEndpoint: `tcp:127.0.0.1:${(tcp.address() as { port: number }).port}`,
    udpEndpoint: `udp:127.0.0.1:${udp.port}`,
    /** A TCP port nobody listens on. */
    async deadTcpEndpoint() {
      const s = createServer();
      await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
      const port = (s.address() as { port: number }).port;
      await new Promise((r) => s.close(r));
      return `tcp:127.0.0.1:${port}`;
    },
  };
}

async function setup(
  endpoints: (agent: Awaited<ReturnType<typeof startAgent>>) => Promise<string[]> | string[],
  opts: { blockDirect?: boolean; resumable?: boolean } = {},
) {
  const relay = await startRelay();
  cleanups.push(() => relay.close());
  const agent = await startAgent(relay.url, { resumable: opts.resumable });
  const port = Number(new URL(relay.url).port);
  const relayMap: RelayMap = {
    Regions: { "999": { RegionID: 999, RegionCode: "test", RegionName: "test", Nodes: [{ Name: "999a", RegionID: 999, HostName: "127.0.0.1", DERPPort: port, ForceHTTP: true }] } },
  };
  const coordination = new FakeCoordination();
  coordination.announce({ key: encodeKey(agent.keyPair.publicKey), preferred_relay: 999, endpoints: await endpoints(agent) });
  const conn = new AgentConn(coordination, relayMap, { blockDirect: opts.blockDirect ?? false, timeoutMs: 5_000 });
  cleanups.push(() => conn.close());
  return { agent, conn };
}

function untilDirect(conn: AgentConn, ms = 5_000): Promise<void> {
  if (conn.path === "direct") return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no direct path")), ms);
    conn.on("path", (p) => {
      if (p === "direct") {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

async function echo(conn: AgentConn, bytes: number): Promise<{ ok: boolean; path: string }> {
  const data = randomBytes(bytes);
  const { stream, path } = await conn.openStream({ service: "echo" });
  const h = createHash("sha256");
  const done = (async () => {
    for await (const c of stream as AsyncIterable<Buffer>) h.update(c);
  })();
  stream.end(data);
  await done;
  return { ok: h.digest("hex") === createHash("sha256").update(data).digest("hex"), path };
}

describe("AgentConn direct paths over UDP", () => {
  it("goes direct over UDP when the agent's TCP endpoint does not answer", async () => {
    const { agent, conn } = await setup(async (a) => [await a.deadTcpEndpoint(), a.udpEndpoint]);
    await conn.connect();
    await untilDirect(conn);
    expect(conn.directTransport).toBe("udp");
    expect(await echo(conn, 4 * 1024 * 1024)).toEqual({ ok: true, path: "direct" });
    expect((await conn.ping()).path).toBe("direct");
    expect(agent.udp.stats).toMatchObject({ pending: 0, established: 1 });
  });

  it("tries TCP and UDP at once and takes TCP when both work; the UDP session is closed", async () => {
    const { agent, conn } = await setup((a) => [a.udpEndpoint, a.tcpEndpoint]);
    await conn.connect();
    await untilDirect(conn);
    expect(conn.directTransport).toBe("tcp");
    expect(await echo(conn, 1024 * 1024)).toEqual({ ok: true, path: "direct" });
    // on the agent: the relay's session, TCP's, and UDP's (tried, then closed by the client)
    const deadline = Date.now() + 5_000;
    const openUdp = () => agent.sessions.filter((s) => s.via === "udp" && !s.closed);
    while ((openUdp().length || agent.udp.stats.established + agent.udp.stats.pending > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(agent.udpConnections).toHaveLength(1);
    expect(openUdp()).toHaveLength(0);
    expect(agent.udp.stats).toMatchObject({ pending: 0, established: 0 });
    expect(agent.sessions.filter((s) => s.via === "tcp" && !s.closed)).toHaveLength(1);
  });

  it("takes UDP after a grace period when TCP connects but its session never gets ready", async () => {
    const accepted: Socket[] = [];
    const silent = createServer((socket) => accepted.push(socket.on("error", () => {}))); // accepts, never speaks
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => {
      for (const s of accepted) s.destroy();
      return new Promise((r) => silent.close(r));
    });
    const silentEndpoint = `tcp:127.0.0.1:${(silent.address() as { port: number }).port}`;
    const { conn } = await setup((a) => [silentEndpoint, a.udpEndpoint]);
    const t0 = Date.now();
    await conn.connect();
    await untilDirect(conn, 8_000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1_900);
    expect(conn.directTransport).toBe("udp");
    expect(await echo(conn, 256 * 1024)).toEqual({ ok: true, path: "direct" });
  });

  it("with direct blocked, stays on the relay and never sends a HELLO", async () => {
    const { agent, conn } = await setup((a) => [a.tcpEndpoint, a.udpEndpoint], { blockDirect: true });
    await conn.connect();
    expect(await echo(conn, 64 * 1024)).toEqual({ ok: true, path: "relay" });
    await new Promise((r) => setTimeout(r, 200));
    expect(conn.path).toBe("relay");
    expect(conn.directTransport).toBeUndefined();
    expect(agent.udpConnections).toHaveLength(0);
    expect(agent.sessions.map((s) => s.via)).toEqual(["relay"]);
  });
});

describe("AgentConn when the direct path dies", () => {
  it.each(["tcp", "udp"] as const)("a stream on the %s path moves to the relay and goes on: every byte once, in order", async (transport) => {
    const { agent, conn } = await setup((a) => [transport === "tcp" ? a.tcpEndpoint : a.udpEndpoint]);
    await conn.connect();
    await untilDirect(conn);
    expect(conn.directTransport).toBe(transport);
    const { stream, path } = await conn.openStream({ service: "echo" });
    expect(path).toBe("direct");
    const data = randomBytes(4 * 1024 * 1024);
    const h = createHash("sha256");
    let got = 0;
    const resumed = new Promise<string>((resolve) => conn.once("resumed", resolve));
    const done = new Promise<void>((resolve, reject) => {
      stream.on("data", (c: Buffer) => {
        h.update(c);
        got += c.length;
        // The network breaks under the stream, a quarter of the way: the agent's end of the path is gone.
        if (got - c.length < data.length / 4 && got >= data.length / 4) {
          const direct = agent.sessions.filter((s) => s.via === transport);
          expect(direct).toHaveLength(1);
          (direct[0]!.transport as { destroy(): void }).destroy();
        }
      });
      stream.once("end", resolve);
      stream.once("error", reject);
    });
    for (let at = 0; at < data.length; at += 64 * 1024) {
      if (!stream.write(data.subarray(at, at + 64 * 1024))) await new Promise((r) => stream.once("drain", r));
    }
    stream.end();
    await done;
    expect(await resumed).toBe("relay");
    expect(got).toBe(data.length);
    expect(h.digest("hex")).toBe(createHash("sha256").update(data).digest("hex"));
    expect(conn.path).toBe("relay");
    expect(await echo(conn, 256 * 1024)).toEqual({ ok: true, path: "relay" });
    expect((await conn.ping()).path).toBe("relay");
  });

  it("a stream the agent no longer has (it restarted) fails with the reason; new streams take the relay", async () => {
    const { agent, conn } = await setup((a) => [a.tcpEndpoint], { resumable: false });
    await conn.connect();
    await untilDirect(conn);
    const { stream: onDirect, path } = await conn.openStream({ service: "echo" });
    expect(path).toBe("direct");
    let failed: Error | undefined;
    onDirect.on("error", (err) => (failed = err));
    const ended = new Promise<void>((resolve) => onDirect.once("close", () => resolve()));
    const back = new Promise<string>((resolve) => conn.once("path", resolve));
    onDirect.write("x");
    await new Promise((r) => onDirect.once("data", r));
    const direct = agent.sessions.filter((s) => s.via === "tcp");
    expect(direct).toHaveLength(1);
    (direct[0]!.transport as Socket).destroy();
    expect(await back).toBe("relay");
    await ended;
    // An error, not a quiet close: `coder ssh` reports it ("lost the connection to the agent: …").
    expect(failed?.message).toBe("stream reset by peer: no such stream to resume");
    expect(conn.path).toBe("relay");
    expect(await echo(conn, 256 * 1024)).toEqual({ ok: true, path: "relay" });
    expect((await conn.ping()).path).toBe("relay");
  });
});
