import { once } from "node:events";
import { createServer } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocketServer, type WebSocket } from "ws";
import { generateKeyPair, type KeyPair } from "../keys.js";
import { RelayClient, type RelayClientOptions, relayWebSocketUrl } from "./client.js";
import {
  ACCEPTOR_BIT,
  decodeFrame,
  decodePairBody,
  encodeChallenge,
  encodeOk,
  encodePairSend,
  FrameType,
  PairKind,
} from "./frames.js";
import type { RelayConn } from "./pair.js";
import type { RelayServerOptions } from "./server.js";
import { errorOf, RawPeer, readAll, startRelay, type TestRelay, turns, writeRandom } from "./testutil/index.js";

const MiB = 1024 * 1024;

let relays: TestRelay[] = [];
let clients: RelayClient[] = [];
let cleanups: Array<() => unknown> = [];

async function relayFor(opts: RelayServerOptions = {}): Promise<TestRelay> {
  const r = await startRelay(opts);
  relays.push(r);
  return r;
}

async function clientFor(url: string, opts: Partial<RelayClientOptions> = {}): Promise<RelayClient> {
  const c = new RelayClient({ url, keyPair: generateKeyPair(), ...opts });
  clients.push(c);
  // Conns still open when afterEach closes the client error with "relay client closed".
  const ignore = () => {};
  const dial = c.dial.bind(c);
  c.dial = (key) => dial(key).on("error", ignore);
  c.on("conn", (_key, stream) => stream.on("error", ignore));
  await c.connect();
  return c;
}

afterEach(async () => {
  for (const c of clients) c.close();
  for (const f of cleanups) await f();
  for (const r of relays) await r.close();
  relays = [];
  clients = [];
  cleanups = [];
});

const closed = (s: RelayConn): Promise<unknown> => (s.closed ? Promise.resolve() : once(s, "close"));

/** The next conn `c` accepts. */
function nextConn(c: RelayClient): Promise<[Buffer, RelayConn]> {
  return new Promise((resolve) => c.once("conn", (key, stream) => resolve([key, stream])));
}

describe("relayWebSocketUrl", () => {
  it("derives the /derp WebSocket URL", () => {
    expect(relayWebSocketUrl("http://127.0.0.1:3000")).toBe("ws://127.0.0.1:3000/derp");
    expect(relayWebSocketUrl("https://coder.example.com/")).toBe("wss://coder.example.com/derp");
    expect(relayWebSocketUrl("https://coder.example.com/base")).toBe("wss://coder.example.com/base/derp");
    expect(relayWebSocketUrl("wss://coder.example.com/derp")).toBe("wss://coder.example.com/derp");
    expect(() => relayWebSocketUrl("ftp://x")).toThrow(/http\(s\) or ws\(s\)/);
  });
});

describe("RelayClient connection", { timeout: 15_000 }, () => {
  it("connects and authenticates", async () => {
    const { relay, url } = await relayFor();
    const c = new RelayClient({ url, keyPair: generateKeyPair() });
    clients.push(c);
    const connected = once(c, "connected");
    await c.connect();
    await connected;
    expect(c.connected).toBe(true);
    expect(relay.hasPeer(c.publicKey)).toBe(true);
    await c.connect(); // already connected: resolves at once
  });

  it("rejects connect() when the relay refuses the key, and when nothing listens", async () => {
    const { url } = await relayFor({ authorize: () => false });
    const c = new RelayClient({ url, keyPair: generateKeyPair() });
    clients.push(c);
    await expect(c.connect()).rejects.toThrow("relay rejected authentication: key not authorized");
    expect(c.connected).toBe(false);

    const srv = createServer();
    srv.listen(0, "127.0.0.1");
    await once(srv, "listening");
    const port = (srv.address() as { port: number }).port;
    await new Promise<void>((resolve) => srv.close(() => resolve()));
    const d = new RelayClient({ url: `http://127.0.0.1:${port}`, keyPair: generateKeyPair() });
    clients.push(d);
    await expect(d.connect()).rejects.toThrow(/relay connection failed: .*ECONNREFUSED/);
  });

  it("reconnects after the connection drops, failing the conns it carried", async () => {
    const { relay, url, sockets } = await relayFor();
    const a = await clientFor(url, { reconnectMinMs: 10, reconnectMaxMs: 50 });
    const b = await clientFor(url);
    const accepted = nextConn(b);
    const conn = a.dial(b.publicKey);
    conn.write("hi");
    const [, remote] = await accepted;
    const remoteErr = errorOf(remote);
    const connErr = errorOf(conn);
    const disconnected = once(a, "disconnected");
    const reconnected = once(a, "connected");
    // Kill a's socket on the relay side, as a dead network path would.
    sockets[0]!.terminate();
    expect((await connErr).message).toMatch(/relay connection lost/);
    expect(((await disconnected)[0] as Error).message).toMatch(/relay connection/);
    expect((await remoteErr).message).toMatch(/unreachable via the relay/);
    await reconnected;
    expect(a.connected).toBe(true);
    expect(relay.hasPeer(a.publicKey)).toBe(true);
    // Conns work again over the new connection.
    const again = nextConn(b);
    const conn2 = a.dial(b.publicKey);
    conn2.end("again");
    const [, remote2] = await again;
    remote2.end();
    expect((await readAll(remote2)).bytes).toBe(5);
  });

  it("stops (and says so) when another connection with the same key replaces it", async () => {
    const { url } = await relayFor();
    const kp = generateKeyPair();
    const first = await clientFor(url, { keyPair: kp });
    const replaced = once(first, "replaced");
    const disconnected = once(first, "disconnected");
    await clientFor(url, { keyPair: kp });
    await replaced;
    expect(((await disconnected)[0] as Error).message).toMatch(/replaced/);
    expect(first.connected).toBe(false);
  });

  it("drops a relay that stops answering pings, then reconnects", async () => {
    // A fake relay that authenticates anyone and then ignores everything.
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await once(wss, "listening");
    cleanups.push(() => new Promise((resolve) => wss.close(resolve)));
    const accepted: WebSocket[] = [];
    wss.on("connection", (ws) => {
      accepted.push(ws);
      ws.send(encodeChallenge(Buffer.alloc(32)));
      ws.once("message", () => ws.send(encodeOk()));
    });
    cleanups.push(() => {
      for (const ws of accepted) ws.terminate();
    });
    const port = (wss.address() as { port: number }).port;
    const c = await clientFor(`ws://127.0.0.1:${port}`, { keepaliveIntervalMs: 20, reconnectMinMs: 10 });
    const [err] = (await once(c, "disconnected")) as [Error];
    expect(err.message).toMatch(/stopped answering pings/);
    await once(c, "connected");
  });

  it("fails dials at once while not connected", async () => {
    const c = new RelayClient({ url: "http://127.0.0.1:1", keyPair: generateKeyPair() });
    const conn = c.dial(generateKeyPair().publicKey);
    expect((await errorOf(conn)).message).toBe("relay not connected");
    expect(() => c.dial(Buffer.alloc(5))).toThrow(/32 bytes/);
  });
});

describe("RelayClient pair streams", { timeout: 30_000 }, () => {
  it("carries 50 MiB intact, then half-closes", async () => {
    const { relay, url } = await relayFor();
    const a = await clientFor(url);
    const b = await clientFor(url);
    const accepted = nextConn(b);
    const conn = a.dial(b.publicKey);
    const sent = writeRandom(conn, 50 * MiB);
    const [src, remote] = await accepted;
    expect(src.equals(a.publicKey)).toBe(true);
    expect(remote.remoteKey.equals(a.publicKey)).toBe(true);
    expect(conn.remoteKey.equals(b.publicKey)).toBe(true);
    const got = await readAll(remote);
    expect(got).toEqual({ bytes: 50 * MiB, sha256: await sent });
    // a has ended its side; b can still answer, then end.
    const reply = writeRandom(remote, 3 * MiB + 17);
    expect(await readAll(conn)).toEqual({ bytes: 3 * MiB + 17, sha256: await reply });
    await Promise.all([closed(conn), closed(remote)]);
    expect(relay.stats().frames_dropped).toBe(0);
  });

  it("carries both directions at once on one conn", async () => {
    const { url } = await relayFor();
    const a = await clientFor(url);
    const b = await clientFor(url);
    const accepted = nextConn(b);
    const conn = a.dial(b.publicKey);
    const aSent = writeRandom(conn, 16 * MiB);
    const [, remote] = await accepted;
    const bSent = writeRandom(remote, 16 * MiB);
    const [atB, atA] = await Promise.all([readAll(remote), readAll(conn)]);
    expect(atB).toEqual({ bytes: 16 * MiB, sha256: await aSent });
    expect(atA).toEqual({ bytes: 16 * MiB, sha256: await bSent });
  });

  it("keeps 50 parallel conns apart, each echoing its own data", async () => {
    const { relay, url } = await relayFor();
    const a = await clientFor(url);
    const b = await clientFor(url);
    b.on("conn", (_key, stream) => stream.pipe(stream)); // echo
    const results = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const conn = a.dial(b.publicKey);
        const size = 512 * 1024 + i * 1013;
        const [sent, got] = await Promise.all([writeRandom(conn, size, 16 * 1024 + i), readAll(conn)]);
        return got.bytes === size && got.sha256 === sent;
      }),
    );
    expect(results.every(Boolean)).toBe(true);
    expect(relay.stats().frames_dropped).toBe(0);
  });

  it("lets peers dial each other with the same conn ids", async () => {
    const { url } = await relayFor();
    const a = await clientFor(url);
    const b = await clientFor(url);
    for (const c of [a, b]) c.on("conn", (_key, stream) => stream.pipe(stream));
    const echo = async (from: RelayClient, to: RelayClient, text: string) => {
      const conn = from.dial(to.publicKey);
      conn.end(text);
      const chunks: Buffer[] = [];
      conn.on("data", (chunk: Buffer) => chunks.push(chunk));
      await once(conn, "end");
      return Buffer.concat(chunks).toString();
    };
    // Both clients' first dial uses id 1.
    expect(await Promise.all([echo(a, b, "from a"), echo(b, a, "from b")])).toEqual(["from a", "from b"]);
  });

  it("stops a writer whose reader does not read, within the windows, while others flow", async () => {
    const limit = 8 * MiB;
    const { relay, url } = await relayFor({ maxQueueBytes: limit });
    const a = await clientFor(url);
    const b = await clientFor(url);
    const c = await clientFor(url);
    const d = await clientFor(url);
    const accepted = nextConn(b);
    const conn = a.dial(b.publicKey);
    const total = 48 * MiB;
    let accepted_bytes = 0;
    const writer = (async () => {
      const chunks: Buffer[] = [];
      for (let left = total; left > 0; ) {
        const n = Math.min(64 * 1024, left);
        const buf = Buffer.alloc(n, left % 251);
        chunks.push(buf);
        left -= n;
        if (!conn.write(buf, () => (accepted_bytes += n))) await once(conn, "drain");
      }
      conn.end();
    })();
    const [, stalled] = await accepted;
    stalled.pause(); // never reads (for now)

    // A third peer's traffic flows meanwhile.
    const other = nextConn(d);
    const cd = c.dial(d.publicKey);
    const cdSent = writeRandom(cd, 16 * MiB);
    const [, atD] = await other;
    expect(await readAll(atD)).toEqual({ bytes: 16 * MiB, sha256: await cdSent });
    await turns(20);

    // a's writes stopped being accepted at about one window (4 MiB) plus stream buffers.
    expect(accepted_bytes).toBeLessThan(8 * MiB);
    expect(conn.writableNeedDrain).toBe(true);
    expect(relay.queuedBytes(b.publicKey)).toBeLessThanOrEqual(limit);
    expect(relay.stats().frames_dropped).toBe(0);

    // Once b reads, everything arrives.
    const got = await readAll(stalled);
    await writer;
    expect(got.bytes).toBe(total);
    expect(accepted_bytes).toBe(total);
    expect(relay.stats().frames_dropped).toBe(0);
  });

  it("errors promptly when dialing a key that is not connected", async () => {
    const { url } = await relayFor();
    const a = await clientFor(url);
    const absent = generateKeyPair().publicKey;
    const conns = [a.dial(absent), a.dial(absent), a.dial(absent)];
    conns[0]!.write("anyone there?");
    for (const err of await Promise.all(conns.map(errorOf))) expect(err.message).toMatch(/is unreachable via the relay/);
    expect(a.connected).toBe(true);
  });

  it("errors the other side's conns when a peer disconnects", async () => {
    const { url } = await relayFor();
    const a = await clientFor(url);
    const b = await clientFor(url);
    const accepted = nextConn(b);
    const conn = a.dial(b.publicKey);
    conn.write("x");
    const [, remote] = await accepted;
    const err = errorOf(conn);
    remote.on("error", () => {});
    b.close();
    expect((await err).message).toMatch(/is unreachable via the relay/);
  });

  it("resets: a destroyed conn errors on the other side", async () => {
    const { url } = await relayFor();
    const a = await clientFor(url);
    const b = await clientFor(url);
    const accepted = nextConn(b);
    const conn = a.dial(b.publicKey);
    conn.write("x");
    const [, remote] = await accepted;
    const err = errorOf(conn);
    remote.destroy(new Error("go away"));
    remote.on("error", () => {});
    expect((await err).message).toBe("conn reset by peer: go away");
  });

  it("resets dials to a peer that accepts no conns", async () => {
    const { url } = await relayFor();
    const a = await clientFor(url);
    const b = new RelayClient({ url, keyPair: generateKeyPair() }); // no "conn" listener
    clients.push(b);
    await b.connect();
    const conn = a.dial(b.publicKey);
    expect((await errorOf(conn)).message).toBe("conn reset by peer: not accepting conns");
  });
});

describe("RelayClient against a misbehaving peer", { timeout: 15_000 }, () => {
  async function setup() {
    const { url } = await relayFor();
    const victim = await clientFor(url);
    const raw = await RawPeer.auth(url);
    cleanups.push(() => raw.ws.terminate());
    return { victim, raw: raw as RawPeer & { keyPair: KeyPair } };
  }
  const send = (raw: RawPeer, to: Buffer, kind: PairKind, id: number, value?: number, data?: Buffer) =>
    raw.send(encodePairSend(to, kind, id, value, data));

  it("ignores malformed bodies and answers frames for unknown conns with RST", async () => {
    const { victim, raw } = await setup();
    raw.send(Buffer.concat([Buffer.from([FrameType.SEND]), victim.publicKey, Buffer.from([0x42, 1])]));
    send(raw, victim.publicKey, PairKind.DATA, 77, 0, Buffer.from("stray"));
    const reply = await raw.nextFrame();
    if (reply.type !== FrameType.RECV) throw new Error("expected RECV");
    // First the link credit for the stray bytes, then the RST for conn 77 (seen from the dialer's side).
    const bodies = [decodePairBody(reply.body)];
    const second = await raw.nextFrame();
    if (second.type !== FrameType.RECV) throw new Error("expected RECV");
    bodies.push(decodePairBody(second.body));
    expect(bodies).toEqual([
      { kind: PairKind.CREDIT, id: 0, bytes: 5 },
      { kind: PairKind.RST, id: (77 | ACCEPTOR_BIT) >>> 0, reason: "unknown conn" },
    ]);
    expect(victim.connected).toBe(true);
  });

  it("detects data the relay lost (a gap in offsets) and resets the conn", async () => {
    const { victim, raw } = await setup();
    const accepted = nextConn(victim);
    send(raw, victim.publicKey, PairKind.OPEN, 5, 1 * MiB);
    const [, conn] = await accepted;
    const err = errorOf(conn);
    send(raw, victim.publicKey, PairKind.DATA, 5, 0, Buffer.from("abc"));
    send(raw, victim.publicKey, PairKind.DATA, 5, 10, Buffer.from("def")); // bytes 3..9 never came
    expect((await err).message).toMatch(/data lost in transit at stream offset 3/);
  });

  it("resets a conn whose peer sends beyond its window", async () => {
    const { victim, raw } = await setup();
    const accepted = nextConn(victim);
    send(raw, victim.publicKey, PairKind.OPEN, 6, 1 * MiB);
    const [, conn] = await accepted;
    conn.pause();
    const err = errorOf(conn);
    const chunk = Buffer.alloc(64 * 1024);
    for (let off = 0; off <= 4 * MiB; off += chunk.length) send(raw, victim.publicKey, PairKind.DATA, 6, off, chunk);
    expect((await err).message).toMatch(/exceeded the flow-control window/);
    // Its RST reaches the raw peer.
    for (;;) {
      const f = decodeFrame(await raw.next());
      if (f.type === FrameType.RECV && decodePairBody(f.body).kind === PairKind.RST) break;
    }
  });
});
