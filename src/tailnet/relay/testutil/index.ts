// Test scaffolding: a relay on 127.0.0.1 behind a plain http server, raw protocol clients, and
// stream helpers. Not part of the module's surface.
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { type ServerOptions, WebSocket, WebSocketServer } from "ws";
import { generateKeyPair, type KeyPair, sign } from "../../keys.js";
import { authMessage, decodeFrame, encodeAuth, type Frame, FrameType, relayWebSocketServerOptions } from "../frames.js";
import { RelayServer, type RelayServerOptions } from "../server.js";

export interface TestRelay {
  relay: RelayServer;
  url: string;
  /** Server-side sockets by the order they were accepted. */
  sockets: WebSocket[];
  close(): Promise<void>;
}

export async function startRelay(opts: RelayServerOptions & { ws?: ServerOptions } = {}): Promise<TestRelay> {
  const { ws: wsOptions, ...relayOptions } = opts;
  const relay = new RelayServer(relayOptions);
  const http = createServer((_req, res) => {
    res.statusCode = 404;
    res.end();
  });
  const wss = new WebSocketServer({ noServer: true, ...relayWebSocketServerOptions, ...wsOptions });
  const sockets: WebSocket[] = [];
  http.on("upgrade", (req, socket, head) => {
    if (new URL(req.url ?? "/", "http://relay").pathname !== "/derp") {
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.push(ws);
      relay.accept(ws, req.socket.remoteAddress);
    });
  });
  http.listen(0, "127.0.0.1");
  await once(http, "listening");
  const port = (http.address() as AddressInfo).port;
  return {
    relay,
    url: `http://127.0.0.1:${port}`,
    sockets,
    async close() {
      relay.close();
      for (const ws of sockets) ws.terminate();
      wss.close();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

/** A hand-driven protocol client: every received message is queued for next(). */
export class RawPeer {
  readonly messages: Buffer[] = [];
  private waiting: Array<(b: Buffer) => void> = [];
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(readonly ws: WebSocket) {
    ws.binaryType = "nodebuffer";
    ws.on("message", (data: Buffer) => {
      const w = this.waiting.shift();
      if (w) w(data);
      else this.messages.push(data);
    });
    ws.on("error", () => {});
    this.closed = new Promise((resolve) => ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  static async open(url: string): Promise<RawPeer> {
    const ws = new WebSocket(`${url.replace(/^http/, "ws")}/derp`, { perMessageDeflate: false });
    const peer = new RawPeer(ws);
    await once(ws, "open");
    return peer;
  }

  /** Connects and authenticates with keyPair (fresh when omitted). */
  static async auth(url: string, keyPair: KeyPair = generateKeyPair()): Promise<RawPeer & { keyPair: KeyPair }> {
    const peer = await RawPeer.open(url);
    const challenge = await peer.nextFrame();
    if (challenge.type !== FrameType.CHALLENGE) throw new Error("expected CHALLENGE");
    peer.send(encodeAuth(keyPair.publicKey, sign(keyPair, authMessage(challenge.challenge))));
    const ok = await peer.nextFrame();
    if (ok.type !== FrameType.OK) throw new Error("expected OK");
    return Object.assign(peer, { keyPair });
  }

  next(): Promise<Buffer> {
    const m = this.messages.shift();
    if (m) return Promise.resolve(m);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  async nextFrame(): Promise<Frame> {
    return decodeFrame(await this.next());
  }

  send(data: Buffer | string): void {
    this.ws.send(data);
  }
}

/** Writes `total` random bytes in `chunk`-sized writes honouring backpressure, then ends; returns their sha256. */
export async function writeRandom(stream: Duplex, total: number, chunk = 64 * 1024): Promise<string> {
  const hash = createHash("sha256");
  let left = total;
  while (left > 0) {
    const buf = randomBytes(Math.min(chunk, left));
    hash.update(buf);
    left -= buf.length;
    if (!stream.write(buf)) await once(stream, "drain");
  }
  stream.end();
  return hash.digest("hex");
}

/**
 * Reads a stream to its end; returns the byte count and sha256. (Not `for await`: that destroys
 * a Duplex when the loop ends, resetting a writable side still in use.)
 */
export function readAll(stream: Duplex): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash("sha256");
  let bytes = 0;
  return new Promise((resolve, reject) => {
    stream.on("data", (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
    });
    stream.once("end", () => resolve({ bytes, sha256: hash.digest("hex") }));
    stream.once("error", reject);
    stream.resume();
  });
}

/** Resolves with the stream's 'error'. */
export function errorOf(stream: Duplex): Promise<Error> {
  return new Promise((resolve) => stream.once("error", resolve));
}

/** Lets pending I/O callbacks run (a few turns of the event loop), without timers. */
export async function turns(n = 5): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}
