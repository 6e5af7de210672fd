// Resumable streams: a stream whose session loses its transport moves to a new session between
// the same two keys, and the reader on each side sees every byte once, in order, with its end.
import { once } from "node:events";
import type { Duplex } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import type { KeyPair } from "../keys.js";
import { DEFAULT_RECEIVE_WINDOW, type MuxStream } from "./mux.js";
import { ResumableStreams } from "./resumable-streams.js";
import { Session } from "./session.js";
import { Cleanup, drain, keyPair, mitmPair, randomBytes, sha256, streamError, tcpPair, writeAll } from "./test-helpers.js";

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const MiB = 1024 * 1024;

/** A client and an agent-like acceptor that keep their keys (and the acceptor its streams) across sessions. */
function peers(opts: { resumeTimeoutMs?: number } = {}) {
  const clientKey = keyPair();
  const serverKey = keyPair();
  const registry = new ResumableStreams();
  const served: MuxStream[] = [];
  let serve: (header: Record<string, unknown>, s: MuxStream) => void = (_h, s) => s.pipe(s);
  const track = (s: Session) =>
    cleanup.add(async () => {
      s.close();
      await s.closed;
    });
  return {
    registry,
    served,
    onStream(fn: typeof serve) {
      serve = fn;
    },
    /** A session pair over the given transports (client side first). */
    connect(transports: [Duplex, Duplex], o: { client?: Partial<{ timeoutMs: number; keepAliveMs: number }>; clientKey?: KeyPair } = {}) {
      const server = Session.accept(transports[1], { keyPair: serverKey, allow: () => true, resumable: registry, resumeTimeoutMs: opts.resumeTimeoutMs });
      server.on("stream", (h, s) => {
        s.on("error", () => {}); // the tests look at the opener's side
        served.push(s);
        serve(h, s);
      });
      const client = Session.initiate(transports[0], {
        keyPair: o.clientKey ?? clientKey,
        remotePublicKey: serverKey.publicKey,
        resumeTimeoutMs: opts.resumeTimeoutMs,
        ...o.client,
      });
      track(server);
      track(client);
      return { client, server };
    },
  };
}

describe("resumable streams", () => {
  it("a 6 MiB echo survives its TCP transport being cut twice mid-transfer: every byte once, in order, then the end", async () => {
    const p = peers();
    let transports = await tcpPair(cleanup);
    const first = p.connect(transports);
    await first.client.ready;
    const stream = first.client.openStream({ service: "echo" }, { resumable: true });
    expect(stream.resumable).toBe(true);
    const suspensions: string[] = [];
    stream.on("suspend", (err: Error) => {
      suspensions.push(err.message);
      void tcpPair(cleanup).then((t) => {
        transports = t;
        p.connect(t).client.resumeStream(stream);
      });
    });
    const data = randomBytes(6 * MiB);
    const echoed = drain(stream);
    const writing = writeAll(stream, data, 64 * 1024);
    let cuts = 0;
    let got = 0;
    let mostKept = 0;
    // Cut whichever transport carries the stream after 1.5 and 3 MiB came back.
    stream.on("data", (c: Buffer) => {
      got += c.length;
      const kept = stream.unackedBytes;
      if (kept !== stream.sentBytes - stream.ackedBytes) throw new Error(`kept ${kept} bytes for ${stream.sentBytes - stream.ackedBytes} unacknowledged`);
      mostKept = Math.max(mostKept, kept);
      if ((cuts === 0 && got > 1.5 * MiB) || (cuts === 1 && got > 3 * MiB)) {
        cuts++;
        transports[0].destroy();
      }
    });
    await writing;
    const out = await echoed;
    expect(cuts).toBe(2);
    expect(suspensions).toHaveLength(2);
    expect(suspensions[0]).toMatch(/^session closed: /);
    expect(out.bytes).toBe(data.length);
    expect(out.hash).toBe(sha256(data));
    // What is kept for resending is bounded by the peer's window (acknowledged bytes are dropped).
    expect(mostKept).toBeGreaterThan(0);
    expect(mostKept).toBeLessThanOrEqual(DEFAULT_RECEIVE_WINDOW);
    // The acceptor's copy moved too: one stream, now finished and forgotten.
    expect(p.served).toHaveLength(1);
    await waitFor(() => p.registry.size === 0);
  });

  it("many tiny writes (a typing user, a chatty protocol) resume as well", async () => {
    const p = peers();
    const transports = await tcpPair(cleanup);
    const stream = p.connect(transports).client.openStream({}, { resumable: true });
    stream.on("suspend", () => void tcpPair(cleanup).then((t) => p.connect(t).client.resumeStream(stream)));
    const pieces = Array.from({ length: 30_000 }, (_, i) => Buffer.from(`${i % 10}key${i % 7}`));
    const expected = Buffer.concat(pieces);
    const echoed = drain(stream);
    let got = 0;
    stream.on("data", (c: Buffer) => (got += c.length));
    const write = async (from: number, to: number) => {
      for (let i = from; i < to; i++) if (!stream.write(pieces[i])) await once(stream, "drain");
    };
    await write(0, 15_000);
    await waitFor(() => got > 1000);
    transports[0].destroy();
    await write(15_000, 30_000);
    stream.end();
    const out = await echoed;
    expect(out.bytes).toBe(expected.length);
    expect(out.hash).toBe(sha256(expected));
  });

  it("a stream whose OPEN died with its session starts on the next one, once", async () => {
    const p = peers();
    const headers: Array<Record<string, unknown>> = [];
    p.onStream((h, s) => {
      headers.push(h);
      s.pipe(s);
    });
    const transports = await tcpPair(cleanup);
    const first = p.connect(transports);
    // Opened and written before the handshake; the transport dies before anything was sent.
    const stream = first.client.openStream({ service: "echo" }, { resumable: true });
    stream.on("suspend", () => void tcpPair(cleanup).then((t) => p.connect(t).client.resumeStream(stream)));
    const echoed = drain(stream);
    stream.end("hello, again");
    transports[0].destroy();
    expect((await echoed).data.toString()).toBe("hello, again");
    expect(headers).toEqual([{ service: "echo" }]);
  });

  it("bytes lost in a transport that went silent are sent again, and the FIN with them", async () => {
    const p = peers();
    const mitm = await mitmPair(cleanup);
    // The client notices the dead path within 300 ms; the acceptor would only after 5 s.
    const first = p.connect([mitm.client, mitm.server], { client: { keepAliveMs: 50, timeoutMs: 300 } });
    await first.client.ready;
    let hashed: Promise<{ bytes: number; hash: string }> | undefined;
    let firstMiB!: () => void;
    const gotFirstMiB = new Promise<void>((r) => (firstMiB = r));
    p.onStream((_h, s) => {
      let n = 0;
      s.on("data", (c: Buffer) => (n += c.length) >= MiB && firstMiB());
      hashed = drain(s).then((r) => {
        s.end(`${r.bytes} ${r.hash}`);
        return r;
      });
    });
    const stream = first.client.openStream({}, { resumable: true });
    const data = randomBytes(3 * MiB);
    const reply = drain(stream);
    stream.write(data.subarray(0, MiB));
    await gotFirstMiB;
    // Everything written from here on, and the FIN, vanish with the path.
    mitm.blackhole();
    stream.end(data.subarray(MiB));
    const [err] = (await once(stream, "suspend")) as [Error];
    expect(err.message).toMatch(/peer unresponsive/);
    expect(first.server.isClosing).toBe(false); // the acceptor still thinks its session is fine
    const second = p.connect(await tcpPair(cleanup));
    second.client.resumeStream(stream);
    expect((await reply).data.toString()).toBe(`${data.length} ${sha256(data)}`);
    expect((await hashed!).bytes).toBe(data.length);
    expect(p.served).toHaveLength(1);
  });

  it("only the peer that opened a stream can resume it; another key, or an unknown stream, gets a reset", async () => {
    const p = peers();
    const transports = await tcpPair(cleanup);
    const first = p.connect(transports);
    const stream = first.client.openStream({}, { resumable: true });
    stream.write("x");
    await once(stream, "data");
    transports[0].destroy();
    await once(stream, "suspend");
    const stranger = p.connect(await tcpPair(cleanup), { clientKey: keyPair() });
    const failed = streamError(stream);
    stranger.client.resumeStream(stream);
    expect((await failed).message).toBe("stream reset by peer: no such stream to resume");
    // The owner's stream on the acceptor is untouched by the attempt.
    expect(p.served[0]!.destroyed).toBe(false);
    expect(p.registry.suspended).toBe(1);
  });

  it("a suspended stream nobody resumes fails after the resume timeout, on both sides", async () => {
    const p = peers({ resumeTimeoutMs: 200 });
    const transports = await tcpPair(cleanup);
    const first = p.connect(transports);
    const stream = first.client.openStream({}, { resumable: true });
    stream.write("x");
    await once(stream, "data");
    const clientErr = streamError(stream);
    const serverErr = streamError(p.served[0]!);
    transports[0].destroy();
    expect((await clientErr).message).toMatch(/^session closed: .*\(not resumed within 0s\)$/);
    expect((await serverErr).message).toMatch(/\(not resumed within 0s\)$/);
    expect(p.registry.size).toBe(0);
  });

  it("a session closed on purpose destroys its resumable streams (nothing to resume)", async () => {
    const p = peers();
    const first = p.connect(await tcpPair(cleanup));
    const stream = first.client.openStream({}, { resumable: true });
    stream.write("x");
    await once(stream, "data");
    let suspended = false;
    stream.on("suspend", () => (suspended = true));
    const err = streamError(stream);
    first.server.close(new Error("agent shutting down"));
    expect((await err).message).toBe("session closed: the peer closed the session: agent shutting down");
    expect(suspended).toBe(false);
    await waitFor(() => p.registry.size === 0);
  });

  it("streams not opened as resumable die with their session, as before", async () => {
    const p = peers();
    const transports = await tcpPair(cleanup);
    const first = p.connect(transports);
    const stream = first.client.openStream({});
    expect(stream.resumable).toBe(false);
    stream.write("x");
    await once(stream, "data");
    const err = streamError(stream);
    transports[0].destroy();
    expect((await err).message).toBe("session closed: transport closed");
    expect(() => first.client.resumeStream(stream)).toThrow(/session is closed/);
  });

  it("the stream header stays the opener's: resume_token is reserved and never reaches the handler", async () => {
    const p = peers();
    const first = p.connect(await tcpPair(cleanup));
    const headers: Array<Record<string, unknown>> = [];
    p.onStream((h, s) => {
      headers.push(h);
      s.end();
    });
    const s = first.client.openStream({ service: "ssh" }, { resumable: true });
    s.end();
    s.resume();
    await once(s, "end");
    expect(headers).toEqual([{ service: "ssh" }]);
    expect(() => first.client.openStream({ resume_token: "0".repeat(32) })).toThrow(/resume_token is reserved/);
  });
});

async function waitFor(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
}
