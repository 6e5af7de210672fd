import { once } from "node:events";
import { createRequire } from "node:module";
import type { Duplex } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import SecretStream from "@hyperswarm/secret-stream";
import { DEFAULT_RECEIVE_WINDOW, MAX_DATA_PAYLOAD, type MuxStream } from "./mux.js";
import { Session } from "./session.js";
import {
  Cleanup,
  drain,
  keyPair,
  mitmPair,
  randomBytes,
  readyPair,
  sessionPair,
  sha256,
  streamError,
  tcpPair,
  writeAll,
} from "./test-helpers.js";

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const MiB = 1024 * 1024;

describe("handshake", () => {
  it("connects with the pinned key and each side learns the other's key", async () => {
    const p = await readyPair(cleanup);
    expect(p.client.remotePublicKey?.equals(p.serverKey.publicKey)).toBe(true);
    expect(p.server.remotePublicKey?.equals(p.clientKey.publicKey)).toBe(true);
    expect(p.client.publicKey.equals(p.clientKey.publicKey)).toBe(true);
    expect(p.client.isInitiator).toBe(true);
    expect(p.server.isInitiator).toBe(false);
  });

  it("fails on the initiator when the peer's key is not the pinned one", async () => {
    const transports = await tcpPair(cleanup);
    const impostor = keyPair();
    const pinned = keyPair();
    const server = Session.accept(transports[1], { keyPair: impostor, allow: () => true });
    const client = Session.initiate(transports[0], { keyPair: keyPair(), remotePublicKey: pinned.publicKey });
    await expect(client.ready).rejects.toThrow(/peer's public key did not match the pinned key/);
    const err = await client.closed;
    expect(err?.message).toContain(pinned.publicKey.toString("hex"));
    expect(err?.message).toContain(impostor.publicKey.toString("hex"));
    // the impostor never gets a working session either
    await expect(server.ready).rejects.toThrow();
    expect(await server.closed).toBeInstanceOf(Error);
  });

  it.each([
    ["synchronously", () => false],
    ["asynchronously", async () => false],
  ])("closes both sides when allow says no (%s), before any stream is served", async (_how, allow) => {
    const transports = await tcpPair(cleanup);
    const clientKey = keyPair();
    const serverKey = keyPair();
    const asked: Buffer[] = [];
    const server = Session.accept(transports[1], {
      keyPair: serverKey,
      allow: (k) => {
        asked.push(k);
        return allow();
      },
    });
    let served = 0;
    server.on("stream", () => served++);
    const client = Session.initiate(transports[0], { keyPair: clientKey, remotePublicKey: serverKey.publicKey });
    // the client opens a stream and writes at once, optimistically
    const s = client.openStream({ kind: "early" });
    const sErr = streamError(s);
    s.write("hello?");
    await expect(server.ready).rejects.toThrow(/is not allowed/);
    await expect(client.ready).rejects.toThrow(/the peer closed the session: not allowed/);
    expect((await server.closed)?.message).toMatch(/not allowed/);
    expect((await client.closed)?.message).toMatch(/not allowed/);
    expect((await sErr).message).toMatch(/session closed: .*not allowed/);
    expect(served).toBe(0);
    expect(asked).toHaveLength(1);
    expect(asked[0]!.equals(clientKey.publicKey)).toBe(true);
  });

  it("a throwing allow closes the session", async () => {
    const p = sessionPair(cleanup, await tcpPair(cleanup), {
      server: {
        allow: () => {
          throw new Error("db down");
        },
      },
    });
    await expect(p.server.ready).rejects.toThrow(/allow\(\) failed: db down/);
    await expect(p.client.ready).rejects.toThrow();
  });

  it("gives up when the peer never completes the handshake", async () => {
    const [a] = await tcpPair(cleanup); // nobody speaks on the other end
    const s = Session.accept(a, { keyPair: keyPair(), allow: () => true, handshakeTimeoutMs: 200 });
    await expect(s.ready).rejects.toThrow("session not established within 200 ms");
    expect((await s.closed)?.message).toBe("session not established within 200 ms");
  });

  it("rejects malformed keys up front", async () => {
    const [a] = await tcpPair(cleanup);
    expect(() => Session.initiate(a, { keyPair: keyPair(), remotePublicKey: Buffer.alloc(31) })).toThrow(/32 bytes/);
    expect(() => Session.initiate(a, { keyPair: { publicKey: Buffer.alloc(32), secretKey: Buffer.alloc(10) }, remotePublicKey: Buffer.alloc(32) })).toThrow(
      /64 bytes/,
    );
  });

  it("streams opened before the handshake completes carry their data once it does", async () => {
    const p = sessionPair(cleanup, await tcpPair(cleanup));
    const got = new Promise<{ header: unknown; data: string }>((resolve) => {
      p.server.on("stream", async (header, stream) => {
        resolve({ header, data: (await drain(stream)).data.toString() });
        stream.end();
      });
    });
    const s = p.client.openStream({ kind: "early", n: 1 });
    s.end("queued before ready");
    expect(await got).toEqual({ header: { kind: "early", n: 1 }, data: "queued before ready" });
    await drain(s);
  });
});

describe("streams", () => {
  it("carries 20 parallel streams of 5 MiB each way with matching checksums", async () => {
    const p = await readyPair(cleanup);
    const N = 20;
    const SIZE = 5 * MiB;
    const fromServer = new Map<number, string>();
    const serverDone: Array<Promise<void>> = [];
    p.server.on("stream", (header, stream) => {
      const h = header as { i: number; hash: string };
      serverDone.push(
        (async () => {
          const data = randomBytes(SIZE);
          fromServer.set(h.i, sha256(data));
          const [got] = await Promise.all([drain(stream), writeAll(stream, data)]);
          expect(got.bytes).toBe(SIZE);
          expect(got.hash).toBe(h.hash);
        })(),
      );
    });
    const results = await Promise.all(
      Array.from({ length: N }, async (_, i) => {
        const data = randomBytes(SIZE);
        const s = p.client.openStream({ i, hash: sha256(data) });
        const [got] = await Promise.all([drain(s), writeAll(s, data)]);
        return { i, got };
      }),
    );
    await Promise.all(serverDone);
    expect(serverDone).toHaveLength(N);
    for (const { i, got } of results) {
      expect(got.bytes).toBe(SIZE);
      expect(got.hash).toBe(fromServer.get(i));
    }
    const cs = p.client.stats();
    const ss = p.server.stats();
    expect(cs.bytesOut).toBe(N * SIZE);
    expect(cs.bytesIn).toBe(N * SIZE);
    expect(ss.bytesIn).toBe(N * SIZE);
    expect(ss.bytesOut).toBe(N * SIZE);
    // finished streams are forgotten on both sides
    await expect.poll(() => p.client.stats().streams).toBe(0);
    await expect.poll(() => p.server.stats().streams).toBe(0);
  });

  it("half-close: one side ends, the other still writes back and ends", async () => {
    const p = await readyPair(cleanup);
    p.server.on("stream", async (_h, stream) => {
      const req = await drain(stream); // the client's FIN ends our readable side...
      expect(stream.writable).toBe(true); // ...but not our writable side
      stream.write("you said: ");
      stream.end(req.data);
    });
    const s = p.client.openStream({ kind: "echo-after-eof" });
    s.end("ping");
    const finished = once(s, "finish");
    const closed = once(s, "close");
    const reply = await drain(s);
    await finished;
    expect(reply.data.toString()).toBe("you said: ping");
    await closed; // both directions done: the stream closes by itself
    expect(p.client.stats().streams).toBe(0);
  });

  it("a peer that ends a stream and destroys it at once still delivers everything it wrote", async () => {
    const p = await readyPair(cleanup);
    const payload = randomBytes(3 * 1024 * 1024);
    p.server.on("stream", (_h, stream) => {
      // As a service does when it is done: end, and destroy once flushed, whether or not the
      // client has ended its side. The client's reader is slower than the writer.
      stream.end(payload);
      stream.once("finish", () => stream.destroy());
    });
    const s = p.client.openStream({ kind: "download" });
    s.on("error", () => {});
    const got = await drain(s);
    expect(got.data.equals(payload)).toBe(true);
  });

  it("validates headers", async () => {
    const p = await readyPair(cleanup);
    expect(() => p.client.openStream({ big: "x".repeat(5000) })).toThrow(/at most 4096/);
    expect(() => p.client.openStream([] as unknown as object)).toThrow(/JSON object/);
    expect(() => p.client.openStream(null as unknown as object)).toThrow(/JSON object/);
  });

  it("both sides may open streams (odd and even ids)", async () => {
    const p = await readyPair(cleanup);
    p.client.on("stream", (h, s) => s.end(`client got ${JSON.stringify(h)}`));
    p.server.on("stream", (h, s) => s.end(`server got ${JSON.stringify(h)}`));
    const a = p.client.openStream({ from: "client" });
    const b = p.server.openStream({ from: "server" });
    a.end();
    b.end();
    expect((await drain(a)).data.toString()).toBe('server got {"from":"client"}');
    expect((await drain(b)).data.toString()).toBe('client got {"from":"server"}');
    expect(a.id % 2).toBe(1);
    expect(b.id % 2).toBe(0);
  });

  it("a stream whose reader never reads backpressures its writer without blocking other streams", async () => {
    const p = await readyPair(cleanup);
    const stalled: MuxStream[] = [];
    p.server.on("stream", (h, stream) => {
      if ((h as { kind: string }).kind === "stall") {
        stalled.push(stream); // never read
        return;
      }
      stream.pipe(stream); // echo
    });
    const a = p.client.openStream({ kind: "stall" });
    a.on("error", () => {});
    // write until the stream says stop; the peer's window plus our local buffer bound how far we get
    let accepted = 0;
    const chunk = Buffer.alloc(64 * 1024, 1);
    for (;;) {
      accepted += chunk.length;
      if (!a.write(chunk)) break;
      if (accepted > 64 * MiB) throw new Error("write() never returned false");
      // let frames go out and credit come back, as a real writer would between writes
      if (accepted % (512 * 1024) === 0) await new Promise((r) => setImmediate(r));
    }
    // after a moment nothing more moves: bounded by window + buffers
    await new Promise((r) => setTimeout(r, 50));
    expect(p.server.stats().bytesIn).toBeLessThanOrEqual(DEFAULT_RECEIVE_WINDOW);
    expect(accepted).toBeLessThanOrEqual(DEFAULT_RECEIVE_WINDOW + a.writableHighWaterMark + 2 * MAX_DATA_PAYLOAD);

    // meanwhile another stream moves 8 MiB through the same session, both ways
    const data = randomBytes(8 * MiB);
    const b = p.client.openStream({ kind: "echo" });
    const [echoed] = await Promise.all([drain(b), writeAll(b, data)]);
    expect(echoed.hash).toBe(sha256(data));

    // and once the stalled reader reads, everything written arrives
    a.end();
    const got = await drain(stalled[0]!);
    expect(got.bytes).toBe(accepted);
  });

  it("a reset stream doesn't affect the others; the reason reaches the peer", async () => {
    const p = await readyPair(cleanup);
    const serverErrors = new Map<string, Error>();
    p.server.on("stream", (h, stream) => {
      const kind = (h as { kind: string }).kind;
      if (kind === "refuse") return stream.reset("no such port");
      stream.on("error", (e) => serverErrors.set(kind, e));
      if (kind === "echo") stream.pipe(stream);
      // "victim": read it, never answer
      if (kind === "victim") stream.resume();
    });
    const refused = p.client.openStream({ kind: "refuse" });
    const refusedErr = await streamError(refused);
    expect(refusedErr.message).toBe("stream reset by peer: no such port");
    expect((refusedErr as NodeJS.ErrnoException).code).toBe("ECONNRESET");

    const victim = p.client.openStream({ kind: "victim" });
    const others = [p.client.openStream({ kind: "echo" }), p.client.openStream({ kind: "echo" })];
    victim.write("some data");
    const transfers = others.map(async (s) => {
      const data = randomBytes(2 * MiB);
      const [got] = await Promise.all([drain(s), writeAll(s, data)]);
      return got.hash === sha256(data);
    });
    victim.on("error", () => {});
    victim.destroy(new Error("user gave up"));
    expect(await Promise.all(transfers)).toEqual([true, true]);
    await expect.poll(() => serverErrors.get("victim")?.message).toBe("stream reset by peer: user gave up");
    expect(serverErrors.has("echo")).toBe(false);
  });

  it("an incoming stream nobody listens for is reset", async () => {
    const p = await readyPair(cleanup);
    const s = p.client.openStream({ kind: "nobody" });
    expect((await streamError(s)).message).toMatch(/no handler for incoming streams/);
  });
});

describe("transports", () => {
  it("runs over a UDX stream (a streamx Duplex over UDP) as well as TCP", async () => {
    // udx-native ships no types; only what this test uses
    interface UdxSocket {
      bind(port: number, host: string): void;
      address(): { port: number };
      close(): Promise<void>;
    }
    interface UdxStream {
      id: number;
      connect(socket: UdxSocket, remoteId: number, port: number, host: string): void;
      destroy(): void;
    }
    const UDX = createRequire(import.meta.url)("udx-native") as new () => {
      createSocket(): UdxSocket;
      createStream(id: number): UdxStream;
    };
    const udx = new UDX();
    const [sa, sb] = [udx.createSocket(), udx.createSocket()];
    sa.bind(0, "127.0.0.1");
    sb.bind(0, "127.0.0.1");
    const [a, b] = [udx.createStream(1), udx.createStream(2)];
    a.connect(sa, 2, sb.address().port, "127.0.0.1");
    b.connect(sb, 1, sa.address().port, "127.0.0.1");
    cleanup.add(() => Promise.all([sa.close(), sb.close()]));
    cleanup.add(() => (a.destroy(), b.destroy()));
    const p = sessionPair(cleanup, [a as unknown as Duplex, b as unknown as Duplex]);
    await Promise.all([p.client.ready, p.server.ready]);
    p.server.on("stream", (_h, s) => s.pipe(s));
    const data = randomBytes(8 * MiB);
    const s = p.client.openStream({ kind: "echo" });
    const [echo] = await Promise.all([drain(s), writeAll(s, data)]);
    expect(echo.hash).toBe(sha256(data));
  });
});

describe("closing", () => {
  async function openEchoes(n: number) {
    const p = await readyPair(cleanup);
    const serverStreams: MuxStream[] = [];
    const serverErrors: Array<Promise<Error>> = [];
    p.server.on("stream", (_h, s) => {
      serverStreams.push(s);
      serverErrors.push(streamError(s));
      s.pipe(s);
    });
    const streams = Array.from({ length: n }, (_, i) => p.client.openStream({ i }));
    const clientErrors = streams.map((s) => streamError(s));
    // make sure every stream is established on the server
    await Promise.all(
      streams.map(async (s) => {
        s.write("x");
        await once(s, "data");
      }),
    );
    return { p, streams, serverStreams, clientErrors, serverErrors };
  }

  it("closing the transport destroys every stream on both sides with an error", async () => {
    const transports = await tcpPair(cleanup);
    const p = sessionPair(cleanup, transports);
    await Promise.all([p.client.ready, p.server.ready]);
    const serverErrors: Array<Promise<Error>> = [];
    p.server.on("stream", (_h, s) => {
      serverErrors.push(streamError(s));
      s.pipe(s);
    });
    const streams = Array.from({ length: 5 }, (_, i) => p.client.openStream({ i }));
    const clientErrors = streams.map((s) => streamError(s));
    await Promise.all(streams.map(async (s) => (s.write("x"), once(s, "data"))));
    transports[0].destroy();
    for (const e of await Promise.all(clientErrors)) expect(e.message).toBe("session closed: transport closed");
    expect(serverErrors).toHaveLength(5);
    for (const e of await Promise.all(serverErrors)) expect(e.message).toMatch(/^session closed: (transport closed|the peer ended the transport)/);
    expect((await p.client.closed)?.message).toBe("transport closed");
    expect(await p.server.closed).toBeInstanceOf(Error);
    expect(() => p.client.openStream({})).toThrow(/session is closed/);
  });

  it("close() tells the peer, which closes cleanly; all streams are destroyed", async () => {
    const { p, clientErrors, serverErrors } = await openEchoes(3);
    const closeEvent = once(p.server, "close");
    p.client.close();
    expect(await p.client.closed).toBeUndefined();
    expect(await p.server.closed).toBeUndefined();
    expect(await closeEvent).toEqual([undefined]);
    for (const e of await Promise.all([...clientErrors, ...serverErrors])) expect(e.message).toBe("session closed");
  });

  it("close(err) gives the peer the reason", async () => {
    const { p, serverErrors } = await openEchoes(2);
    p.server.close(new Error("agent shutting down"));
    expect((await p.client.closed)?.message).toBe("the peer closed the session: agent shutting down");
    expect((await p.server.closed)?.message).toBe("agent shutting down");
    for (const e of await Promise.all(serverErrors)) expect(e.message).toBe("session closed: agent shutting down");
  });

  it("a dead transport is detected by keepalive timeout", async () => {
    const mitm = await mitmPair(cleanup);
    // the server would notice too, later; the client is the one expected to notice first
    const p = sessionPair(cleanup, [mitm.client, mitm.server], {
      client: { keepAliveMs: 50, timeoutMs: 300 },
      server: { keepAliveMs: 50, timeoutMs: 5000 },
    });
    let closed = false;
    p.client.on("close", () => (closed = true));
    await Promise.all([p.client.ready, p.server.ready]);
    // idle but alive: keepalives hold it up well past the timeout
    await new Promise((r) => setTimeout(r, 700));
    expect(closed).toBe(false);
    mitm.blackhole();
    expect((await p.client.closed)?.message).toMatch(/peer unresponsive: nothing received for 300 ms/);
    expect(await p.server.closed).toBeInstanceOf(Error);
  });
});

describe("on the wire", () => {
  it("a man in the middle sees no plaintext", async () => {
    const mitm = await mitmPair(cleanup);
    const p = sessionPair(cleanup, [mitm.client, mitm.server]);
    await Promise.all([p.client.ready, p.server.ready]);
    const marker = `PLAINTEXT-MARKER-${randomBytes(8).toString("hex")}`;
    p.server.on("stream", (_h, s) => s.pipe(s));
    const s = p.client.openStream({ secret: marker });
    const payload = Buffer.from(marker.repeat(10_000));
    const [echo] = await Promise.all([drain(s), writeAll(s, payload)]);
    expect(echo.data.equals(payload)).toBe(true);
    const wire = mitm.captured();
    expect(wire.length).toBeGreaterThan(2 * payload.length);
    expect(wire.includes(marker)).toBe(false);
    expect(wire.includes(marker.slice(0, 16))).toBe(false);
  });

  async function tamperedPair(toServer: (msg: Buffer, index: number) => Buffer[] | Buffer) {
    const mitm = await mitmPair(cleanup, { toServer });
    const p = sessionPair(cleanup, [mitm.client, mitm.server]);
    await Promise.all([p.client.ready, p.server.ready]);
    p.server.on("stream", (_h, s) => {
      s.on("error", () => {});
      s.resume();
    });
    return p;
  }

  it("a flipped byte after the handshake closes the session on the receiver", async () => {
    let armed = false;
    const p = await tamperedPair((msg, index) => {
      if (!armed || index < 3) return msg;
      armed = false;
      const bad = Buffer.from(msg);
      bad[3 + Math.floor((bad.length - 3) / 2)]! ^= 0x01; // inside the ciphertext, not the length
      return bad;
    });
    const s = p.client.openStream({ kind: "victim" });
    s.on("error", () => {});
    s.write("before");
    await new Promise((r) => setTimeout(r, 20));
    armed = true;
    s.write(Buffer.alloc(1000, 7));
    const err = await p.server.closed;
    expect(err?.message).toMatch(/^secure channel failed: /);
    expect(await p.client.closed).toBeInstanceOf(Error);
  });

  it("a replayed encrypted frame closes the session", async () => {
    const seen: Buffer[] = [];
    let replay = false;
    const p = await tamperedPair((msg, index) => {
      if (index >= 3) seen.push(msg);
      if (replay && seen.length >= 2) {
        replay = false;
        return [msg, seen[1]!]; // an earlier, genuine frame, again
      }
      return msg;
    });
    const s = p.client.openStream({ kind: "victim" });
    s.on("error", () => {});
    s.write("one");
    s.write("two");
    await new Promise((r) => setTimeout(r, 20));
    replay = true;
    s.write("three");
    const err = await p.server.closed;
    expect(err?.message).toMatch(/^secure channel failed: /);
    expect(await p.client.closed).toBeInstanceOf(Error);
  });
});

describe("protocol violations by an authenticated peer", () => {
  /** A peer that speaks the frame protocol by hand over a real secret-stream. */
  async function rawPeer(hello = true) {
    const [a, b] = await tcpPair(cleanup);
    const serverKey = keyPair();
    const clientKey = keyPair();
    const server = Session.accept(b as Duplex, { keyPair: serverKey, allow: () => true });
    cleanup.add(async () => {
      server.close();
      await server.closed;
    });
    server.on("stream", (_h, s) => s.on("error", () => {})); // never read
    const raw = new SecretStream(true, a, { keyPair: clientKey });
    raw.on("error", () => {});
    raw.on("data", () => {});
    await once(raw, "connect");
    const frame = (type: number, id: number, payload: Buffer = Buffer.alloc(0)) => {
      const f = Buffer.alloc(5 + payload.length);
      f[0] = type;
      f.writeUInt32BE(id, 1);
      payload.copy(f, 5);
      return f;
    };
    if (hello) raw.write(frame(0x10, 0, Buffer.from('{"v":1}')));
    return { server, raw, frame };
  }

  it("sending beyond the window closes the session", async () => {
    const { server, raw, frame } = await rawPeer();
    raw.write(frame(0x01, 1, Buffer.from("{}")));
    const chunk = Buffer.alloc(MAX_DATA_PAYLOAD, 1);
    for (let sent = 0; sent <= DEFAULT_RECEIVE_WINDOW; sent += chunk.length) raw.write(frame(0x02, 1, chunk));
    expect((await server.closed)?.message).toBe("protocol error: peer exceeded the flow-control window on stream 1");
  });

  it.each([
    ["a truncated frame", (f: FrameFn) => [Buffer.from([2, 0, 0])], /frame of 3 bytes/],
    ["an OPEN with our parity", (f: FrameFn) => [f(0x01, 2, Buffer.from("{}"))], /our id parity/],
    ["an OPEN with a non-JSON header", (f: FrameFn) => [f(0x01, 1, Buffer.from("{nope"))], /not JSON/],
    ["a reused stream id", (f: FrameFn) => [f(0x01, 3, Buffer.from("{}")), f(0x01, 1, Buffer.from("{}"))], /reused or out of order/],
    ["DATA for a stream never opened", (f: FrameFn) => [f(0x02, 9, Buffer.from("x"))], /unknown stream 9/],
    ["DATA after FIN", (f: FrameFn) => [f(0x01, 1, Buffer.from("{}")), f(0x04, 1), f(0x02, 1, Buffer.from("x"))], /DATA after FIN/],
    ["an unknown frame type", (f: FrameFn) => [f(0x09, 1)], /unknown frame type 9/],
    ["a header over 4 KiB", (f: FrameFn) => [f(0x01, 1, Buffer.from(JSON.stringify({ x: "y".repeat(4096) })))], /stream header of \d+ bytes/],
    ["a second FIN", (f: FrameFn) => [f(0x01, 1, Buffer.from("{}")), f(0x04, 1), f(0x04, 1)], /second FIN/],
    ["a DATA frame over 64 KiB", (f: FrameFn) => [f(0x01, 1, Buffer.from("{}")), f(0x02, 1, Buffer.alloc(MAX_DATA_PAYLOAD + 1))], /DATA frame of 65537 bytes/],
    ["a WINDOW that overflows", (f: FrameFn) => [f(0x01, 1, Buffer.from("{}")), f(0x03, 1, Buffer.from([0x7f, 0xff, 0xff, 0xff]))], /window overflow/],
    ["a stream frame before HELLO", (f: FrameFn) => [f(0x01, 1, Buffer.from("{}"))], /first frame was not HELLO/, false],
  ])("%s closes the session", async (_name, frames, message, hello = true) => {
    const { server, raw, frame } = await rawPeer(hello);
    for (const f of frames(frame)) raw.write(f);
    expect((await server.closed)?.message).toMatch(message);
  });
});

type FrameFn = (type: number, id: number, payload?: Buffer) => Buffer;
