// Helpers for the session tests: real TCP sockets on 127.0.0.1, and a man-in-the-middle proxy
// that sees (and may change) every byte between the two ends.
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import net from "node:net";
import type { Duplex } from "node:stream";
import { generateKeyPair as keyPair, type KeyPair } from "../keys.js";
import { type AcceptOptions, type InitiateOptions, Session } from "./session.js";

export { keyPair };

/** Things to tear down after each test, in reverse order. */
export class Cleanup {
  private fns: Array<() => unknown> = [];
  add(fn: () => unknown): void {
    this.fns.push(fn);
  }
  async run(): Promise<void> {
    for (const fn of this.fns.reverse()) {
      try {
        await fn();
      } catch {
        // best effort
      }
    }
    this.fns = [];
  }
}

async function listen(server: net.Server): Promise<number> {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return (server.address() as net.AddressInfo).port;
}

/** A connected pair of TCP sockets over loopback. */
export async function tcpPair(cleanup: Cleanup): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer();
  const port = await listen(server);
  const accepted = once(server, "connection") as Promise<[net.Socket]>;
  const client = net.connect(port, "127.0.0.1");
  const [[serverSock]] = await Promise.all([accepted, once(client, "connect")]);
  server.close();
  for (const s of [client, serverSock]) {
    s.setNoDelay(true);
    cleanup.add(() => s.destroy());
  }
  return [client, serverSock];
}

/** One secret-stream message on the wire: [u24 LE length][body]. */
export type WireMessage = Buffer;

/**
 * Forwards bytes in one direction, message by message (secret-stream frames each message with a
 * 3-byte little-endian length). `edit` may return replacement bytes for a message (or several).
 */
class Framer {
  private buf: Buffer = Buffer.alloc(0);
  index = 0;
  constructor(private readonly forward: (msg: WireMessage, index: number) => Buffer[] | Buffer) {}
  push(chunk: Buffer, out: net.Socket): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const parts: Buffer[] = [];
    while (this.buf.length >= 3) {
      const len = this.buf[0]! | (this.buf[1]! << 8) | (this.buf[2]! << 16);
      if (this.buf.length < 3 + len) break;
      const msg = Buffer.from(this.buf.subarray(0, 3 + len));
      this.buf = this.buf.subarray(3 + len);
      const r = this.forward(msg, this.index++);
      if (Array.isArray(r)) parts.push(...r);
      else parts.push(r);
    }
    if (parts.length) out.write(Buffer.concat(parts));
  }
}

export interface MitmHooks {
  /** Client → server messages. Index 0 is Noise msg 1, 1 is msg 3, 2 the stream header, 3+ encrypted. */
  toServer?: (msg: WireMessage, index: number) => Buffer[] | Buffer;
  /** Server → client messages. Index 0 is Noise msg 2, 1 the stream header, 2+ encrypted. */
  toClient?: (msg: WireMessage, index: number) => Buffer[] | Buffer;
}

export interface Mitm {
  client: net.Socket;
  server: net.Socket;
  /** Every byte the proxy saw, both directions. */
  captured(): Buffer;
  /** Stop forwarding anything (a black hole: the transport stays open but dead). */
  blackhole(): void;
}

/** client socket ⇄ proxy ⇄ server socket, all on loopback. */
export async function mitmPair(cleanup: Cleanup, hooks: MitmHooks = {}): Promise<Mitm> {
  const [client, proxyA] = await tcpPair(cleanup);
  const [proxyB, server] = await tcpPair(cleanup);
  const chunks: Buffer[] = [];
  let dead = false;
  const up = new Framer(hooks.toServer ?? ((m) => m));
  const down = new Framer(hooks.toClient ?? ((m) => m));
  proxyA.on("data", (d: Buffer) => {
    chunks.push(Buffer.from(d));
    if (!dead) up.push(d, proxyB);
  });
  proxyB.on("data", (d: Buffer) => {
    chunks.push(Buffer.from(d));
    if (!dead) down.push(d, proxyA);
  });
  proxyA.on("end", () => proxyB.end());
  proxyB.on("end", () => proxyA.end());
  proxyA.on("close", () => proxyB.destroy());
  proxyB.on("close", () => proxyA.destroy());
  proxyA.on("error", () => {});
  proxyB.on("error", () => {});
  return {
    client,
    server,
    captured: () => Buffer.concat(chunks),
    blackhole: () => {
      dead = true;
    },
  };
}

export interface Pair {
  client: Session;
  server: Session;
  clientKey: KeyPair;
  serverKey: KeyPair;
}

/** A client and a server session over the given transports (a fresh TCP pair by default). */
export function sessionPair(
  cleanup: Cleanup,
  transports: [Duplex, Duplex],
  opts: { client?: Partial<InitiateOptions>; server?: Partial<AcceptOptions> } = {},
): Pair {
  const clientKey = keyPair();
  const serverKey = keyPair();
  const server = Session.accept(transports[1], { keyPair: serverKey, allow: () => true, ...opts.server });
  const client = Session.initiate(transports[0], { keyPair: clientKey, remotePublicKey: serverKey.publicKey, ...opts.client });
  for (const s of [client, server]) {
    cleanup.add(async () => {
      s.close();
      await s.closed;
    });
  }
  return { client, server, clientKey, serverKey };
}

export async function readyPair(cleanup: Cleanup, opts?: Parameters<typeof sessionPair>[2]): Promise<Pair> {
  const p = sessionPair(cleanup, await tcpPair(cleanup), opts);
  await Promise.all([p.client.ready, p.server.ready]);
  return p;
}

export function sha256(buf: Buffer): string {
  return createHash("sha256").update(buf).digest("hex");
}

/**
 * Reads a stream to its end: its bytes and their sha256. (Not `for await`: that destroys a Duplex
 * when its readable side ends, which would reset our still-open writable side.)
 */
export function drain(stream: NodeJS.ReadableStream): Promise<{ bytes: number; hash: string; data: Buffer }> {
  return new Promise((resolve, reject) => {
    const h = createHash("sha256");
    const parts: Buffer[] = [];
    let bytes = 0;
    stream.on("data", (chunk: Buffer) => {
      h.update(chunk);
      parts.push(chunk);
      bytes += chunk.length;
    });
    stream.once("end", () => resolve({ bytes, hash: h.digest("hex"), data: Buffer.concat(parts) }));
    stream.once("error", reject);
  });
}

/** Writes data in uneven pieces, honouring backpressure, then ends. */
export async function writeAll(stream: NodeJS.WritableStream, data: Buffer, maxPiece = 200 * 1024): Promise<void> {
  let at = 0;
  while (at < data.length) {
    const n = Math.min(data.length - at, 1 + Math.floor(Math.random() * maxPiece));
    const ok = stream.write(data.subarray(at, at + n));
    at += n;
    if (!ok) await once(stream as unknown as NodeJS.EventEmitter, "drain");
  }
  stream.end();
}

export { randomBytes };

/** Resolves with the error a stream fails with (or rejects if it closes without one). */
export function streamError(stream: NodeJS.EventEmitter): Promise<Error> {
  return new Promise((resolve, reject) => {
    stream.once("error", resolve);
    stream.once("close", () => setImmediate(() => reject(new Error("closed without error"))));
  });
}
