import { EventEmitter, once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket, WebSocketServer } from "ws";
import { generateKeyPair } from "../keys.js";
import { RelayClient, type RelayClientOptions } from "./client.js";
import {
  CloseCode,
  decodeFrame,
  decodeMeshFrame,
  encodeForward,
  encodePresence,
  encodeSend,
  FrameType,
  MAX_BODY,
  MAX_PRESENCE_KEYS,
  MeshFrameType,
  meshWebSocketServerOptions,
  relayWebSocketServerOptions,
} from "./frames.js";
import type { RelayLogger } from "./logger.js";
import { MESH_KEY_HEADER, meshKeyMatches, meshWebSocketUrl, RelayMesh, type RelayMeshOptions } from "./mesh.js";
import type { RelayConn } from "./pair.js";
import { RelayServer } from "./server.js";
import { errorOf, RawPeer, readAll, writeRandom } from "./testutil/index.js";

const MiB = 1024 * 1024;
const MESH_KEY = "s3cret-mesh-key-that-must-never-be-logged";

// ---- scaffolding: a "replica" is an http server with /derp (the relay) and /derp/mesh ----

interface LogLine {
  level: "debug" | "info" | "warn";
  obj: object;
  msg?: string;
}

const logLines: LogLine[] = [];
const logEvents = new EventEmitter();
const recordingLogger: RelayLogger = {
  debug: (obj, msg) => record({ level: "debug", obj, msg }),
  info: (obj, msg) => record({ level: "info", obj, msg }),
  warn: (obj, msg) => record({ level: "warn", obj, msg }),
};
function record(line: LogLine): void {
  logLines.push(line);
  logEvents.emit("line", line);
}

interface Replica {
  relay: RelayServer;
  mesh: RelayMesh;
  url: string;
  port: number;
  /** Emits "mesh-upgrade" (status) for every /derp/mesh upgrade request. */
  events: EventEmitter;
  meshUpgrades: number[];
  /** Server-side mesh sockets (incoming links), in accept order. */
  meshSockets: WebSocket[];
  close(): Promise<void>;
}

let replicas: Replica[] = [];
let clients: RelayClient[] = [];
let cleanups: Array<() => unknown> = [];

async function startReplica(
  opts: { meshKey?: string; port?: number; mesh?: Partial<RelayMeshOptions> } = {},
): Promise<Replica> {
  const relay = new RelayServer({ logger: recordingLogger });
  const mesh = new RelayMesh(relay, {
    meshKey: opts.meshKey ?? MESH_KEY,
    logger: recordingLogger,
    reconnectMinMs: 10,
    reconnectMaxMs: 50,
    ...opts.mesh,
  });
  const http: Server = createServer((_req, res) => {
    res.statusCode = 404;
    res.end();
  });
  const relayWss = new WebSocketServer({ noServer: true, ...relayWebSocketServerOptions });
  const meshWss = new WebSocketServer({ noServer: true, ...meshWebSocketServerOptions });
  const sockets: WebSocket[] = [];
  const meshSockets: WebSocket[] = [];
  const events = new EventEmitter();
  const meshUpgrades: number[] = [];
  http.on("upgrade", (req, socket, head) => {
    const path = new URL(req.url ?? "/", "http://replica").pathname;
    if (path === "/derp") {
      relayWss.handleUpgrade(req, socket, head, (ws) => {
        sockets.push(ws);
        relay.accept(ws, req.socket.remoteAddress);
      });
      return;
    }
    if (path === "/derp/mesh") {
      if (!mesh.authorize(req.headers[MESH_KEY_HEADER])) {
        meshUpgrades.push(401);
        socket.end("HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        events.emit("mesh-upgrade", 401);
        return;
      }
      meshWss.handleUpgrade(req, socket, head, (ws) => {
        meshSockets.push(ws);
        meshUpgrades.push(101);
        mesh.accept(ws, req.socket.remoteAddress);
        events.emit("mesh-upgrade", 101);
      });
      return;
    }
    socket.destroy();
  });
  http.listen(opts.port ?? 0, "127.0.0.1");
  await once(http, "listening");
  const port = (http.address() as AddressInfo).port;
  let closed = false;
  const r: Replica = {
    relay,
    mesh,
    url: `http://127.0.0.1:${port}`,
    port,
    events,
    meshUpgrades,
    meshSockets,
    async close() {
      if (closed) return;
      closed = true;
      mesh.close();
      relay.close();
      for (const ws of [...sockets, ...meshSockets]) ws.terminate();
      relayWss.close();
      meshWss.close();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
  replicas.push(r);
  return r;
}

/** Replicas that dial each other, once every link is up. */
async function cluster(n: number): Promise<Replica[]> {
  const rs: Replica[] = [];
  for (let i = 0; i < n; i++) rs.push(await startReplica());
  for (const r of rs) r.mesh.setPeers(rs.filter((o) => o !== r).map((o) => o.url));
  await Promise.all(rs.map((r) => until(r.mesh, ["link"], () => r.mesh.stats().mesh_peers === n - 1)));
  return rs;
}

async function clientFor(url: string, opts: Partial<RelayClientOptions> = {}): Promise<RelayClient> {
  const c = new RelayClient({ url, keyPair: generateKeyPair(), reconnectMinMs: 10, reconnectMaxMs: 50, ...opts });
  clients.push(c);
  // Conns still open when afterEach closes the client error with "relay client closed".
  const ignore = () => {};
  const dial = c.dial.bind(c);
  c.dial = (key) => dial(key).on("error", ignore);
  c.on("conn", (_key, stream) => stream.on("error", ignore));
  await c.connect();
  return c;
}

/** Resolves once cond() holds, checking now and on each of the emitter's events. */
function until(emitter: EventEmitter, events: string[], cond: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    if (cond()) {
      resolve();
      return;
    }
    const check = () => {
      if (!cond()) return;
      for (const e of events) emitter.off(e, check);
      resolve();
    };
    for (const e of events) emitter.on(e, check);
  });
}

/** For state without an event: checks cond every few milliseconds until it holds. */
async function poll(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((resolve) => setTimeout(resolve, 5));
}

/** Resolves once `mesh` can (or cannot) reach the key. */
const remote = (mesh: RelayMesh, key: Buffer, reachable = true) => until(mesh, ["remote"], () => mesh.hasRemote(key) === reachable);

/** The next conn `c` accepts. */
function nextConn(c: RelayClient): Promise<[Buffer, RelayConn]> {
  return new Promise((resolve) => c.once("conn", (key, stream) => resolve([key, stream])));
}

/** Dials `to` from `from`, sends `size` random bytes each way at once, checks both arrive intact. */
async function exchange(from: RelayClient, to: RelayClient, size: number): Promise<void> {
  const accepted = nextConn(to);
  const conn = from.dial(to.publicKey);
  const sentAB = writeRandom(conn, size);
  const [src, remoteConn] = await accepted;
  expect(src.equals(from.publicKey)).toBe(true);
  const sentBA = writeRandom(remoteConn, size + 7);
  const [atB, atA] = await Promise.all([readAll(remoteConn), readAll(conn)]);
  expect(atB).toEqual({ bytes: size, sha256: await sentAB });
  expect(atA).toEqual({ bytes: size + 7, sha256: await sentBA });
}

/** A raw mesh link into a replica, as a dialing replica would open it. */
async function rawMeshLink(r: Replica, key: string | null = MESH_KEY): Promise<RawPeer> {
  const ws = new WebSocket(meshWebSocketUrl(r.url), {
    perMessageDeflate: false,
    ...(key === null ? {} : { headers: { [MESH_KEY_HEADER]: key } }),
  });
  const peer = new RawPeer(ws);
  cleanups.push(() => ws.terminate());
  await once(ws, "open");
  return peer;
}

/** A fake replica whose /derp/mesh accepts any dialer and hands the socket to the test. */
async function fakeReplica(): Promise<{ url: string; links: WebSocket[]; events: EventEmitter }> {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, path: "/derp/mesh", ...meshWebSocketServerOptions });
  await once(wss, "listening");
  const links: WebSocket[] = [];
  const events = new EventEmitter();
  wss.on("connection", (ws) => {
    ws.binaryType = "nodebuffer";
    ws.on("error", () => {});
    links.push(ws);
    events.emit("link", ws);
  });
  cleanups.push(async () => {
    for (const ws of links) ws.terminate();
    await new Promise((resolve) => wss.close(resolve));
  });
  return { url: `http://127.0.0.1:${(wss.address() as AddressInfo).port}`, links, events };
}

const nextLink = (fake: { events: EventEmitter }): Promise<WebSocket> =>
  once(fake.events, "link").then(([ws]) => ws as WebSocket);

const closeOf = (ws: WebSocket): Promise<{ code: number; reason: string }> =>
  ws.readyState === WebSocket.CLOSED
    ? Promise.resolve({ code: 1006, reason: "" })
    : once(ws, "close").then(([code, reason]) => ({ code: code as number, reason: String(reason) }));

afterEach(async () => {
  for (const c of clients) c.close();
  for (const f of cleanups) await f();
  for (const r of replicas) await r.close();
  // Whatever happened, the mesh key never reached a log line.
  for (const line of logLines) expect(JSON.stringify(line)).not.toContain(MESH_KEY);
  replicas = [];
  clients = [];
  cleanups = [];
  logLines.length = 0;
  logEvents.removeAllListeners();
});

// ---- tests ----

describe("mesh helpers", () => {
  it("derives the mesh WebSocket URL from a replica's relay URL", () => {
    expect(meshWebSocketUrl("http://10.0.0.2:8080")).toBe("ws://10.0.0.2:8080/derp/mesh");
    expect(meshWebSocketUrl("https://replica.internal/")).toBe("wss://replica.internal/derp/mesh");
    expect(meshWebSocketUrl("https://replica.internal/base")).toBe("wss://replica.internal/base/derp/mesh");
    expect(meshWebSocketUrl("http://10.0.0.2:8080/derp")).toBe("ws://10.0.0.2:8080/derp/mesh");
    expect(meshWebSocketUrl("ws://10.0.0.2:8080/derp/mesh")).toBe("ws://10.0.0.2:8080/derp/mesh");
    expect(() => meshWebSocketUrl("ftp://x")).toThrow(/http\(s\) or ws\(s\)/);
  });

  it("compares mesh keys (constant time), never matching an empty key", () => {
    expect(meshKeyMatches(MESH_KEY, MESH_KEY)).toBe(true);
    expect(RelayMesh.meshKeyMatches(MESH_KEY, MESH_KEY)).toBe(true);
    expect(meshKeyMatches(`${MESH_KEY}x`, MESH_KEY)).toBe(false);
    expect(meshKeyMatches("short", MESH_KEY)).toBe(false);
    expect(meshKeyMatches(undefined, MESH_KEY)).toBe(false);
    expect(meshKeyMatches([MESH_KEY], MESH_KEY)).toBe(false);
    expect(meshKeyMatches("", "")).toBe(false);
    const mesh = new RelayMesh(new RelayServer(), { meshKey: MESH_KEY });
    expect(mesh.authorize(MESH_KEY)).toBe(true);
    expect(mesh.authorize("nope")).toBe(false);
    mesh.close();
    expect(() => new RelayMesh(new RelayServer(), { meshKey: "" })).toThrow(/non-empty mesh key/);
  });

  it("round-trips mesh frames and rejects malformed ones", () => {
    const k1 = Buffer.alloc(32, 1);
    const k2 = Buffer.alloc(32, 2);
    const body = Buffer.from("body");
    expect(decodeMeshFrame(encodeForward(k1, k2, body))).toEqual({ type: MeshFrameType.FORWARD, src: k1, dst: k2, body });
    expect(decodeMeshFrame(encodePresence(MeshFrameType.PRESENT, [k1, k2])[0]!)).toEqual({ type: MeshFrameType.PRESENT, keys: [k1, k2] });
    const many = Array.from({ length: MAX_PRESENCE_KEYS + 1 }, () => k1);
    expect(encodePresence(MeshFrameType.ABSENT, many).map((f) => f.length)).toEqual([1 + MAX_PRESENCE_KEYS * 32, 33]);
    expect(encodePresence(MeshFrameType.ABSENT, [])).toEqual([]);
    expect(() => decodeMeshFrame(Buffer.from([MeshFrameType.FORWARD, 1, 2]))).toThrow(/shorter than its 65-byte header/);
    expect(() => decodeMeshFrame(Buffer.from([MeshFrameType.PRESENT]))).toThrow(/1 \+ n × 32/);
    expect(() => decodeMeshFrame(Buffer.alloc(34, MeshFrameType.ABSENT))).toThrow(/1 \+ n × 32/);
    expect(() => decodeMeshFrame(Buffer.from([0x42]))).toThrow(/unknown mesh frame type 0x42/);
    expect(() => encodeForward(k1, k2, Buffer.alloc(MAX_BODY + 1))).toThrow(/exceeds/);
  });
});

describe("RelayMesh forwarding", { timeout: 20_000 }, () => {
  it("connects peers on different replicas of a fully meshed cluster, both ways, byte-exact", async () => {
    const [A, B, C] = (await cluster(3)) as [Replica, Replica, Replica];
    const a = await clientFor(A.url);
    const b = await clientFor(B.url);
    const c = await clientFor(C.url);
    await Promise.all([remote(A.mesh, c.publicKey), remote(A.mesh, b.publicKey), remote(C.mesh, b.publicKey)]);

    await exchange(a, c, 3 * MiB); // A ↔ C
    await exchange(c, b, 1 * MiB + 3); // C ↔ B
    await exchange(b, a, 2 * MiB); // B ↔ A

    for (const r of [A, B, C]) {
      const s = r.mesh.stats();
      expect(s.mesh_peers).toBe(2);
      expect(s.mesh_incoming).toBe(2);
      expect(s.remote_keys).toBe(2);
      expect(s.frames_dropped).toBe(0);
      expect(s.bytes_forwarded).toBeGreaterThan(2 * MiB);
      expect(s.bytes_received).toBeGreaterThan(2 * MiB);
      expect(r.relay.stats().frames_dropped).toBe(0);
    }
    expect(A.mesh.status().map((p) => p.connected)).toEqual([true, true]);
  });

  it("counts forwarded frames and bytes exactly, and drops what does not fit the link's queue", async () => {
    const A = await startReplica({ mesh: { maxQueueBytes: 4500 } });
    const B = await startReplica();
    A.mesh.setPeers([B.url]);
    await until(A.mesh, ["link"], () => A.mesh.stats().mesh_peers === 1);
    const p = await RawPeer.auth(A.url);
    const q = await RawPeer.auth(B.url);
    cleanups.push(() => p.ws.terminate(), () => q.ws.terminate());
    await remote(A.mesh, q.keyPair.publicKey);

    const sizes = [0, 1, 1000, 3000];
    for (const n of sizes) p.send(encodeSend(q.keyPair.publicKey, Buffer.alloc(n, n & 0xff)));
    p.send(encodeSend(q.keyPair.publicKey, Buffer.alloc(5000))); // larger than the link's queue: dropped
    for (const n of sizes) expect(await q.nextFrame()).toEqual({ type: FrameType.RECV, src: p.keyPair.publicKey, body: Buffer.alloc(n, n & 0xff) });
    const total = sizes.reduce((x, y) => x + y, 0);
    expect(A.mesh.stats()).toMatchObject({
      mesh_peers: 1,
      frames_forwarded: 4,
      bytes_forwarded: total,
      frames_dropped: 1,
      bytes_dropped: 5000,
      remote_keys: 1,
    });
    expect(B.mesh.stats()).toMatchObject({ mesh_peers: 0, mesh_incoming: 1, frames_received: 4, bytes_received: total });
    expect(q.messages).toEqual([]);
  });

  it("learns keys that connect after the mesh is up, and tells senders when they leave", async () => {
    const [A, , C] = (await cluster(3)) as [Replica, Replica, Replica];
    const a = await clientFor(A.url);
    // An unknown key is refused at once, as without a mesh.
    expect((await errorOf(a.dial(generateKeyPair().publicKey))).message).toMatch(/unreachable via the relay/);

    const kp = generateKeyPair();
    const appeared = remote(A.mesh, kp.publicKey);
    const d = await clientFor(C.url, { keyPair: kp });
    await appeared;
    expect(A.mesh.stats().remote_keys).toBe(1);

    const accepted = nextConn(d);
    const conn = a.dial(d.publicKey);
    conn.write("hello");
    const [, atD] = await accepted;
    atD.on("error", () => {});
    const err = errorOf(conn);
    const gone = remote(A.mesh, kp.publicKey, false);
    d.close();
    await gone;
    expect((await err).message).toMatch(/unreachable via the relay/);
    expect(A.mesh.stats().remote_keys).toBe(0);
    // Dialing it now fails at once.
    expect((await errorOf(a.dial(kp.publicKey))).message).toMatch(/unreachable via the relay/);
  });

  it("follows a peer that moves from one replica to another", async () => {
    const [A, B, C] = (await cluster(3)) as [Replica, Replica, Replica];
    const a = await clientFor(A.url);
    const kp = generateKeyPair();
    const onB = await clientFor(B.url, { keyPair: kp });
    await remote(A.mesh, kp.publicKey);

    // Talk to it on B.
    const accepted = nextConn(onB);
    const conn = a.dial(kp.publicKey);
    conn.write("to B");
    const [, atB] = await accepted;
    atB.on("error", () => {});
    const connErr = errorOf(conn);

    // It moves: leaves B, then connects to C.
    const gone = remote(A.mesh, kp.publicKey, false);
    onB.close();
    await gone;
    expect((await connErr).message).toMatch(/unreachable via the relay/);
    const back = remote(A.mesh, kp.publicKey);
    const onC = await clientFor(C.url, { keyPair: kp });
    await back;
    await exchange(a, onC, 1 * MiB);

    // It moves again, this time connecting to B before its connection to C is gone: the most
    // recent announcement wins, and what was open with the old connection is told it is gone.
    const accepted2 = nextConn(onC);
    const conn2 = a.dial(kp.publicKey);
    conn2.write("to C");
    const [, atC] = await accepted2;
    atC.on("error", () => {});
    const conn2Err = errorOf(conn2);
    const onB2 = await clientFor(B.url, { keyPair: kp });
    expect((await conn2Err).message).toMatch(/unreachable via the relay/);
    await exchange(a, onB2, 256 * 1024);
    // The old connection on C leaving changes nothing for the new one.
    const accepted3 = nextConn(onB2);
    const conn3 = a.dial(kp.publicKey);
    conn3.write("x");
    const [, atB2] = await accepted3;
    onC.close();
    await poll(() => A.mesh.status().find((s) => s.url === C.url)?.remote_keys === 0);
    expect(A.mesh.hasRemote(kp.publicKey)).toBe(true);
    conn3.end("y");
    conn3.resume();
    atB2.end();
    expect((await readAll(atB2)).bytes).toBe(2);
    await once(conn3, "close");
    expect(conn3.errored).toBeNull();
  });

  it("a local connection wins over one announced by another replica", async () => {
    const [A, B] = (await cluster(2)) as [Replica, Replica];
    const kp = generateKeyPair();
    await clientFor(B.url, { keyPair: kp });
    await remote(A.mesh, kp.publicKey);
    const local = await clientFor(A.url, { keyPair: kp });
    const a = await clientFor(A.url);
    const before = A.mesh.stats().frames_forwarded;
    await exchange(a, local, 64 * 1024);
    expect(A.mesh.stats().frames_forwarded).toBe(before);
  });
});

describe("RelayMesh replicas coming and going", { timeout: 20_000 }, () => {
  it("forgets a replica that dies, redials it while listed, and stops once it is not", async () => {
    const [A, B, C] = (await cluster(3)) as [Replica, Replica, Replica];
    const a = await clientFor(A.url);
    const x = await clientFor(C.url);
    const xKey = x.publicKey;
    await Promise.all([remote(A.mesh, xKey), remote(B.mesh, xKey)]);
    const accepted = nextConn(x);
    const conn = a.dial(xKey);
    conn.write("hi");
    const [, atX] = await accepted;
    atX.on("error", () => {});
    const connErr = errorOf(conn);

    // C dies.
    const downA = until(A.mesh, ["link"], () => A.mesh.stats().mesh_peers === 1);
    const downB = until(B.mesh, ["link"], () => B.mesh.stats().mesh_peers === 1);
    const port = C.port;
    await C.close();
    await Promise.all([downA, downB]);
    expect((await connErr).message).toMatch(/unreachable via the relay/);
    expect(A.mesh.hasRemote(xKey)).toBe(false);
    expect(B.mesh.hasRemote(xKey)).toBe(false);
    expect(A.mesh.stats().remote_keys).toBe(0);
    expect(A.mesh.status().find((s) => s.url === C.url)).toMatchObject({ connected: false, remote_keys: 0 });

    // It comes back at the same URL: A and B redial it, x reconnects to it, and it works again.
    const C2 = await startReplica({ port });
    C2.mesh.setPeers([A.url, B.url]);
    await Promise.all([
      until(A.mesh, ["link"], () => A.mesh.stats().mesh_peers === 2),
      until(B.mesh, ["link"], () => B.mesh.stats().mesh_peers === 2),
      remote(A.mesh, xKey),
    ]);
    await exchange(a, x, 1 * MiB);

    // Taken out of the list: the links close, and it is not dialed again.
    const gone = remote(A.mesh, xKey, false);
    A.mesh.setPeers([B.url]);
    B.mesh.setPeers([A.url]);
    A.mesh.setPeers([B.url]); // idempotent
    await gone;
    expect(A.mesh.status().map((s) => s.url)).toEqual([B.url]);
    expect(A.mesh.stats().mesh_peers).toBe(1);
    await Promise.all(C2.meshSockets.map(closeOf));
    const upgrades = C2.meshUpgrades.length;
    // Several backoff periods (at most 50 ms here) without a dial.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(C2.meshUpgrades.length).toBe(upgrades);
    expect(C2.mesh.stats().mesh_incoming).toBe(0);
    // A and B still reach each other.
    const b = await clientFor(B.url);
    await remote(A.mesh, b.publicKey);
    await exchange(a, b, 64 * 1024);
  });

  it("keeps redialing a listed replica that is not up yet", async () => {
    const A = await startReplica();
    // Reserve a port, then free it: nothing listens there for now.
    const probe = await startReplica();
    const port = probe.port;
    await probe.close();
    A.mesh.setPeers([`http://127.0.0.1:${port}`]);
    await until(logEvents, ["line"], () => logLines.filter((l) => l.msg === "relay mesh: dial failed").length >= 3);
    expect(A.mesh.status()[0]).toMatchObject({ connected: false, error: expect.stringMatching(/ECONNREFUSED/) });
    const late = await startReplica({ port });
    await until(A.mesh, ["link"], () => A.mesh.stats().mesh_peers === 1);
    const q = await clientFor(late.url);
    await remote(A.mesh, q.publicKey);
  });

  it("closes a dialed link whose replica stops answering pings, and redials", async () => {
    const A = await startReplica({ mesh: { keepaliveIntervalMs: 20 } });
    const fake = await fakeReplica(); // accepts, then says nothing
    const first = nextLink(fake);
    A.mesh.setPeers([fake.url]);
    const link = await first;
    const pinged = once(link, "message");
    const second = nextLink(fake);
    await until(A.mesh, ["link"], () => A.mesh.status()[0]?.error === "replica stopped answering pings");
    expect(decodeFrame((await pinged)[0] as Buffer).type).toBe(FrameType.PING);
    await second;
  });
});

describe("RelayMesh bad input", { timeout: 20_000 }, () => {
  it("refuses a wrong mesh key (401), warns once, retries, and forwards nothing", async () => {
    const B = await startReplica();
    const W = await startReplica({ meshKey: "not-the-mesh-key" });
    const q = await clientFor(B.url);
    const w = await clientFor(W.url);
    W.mesh.setPeers([B.url]);
    await until(B.events, ["mesh-upgrade"], () => B.meshUpgrades.filter((s) => s === 401).length >= 3);
    expect(B.meshUpgrades.every((s) => s === 401)).toBe(true);
    const warnings = logLines.filter((l) => l.level === "warn" && /refused our mesh key/.test(l.msg ?? ""));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.obj).toMatchObject({ url: B.url, status: 401 });
    expect(W.mesh.status()).toEqual([{ url: B.url, connected: false, remote_keys: 0, error: "upgrade refused with HTTP 401" }]);
    expect(B.mesh.stats().mesh_incoming).toBe(0);
    expect(W.mesh.hasRemote(q.publicKey)).toBe(false);
    expect((await errorOf(w.dial(q.publicKey))).message).toMatch(/unreachable via the relay/);
    expect(W.mesh.stats().frames_forwarded).toBe(0);
    expect(B.mesh.stats().frames_received).toBe(0);

    // Without the header at all, too.
    const ws = new WebSocket(meshWebSocketUrl(B.url));
    ws.on("error", () => {});
    const [, res] = (await once(ws, "unexpected-response")) as [unknown, { statusCode: number; resume(): void }];
    res.resume();
    expect(res.statusCode).toBe(401);
    ws.terminate();
  });

  it("speaks presence on an accepted link: a snapshot, increments, and ABSENT for unknown destinations", async () => {
    const B = await startReplica();
    const local = await RawPeer.auth(B.url);
    cleanups.push(() => local.ws.terminate());
    const link = await rawMeshLink(B);
    expect(decodeMeshFrame(await link.next())).toEqual({ type: MeshFrameType.PRESENT, keys: [local.keyPair.publicKey] });

    const later = await RawPeer.auth(B.url);
    expect(decodeMeshFrame(await link.next())).toEqual({ type: MeshFrameType.PRESENT, keys: [later.keyPair.publicKey] });
    later.ws.close();
    expect(decodeMeshFrame(await link.next())).toEqual({ type: MeshFrameType.ABSENT, keys: [later.keyPair.publicKey] });

    // A FORWARD to a local key is delivered; to an unknown one answered ABSENT, once per burst.
    const src = generateKeyPair().publicKey;
    link.send(encodeForward(src, local.keyPair.publicKey, Buffer.from("over the mesh")));
    expect(await local.nextFrame()).toEqual({ type: FrameType.RECV, src, body: Buffer.from("over the mesh") });
    const unknown = generateKeyPair().publicKey;
    for (let i = 0; i < 5; i++) link.send(encodeForward(src, unknown, Buffer.from("nobody")));
    link.send(Buffer.from([FrameType.PING, 9, 9]));
    let absents = 0;
    for (;;) {
      const m = await link.next();
      if (m[0] === FrameType.PONG) {
        expect(m).toEqual(Buffer.from([FrameType.PONG, 9, 9]));
        break;
      }
      expect(decodeMeshFrame(m)).toEqual({ type: MeshFrameType.ABSENT, keys: [unknown] });
      absents++;
    }
    // Once per key and turn of the event loop (the five may arrive over more than one turn).
    expect(absents).toBeGreaterThanOrEqual(1);
    expect(absents).toBeLessThanOrEqual(5);
    expect(link.messages).toEqual([]);
  });

  it("closes an accepted link that sends malformed frames, and only that link", async () => {
    const B = await startReplica();
    const local = await RawPeer.auth(B.url);
    cleanups.push(() => local.ws.terminate());
    const cases: Array<[string, Buffer | string, number]> = [
      ["text", "hello", CloseCode.INVALID_DATA],
      ["unknown type", Buffer.from([0x42, 1, 2, 3]), CloseCode.INVALID_DATA],
      ["empty", Buffer.alloc(0), CloseCode.INVALID_DATA],
      ["short FORWARD", Buffer.from([MeshFrameType.FORWARD, 1, 2, 3]), CloseCode.INVALID_DATA],
      ["PRESENT from the dialer", encodePresence(MeshFrameType.PRESENT, [Buffer.alloc(32)])[0]!, CloseCode.INVALID_DATA],
      ["a peer-protocol SEND", encodeSend(local.keyPair.publicKey, Buffer.from("x")), CloseCode.INVALID_DATA],
      ["oversized PING", Buffer.alloc(100, FrameType.PING), CloseCode.INVALID_DATA],
      ["FORWARD beyond maxPayload", Buffer.alloc(65 + MAX_BODY + 1024 * 1024, MeshFrameType.FORWARD), CloseCode.TOO_BIG],
    ];
    const good = await rawMeshLink(B);
    for (const [name, frame, code] of cases) {
      const bad = await rawMeshLink(B);
      bad.send(frame);
      expect({ name, code: (await bad.closed).code }).toEqual({ name, code });
    }
    // The good link still works.
    const src = generateKeyPair().publicKey;
    good.send(encodeForward(src, local.keyPair.publicKey, Buffer.from("still here")));
    expect(await local.nextFrame()).toEqual({ type: FrameType.RECV, src, body: Buffer.from("still here") });
    expect(B.mesh.stats().mesh_incoming).toBe(1);
  });

  it("closes a dialed link whose replica sends malformed frames, forgets its keys, and redials", async () => {
    const A = await startReplica();
    const fake = await fakeReplica();
    const first = nextLink(fake);
    A.mesh.setPeers([fake.url]);
    const link = await first;
    const k = generateKeyPair().publicKey;
    link.send(encodePresence(MeshFrameType.PRESENT, [k])[0]!);
    await remote(A.mesh, k);
    // A FORWARD goes out for it.
    const p = await RawPeer.auth(A.url);
    cleanups.push(() => p.ws.terminate());
    p.send(encodeSend(k, Buffer.from("to the fake")));
    expect(decodeMeshFrame((await once(link, "message"))[0] as Buffer)).toEqual({
      type: MeshFrameType.FORWARD,
      src: p.keyPair.publicKey,
      dst: k,
      body: Buffer.from("to the fake"),
    });

    const bad: Array<Buffer | string> = [
      Buffer.alloc(33 + 5, MeshFrameType.PRESENT), // not 1 + n × 32
      Buffer.from([MeshFrameType.ABSENT]), // no keys
      encodeForward(k, k, Buffer.from("x")), // FORWARD the wrong way
      "text",
      Buffer.from([0x99]),
    ];
    let current = link;
    let firstDrop = true;
    for (const frame of bad) {
      current.send(encodePresence(MeshFrameType.PRESENT, [k])[0]!);
      await remote(A.mesh, k);
      const next = nextLink(fake);
      const gone = remote(A.mesh, k, false);
      current.send(frame);
      expect((await closeOf(current)).code).toBe(CloseCode.INVALID_DATA);
      await gone;
      // The local peer that sent to k hears it is gone (once: it has not sent to k since).
      if (firstDrop) expect(await p.nextFrame()).toEqual({ type: FrameType.PEER_GONE, key: k });
      firstDrop = false;
      current = await next; // redialed
    }
    // ABSENT on a good link removes the key and tells the sender.
    current.send(encodePresence(MeshFrameType.PRESENT, [k])[0]!);
    await remote(A.mesh, k);
    const peerGone = p.nextFrame();
    p.send(encodeSend(k, Buffer.from("again")));
    await once(current, "message");
    current.send(encodePresence(MeshFrameType.ABSENT, [k])[0]!);
    expect(await peerGone).toEqual({ type: FrameType.PEER_GONE, key: k });
    expect(A.mesh.hasRemote(k)).toBe(false);
  });

  it("ignores invalid replica URLs and keeps the valid ones", async () => {
    const A = await startReplica();
    const B = await startReplica();
    A.mesh.setPeers(["not a url", "ftp://x", B.url]);
    await until(A.mesh, ["link"], () => A.mesh.stats().mesh_peers === 1);
    expect(A.mesh.status().map((s) => s.url)).toEqual([B.url]);
    expect(logLines.filter((l) => l.msg === "relay mesh: ignoring an invalid replica relay URL")).toHaveLength(2);
  });

  it("refuses links after close() and detaches from the relay", async () => {
    const [A, B] = (await cluster(2)) as [Replica, Replica];
    const q = await clientFor(B.url);
    await remote(A.mesh, q.publicKey);
    A.mesh.close();
    expect(A.relay.onUnknownDestination).toBeUndefined();
    expect(A.mesh.stats()).toMatchObject({ mesh_peers: 0, mesh_incoming: 0, remote_keys: 0 });
    const link = await rawMeshLink(A);
    expect((await link.closed).code).toBe(CloseCode.GOING_AWAY);
    const a = await clientFor(A.url);
    expect((await errorOf(a.dial(q.publicKey))).message).toMatch(/unreachable via the relay/);
  });
});
