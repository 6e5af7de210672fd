// UDP direct paths: the stream-id handshake, a Session over it, and what a stranger can (not) do
// to the listener. Real UDP sockets on 127.0.0.0/8.
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import UDX from "udx-native";
import { afterEach, describe, expect, it } from "vitest";
import { generateKeyPair } from "../keys.js";
import { Session } from "../session/index.js";
import { dialUdx, UdxListener, type UdxStream } from "./index.js";
import { DATAGRAM_BYTES, encodeHello } from "./wire.js";

const MiB = 1024 * 1024;
const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

function listen(opts: Parameters<typeof UdxListener.listen>[0] = {}): UdxListener {
  const l = UdxListener.listen({ host: "127.0.0.1", ...opts });
  cleanups.push(() => l.close());
  return l;
}

/** A bare UDP socket (on the shared-nothing side: its own UDX instance) that collects what it is sent. */
function rawPeer(host = "127.0.0.1") {
  const socket = new UDX().createSocket();
  socket.bind(0, host);
  const received: Buffer[] = []; // handshake answers
  const all: Buffer[] = []; // anything (a destroyed stream's UDX packets too)
  socket.on("message", (msg) => {
    all.push(Buffer.from(msg));
    if (msg.subarray(0, 9).toString("latin1") === "CODERUDX1") received.push(Buffer.from(msg));
  });
  cleanups.push(() => socket.close());
  return {
    received,
    all,
    send: (buf: Buffer, port: number) => socket.send(buf, port, "127.0.0.1"),
    async waitFor(n: number, ms = 2_000) {
      const until = Date.now() + ms;
      while (received.length < n && Date.now() < until) await sleep(10);
      return received;
    },
  };
}

function connections(l: UdxListener): UdxStream[] {
  const out: UdxStream[] = [];
  l.on("connection", (s) => out.push(s));
  return out;
}

async function drainHash(s: NodeJS.ReadableStream): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of s as AsyncIterable<Buffer>) h.update(chunk);
  return h.digest("hex");
}

describe("UDX direct paths", () => {
  it("carries a Session: a 20 MiB echo arrives intact, and the listener counts it established", async () => {
    const l = listen();
    const agentKeys = generateKeyPair();
    const clientKeys = generateKeyPair();
    const accepted: Session[] = [];
    l.on("connection", (stream) => {
      const session = Session.accept(stream, { keyPair: agentKeys, allow: (k) => k.equals(clientKeys.publicKey) });
      accepted.push(session);
      cleanups.push(() => session.close());
      session.ready.then(() => l.established(stream), () => {});
      session.on("stream", (_h, s) => {
        s.on("error", () => {});
        s.pipe(s);
      });
    });
    const stream = await dialUdx(`udp:127.0.0.1:${l.port}`, 2_000);
    const session = Session.initiate(stream, { keyPair: clientKeys, remotePublicKey: agentKeys.publicKey });
    cleanups.push(() => session.close());
    await session.ready;
    await accepted[0]!.ready;
    expect(l.stats).toMatchObject({ pending: 0, established: 1 });

    const data = randomBytes(20 * MiB);
    const s = session.openStream({ kind: "echo" });
    const echoed = drainHash(s);
    for (let off = 0; off < data.length; off += 256 * 1024) {
      if (!s.write(data.subarray(off, off + 256 * 1024))) await new Promise((r) => s.once("drain", r));
    }
    s.end();
    expect(await echoed).toBe(sha256(data));

    session.close();
    await session.closed;
    await accepted[0]!.closed;
    await sleep(50);
    expect(l.stats).toMatchObject({ pending: 0, established: 0 });
  });

  it("the agent's allow still decides: a client the agent does not know is refused over UDX", async () => {
    const l = listen();
    const agentKeys = generateKeyPair();
    l.on("connection", (stream) => {
      const session = Session.accept(stream, { keyPair: agentKeys, allow: () => false });
      cleanups.push(() => session.close());
    });
    const stream = await dialUdx(`udp:127.0.0.1:${l.port}`, 2_000);
    const session = Session.initiate(stream, { keyPair: generateKeyPair(), remotePublicKey: agentKeys.publicKey });
    cleanups.push(() => session.close());
    await expect(session.ready).rejects.toThrow();
  });

  it("answers a retransmitted HELLO with the same stream, and makes only one", async () => {
    const l = listen();
    const conns = connections(l);
    const peer = rawPeer();
    const hello = encodeHello(4242);
    await peer.send(hello, l.port);
    await peer.send(hello, l.port);
    await sleep(100);
    await peer.send(hello, l.port);
    const answers = await peer.waitFor(3);
    expect(answers).toHaveLength(3);
    expect(answers[0]!.length).toBe(DATAGRAM_BYTES);
    expect(answers[1]).toEqual(answers[0]);
    expect(answers[2]).toEqual(answers[0]);
    expect(conns).toHaveLength(1);
    expect(answers[0]!.readUInt32BE(10)).toBe(4242);
    expect(answers[0]!.readUInt32BE(14)).toBe(conns[0]!.id);
    // another stream id from the same sender is another connection
    await peer.send(encodeHello(4243), l.port);
    await peer.waitFor(4);
    expect(conns).toHaveLength(2);
    expect(conns[1]!.id).not.toBe(conns[0]!.id);
  });

  it("ignores garbage datagrams without answering, and still serves real clients", async () => {
    const l = listen();
    const conns = connections(l);
    const peer = rawPeer();
    const hello = encodeHello(7);
    const wrongMagic = Buffer.from(hello);
    wrongMagic[0] = 0x44;
    const okType = Buffer.from(hello);
    okType[9] = 2;
    const reserved = Buffer.from(hello);
    reserved[17] = 1;
    const garbage = [
      Buffer.alloc(0),
      Buffer.from("hello"),
      randomBytes(DATAGRAM_BYTES),
      randomBytes(1200),
      hello.subarray(0, DATAGRAM_BYTES - 1),
      Buffer.concat([hello, Buffer.from([0])]),
      wrongMagic,
      okType,
      reserved,
      encodeHello(0).fill(0, 10, 14), // stream id 0
      Buffer.concat([Buffer.from([0xff, 0x01]), randomBytes(18)]), // looks like a UDX packet to an unknown stream
    ];
    for (const g of garbage) await peer.send(g, l.port);
    await sleep(200);
    expect(peer.all).toHaveLength(0);
    expect(conns).toHaveLength(0);
    expect(l.stats).toMatchObject({ pending: 0, established: 0 });
    const stream = await dialUdx(`udp:127.0.0.1:${l.port}`, 2_000);
    cleanups.push(() => stream.destroy());
    expect(conns).toHaveLength(1);
  });

  it("bounds pending streams per host and in all, and times them out", async () => {
    const l = listen({ maxPending: 5, maxPendingPerHost: 3, handshakeTimeoutMs: 400 });
    const conns = connections(l);
    const a = rawPeer("127.0.0.1");
    const b = rawPeer("127.0.0.2");
    for (let id = 1; id <= 10; id++) await a.send(encodeHello(id), l.port);
    await a.waitFor(3);
    await sleep(50);
    expect(a.received).toHaveLength(3);
    expect(conns).toHaveLength(3);
    for (let id = 1; id <= 10; id++) await b.send(encodeHello(id), l.port);
    await b.waitFor(2);
    await sleep(50);
    expect(b.received).toHaveLength(2); // the total limit (5) bites before b's own (3)
    expect(l.stats).toMatchObject({ pending: 5, established: 0, refused: 15 });

    // an established stream no longer counts: a slot opens
    l.established(conns[0]!);
    await a.send(encodeHello(100), l.port);
    await a.waitFor(4);
    expect(a.received).toHaveLength(4);
    expect(l.stats).toMatchObject({ pending: 5, established: 1 });

    // nobody completes a handshake: the pending ones are destroyed, the established one stays
    const closed = conns.filter((c) => c !== conns[0]).map((c) => new Promise((r) => c.once("close", r)));
    await Promise.all(closed);
    expect(l.stats).toMatchObject({ pending: 0, established: 1 });
    expect(conns[0]!.destroyed).toBe(false);
    await b.send(encodeHello(200), l.port);
    await b.waitFor(3);
    expect(b.received).toHaveLength(3);
  });

  it("rejects a dial to a closed port within its timeout, and bad endpoints at once", async () => {
    const probe = new UDX().createSocket();
    probe.bind(0, "127.0.0.1");
    const port = probe.address()!.port;
    await probe.close();
    const t0 = Date.now();
    await expect(dialUdx(`udp:127.0.0.1:${port}`, 500)).rejects.toThrow(/did not answer within 500 ms/);
    expect(Date.now() - t0).toBeLessThan(1_500);
    await expect(dialUdx("tcp:127.0.0.1:1", 500)).rejects.toThrow(/not a udp endpoint/);
    await expect(dialUdx("udp:999.0.0.1:1", 500)).rejects.toThrow(/not a udp endpoint/);
    await expect(dialUdx("udp:127.0.0.1:0", 500)).rejects.toThrow(/not a udp endpoint/);
    const ac = new AbortController();
    const dial = dialUdx(`udp:127.0.0.1:${port}`, 5_000, { signal: ac.signal });
    ac.abort(new Error("no longer needed"));
    await expect(dial).rejects.toThrow(/no longer needed/);
  });

  it("refuses to listen on a port that is taken", () => {
    const l = listen();
    expect(() => UdxListener.listen({ host: "127.0.0.1", port: l.port })).toThrow(/in use/);
  });

  it("leaves nothing behind: a process that listens, dials, transfers and closes exits by itself", async () => {
    // Native UDX handles are invisible to process.getActiveResourcesInfo(), so the proof is a
    // child process that must exit on its own. It runs the built code (npm run build).
    const dist = fileURLToPath(new URL("../../../dist/tailnet/", import.meta.url));
    expect(existsSync(`${dist}udx/index.js`), "run `npm run build` first").toBe(true);
    const script = `
      const { UdxListener, dialUdx } = await import(${JSON.stringify(`${dist}udx/index.js`)});
      const { Session } = await import(${JSON.stringify(`${dist}session/index.js`)});
      const { generateKeyPair } = await import(${JSON.stringify(`${dist}keys.js`)});
      const agent = generateKeyPair(), client = generateKeyPair();
      const l = UdxListener.listen({ host: "127.0.0.1", handshakeTimeoutMs: 300 });
      try { UdxListener.listen({ host: "127.0.0.1", port: l.port }); } catch {} // a failed bind leaks nothing either
      const sessions = [];
      l.on("connection", (stream) => {
        const s = Session.accept(stream, { keyPair: agent, allow: () => true });
        sessions.push(s);
        s.ready.then(() => l.established(stream), () => {});
        s.on("stream", (_h, x) => x.pipe(x));
      });
      const stream = await dialUdx("udp:127.0.0.1:" + l.port, 2000);
      const session = Session.initiate(stream, { keyPair: client, remotePublicKey: agent.publicKey });
      await session.ready;
      const x = session.openStream({});
      x.end(Buffer.alloc(100000, 1));
      let n = 0;
      for await (const c of x) n += c.length;
      // a pending stream that nobody completes, and a dial that fails
      const raw = await dialUdx("udp:127.0.0.1:" + l.port, 2000);
      await dialUdx("udp:127.0.0.1:9", 300).catch(() => {});
      session.close();
      await session.closed;
      raw.destroy();
      await l.close();
      console.log("done " + n);
    `;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    const code = await new Promise<number | string>((resolve) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        resolve("did not exit within 10 s");
      }, 10_000);
      child.on("exit", (c) => {
        clearTimeout(timer);
        resolve(c ?? -1);
      });
    });
    expect(out).toContain("done 100000");
    expect(code).toBe(0);
  });
});
