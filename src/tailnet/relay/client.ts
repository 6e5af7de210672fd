// A peer's connection to a relay, and the pair streams it carries (see pair.ts). The connection
// authenticates with the peer's key, keeps itself alive, and comes back with jittered backoff
// after a drop; conns do not survive a drop (the session layer above redials).
import { EventEmitter } from "node:events";
import { WebSocket, type RawData } from "../cjs.js";
import { encodeKey, type KeyPair, sign } from "../keys.js";
import {
  ACCEPTOR_BIT,
  ADDRESSED_HEADER,
  authMessage,
  CloseCode,
  decodeFrame,
  decodePairBody,
  encodeAuth,
  encodePairSend,
  encodePing,
  FrameType,
  KEY_LENGTH,
  LINK_CONN_ID,
  MAX_FRAME,
  MAX_PING_PAYLOAD,
  PairKind,
} from "./frames.js";
import { type RelayLogger, silentLogger } from "./logger.js";
import {
  IMPLICIT_OPEN_CREDIT,
  LINK_CREDIT_BATCH,
  MIN_LINK_WINDOW,
  MIN_WINDOW,
  type PairTransport,
  RelayConn,
  RemotePeer,
} from "./pair.js";

export interface RelayClientOptions {
  /** The relay's base URL: http(s):// or ws(s)://; "/derp" is appended unless the path ends with it. */
  url: string | URL;
  keyPair: KeyPair;
  logger?: RelayLogger;
  /** Extra headers for the WebSocket upgrade (e.g. a session token). */
  headers?: Record<string, string>;
  /** Receive window per conn, in bytes. Default 4 MiB. */
  window?: number;
  /** DATA bytes in flight to one peer, over all conns. Keep well below the relay's queue limit. Default 2 MiB. */
  linkWindow?: number;
  /** Idle time before pinging the relay; 3 silent intervals drop the connection. Default 15 s. */
  keepaliveIntervalMs?: number;
  /** Time to open the WebSocket and authenticate. Default 10 s. */
  handshakeTimeoutMs?: number;
  /** Reconnect backoff bounds. Defaults 250 ms and 10 s. */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /**
   * Mask client frames with random keys. Masking protects browsers' intermediaries from script-
   * chosen bytes; this client is no browser and sends ciphertext, so by default it uses the all-zero
   * mask, which lets `ws` skip an XOR pass and a copy over every byte.
   */
  maskFrames?: boolean;
}

/** The WebSocket URL of the relay behind a base URL. */
export function relayWebSocketUrl(url: string | URL): string {
  const u = new URL(url.toString());
  if (u.protocol === "http:") u.protocol = "ws:";
  else if (u.protocol === "https:") u.protocol = "wss:";
  else if (u.protocol !== "ws:" && u.protocol !== "wss:") {
    throw new Error(`relay URL must be http(s) or ws(s), got ${u.protocol}`);
  }
  if (!u.pathname.endsWith("/derp")) u.pathname = `${u.pathname.replace(/\/+$/, "")}/derp`;
  return u.toString();
}

const SEND_OPTIONS = { binary: true } as const;
/** Bytes this client lets wait in its own socket before conns wait for it to drain. */
const MAX_SOCKET_QUEUE = 2 * 1024 * 1024;
const zeroMask = (mask: Buffer): void => {
  mask.fill(0);
};

/** A transport for conns made while not connected: they fail on the next tick. */
const DETACHED: PairTransport = { sendFrame: () => false, schedule: () => {}, release: () => {} };

type State = "idle" | "handshake" | "auth" | "open";

export interface RelayClient {
  on(event: "connected", listener: () => void): this;
  on(event: "disconnected", listener: (err: Error) => void): this;
  on(event: "replaced", listener: () => void): this;
  on(event: "conn", listener: (remoteKey: Buffer, stream: RelayConn) => void): this;
  once(event: "connected", listener: () => void): this;
  once(event: "disconnected", listener: (err: Error) => void): this;
  once(event: "replaced", listener: () => void): this;
  once(event: "conn", listener: (remoteKey: Buffer, stream: RelayConn) => void): this;
}

/**
 * Emits "connected" after each successful authentication, "disconnected" (err) when an
 * authenticated connection ends, "replaced" when another connection with the same key took over
 * (no reconnect then), and "conn" (remoteKey, stream) for each pair stream a peer dials to us.
 */
export class RelayClient extends EventEmitter implements PairTransport {
  readonly publicKey: Buffer;
  readonly url: string;

  private readonly keyPair: KeyPair;
  private readonly log: RelayLogger;
  private readonly headers: Record<string, string> | undefined;
  private readonly window: number;
  private readonly linkWindow: number;
  private readonly keepaliveIntervalMs: number;
  private readonly handshakeTimeoutMs: number;
  private readonly reconnectMinMs: number;
  private readonly reconnectMaxMs: number;
  private readonly maskFrames: boolean;

  private ws: WebSocket | null = null;
  private state: State = "idle";
  private gen = 0;
  private running = false;
  private closed = false;
  /** The current attempt is the first of a connect() call: failing it rejects instead of retrying. */
  private initial = false;
  private waiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  private attempts = 0;
  private lastError: Error | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private handshakeTimer: NodeJS.Timeout | null = null;
  private keepaliveTimer: NodeJS.Timeout | null = null;
  private seen = true;
  private missed = 0;

  private readonly peers = new Map<string, RemotePeer>();
  private readonly blocked = new Set<RemotePeer>();
  private socketQueued = 0;
  private nextConnId = 1;

  constructor(opts: RelayClientOptions) {
    super();
    if (opts.keyPair?.publicKey?.length !== KEY_LENGTH) throw new Error("keyPair.publicKey must be 32 bytes");
    this.keyPair = opts.keyPair;
    this.publicKey = Buffer.from(opts.keyPair.publicKey);
    this.url = relayWebSocketUrl(opts.url);
    this.log = opts.logger ?? silentLogger;
    this.headers = opts.headers;
    this.window = Math.max(MIN_WINDOW, Math.min(opts.window ?? 4 * 1024 * 1024, 0xffffffff));
    this.linkWindow = Math.max(MIN_LINK_WINDOW, opts.linkWindow ?? 2 * 1024 * 1024);
    this.keepaliveIntervalMs = opts.keepaliveIntervalMs ?? 15_000;
    this.handshakeTimeoutMs = opts.handshakeTimeoutMs ?? 10_000;
    this.reconnectMinMs = opts.reconnectMinMs ?? 250;
    this.reconnectMaxMs = opts.reconnectMaxMs ?? 10_000;
    this.maskFrames = opts.maskFrames ?? false;
  }

  get connected(): boolean {
    return this.state === "open";
  }

  /**
   * Resolves once authenticated. The first attempt's failure rejects (and stops); after that,
   * drops are followed by reconnects until close().
   */
  connect(): Promise<void> {
    if (this.closed) return Promise.reject(new Error("relay client is closed"));
    if (this.state === "open") return Promise.resolve();
    const p = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (!this.running) {
      this.running = true;
      this.initial = true;
      this.open();
    }
    return p;
  }

  /**
   * Opens a pair stream to the peer with this key. Errors (on the stream) at once when not
   * connected, and promptly when the relay reports the peer unreachable.
   */
  dial(remoteKey: Uint8Array): RelayConn {
    if (remoteKey?.length !== KEY_LENGTH) throw new TypeError("remote key must be 32 bytes");
    const key = Buffer.from(remoteKey);
    const keyStr = key.toString("latin1");
    const id = this.nextConnId;
    this.nextConnId = id >= 0x7fffffff ? 1 : id + 1;
    if (this.state !== "open") {
      const conn = new RelayConn({
        transport: DETACHED,
        peer: new RemotePeer(key, keyStr, this.linkWindow),
        sendId: id,
        recvId: (id | ACCEPTOR_BIT) >>> 0,
        sendCredit: 0,
        recvWindow: this.window,
      });
      process.nextTick(() => conn.destroy(new Error("relay not connected")));
      return conn;
    }
    const peer = this.peerFor(key, keyStr);
    const conn = new RelayConn({
      transport: this,
      peer,
      sendId: id,
      recvId: (id | ACCEPTOR_BIT) >>> 0,
      sendCredit: IMPLICIT_OPEN_CREDIT,
      recvWindow: this.window,
    });
    peer.conns.set(conn.recvId, conn);
    this.sendFrame(encodePairSend(key, PairKind.OPEN, id, this.window));
    return conn;
  }

  /** Stops reconnecting, destroys every conn and closes the connection. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.running = false;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const ws = this.ws;
    const wasOpen = this.state === "open";
    this.teardown("relay client closed");
    if (ws) {
      if (ws.readyState === WebSocket.OPEN) ws.close(1000, "client closed");
      else ws.terminate();
    }
    const err = new Error("relay client closed");
    if (wasOpen) this.emit("disconnected", err);
    this.rejectWaiters(err);
  }

  // ---- connection lifecycle ----

  private open(): void {
    const ws = new WebSocket(this.url, {
      perMessageDeflate: false,
      maxPayload: MAX_FRAME,
      handshakeTimeout: this.handshakeTimeoutMs,
      ...(this.headers ? { headers: this.headers } : {}),
      ...(this.maskFrames ? {} : { generateMask: zeroMask }),
    });
    ws.binaryType = "nodebuffer";
    this.gen++;
    this.ws = ws;
    this.state = "handshake";
    this.lastError = null;
    ws.on("message", (data, isBinary) => {
      if (this.ws === ws) this.onMessage(ws, data, isBinary);
    });
    ws.on("error", (err) => {
      if (this.ws === ws) this.lastError = err;
    });
    ws.on("close", (code, reason) => {
      if (this.ws === ws) this.onClose(code, reason.toString());
    });
    this.handshakeTimer = setTimeout(() => {
      if (this.ws !== ws) return;
      this.lastError = new Error("relay handshake timed out");
      ws.terminate();
    }, this.handshakeTimeoutMs);
    this.handshakeTimer.unref();
  }

  private onOpen(): void {
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    this.state = "open";
    this.initial = false;
    this.attempts = 0;
    this.seen = true;
    this.missed = 0;
    // Jittered so that many clients restarted together do not ping in lockstep.
    this.keepaliveTimer = setInterval(() => this.keepalive(), this.keepaliveIntervalMs * (0.9 + Math.random() * 0.2));
    this.keepaliveTimer.unref();
    this.log.debug({ url: this.url, key: encodeKey(this.publicKey) }, "relay connected");
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.resolve();
    this.emit("connected");
  }

  private onClose(code: number, reason: string): void {
    const wasOpen = this.state === "open";
    let message: string;
    if (code === CloseCode.AUTH_FAILED) message = `relay rejected authentication${reason ? `: ${reason}` : ""}`;
    else if (code === CloseCode.REPLACED) message = "relay connection replaced by a newer one with the same key";
    else if (this.lastError) message = `relay connection failed: ${this.lastError.message}`;
    else message = `relay connection closed (code ${code}${reason ? `: ${reason}` : ""})`;
    const err = new Error(message);
    this.teardown(message);
    if (wasOpen) this.emit("disconnected", err);
    if (this.closed) return;
    if (this.initial) {
      this.initial = false;
      this.running = false;
      this.rejectWaiters(err);
      return;
    }
    if (code === CloseCode.REPLACED) {
      this.log.warn({ url: this.url, key: encodeKey(this.publicKey) }, message);
      this.running = false;
      this.rejectWaiters(err);
      this.emit("replaced");
      return;
    }
    const base = Math.min(this.reconnectMaxMs, this.reconnectMinMs * 2 ** Math.min(this.attempts, 20));
    const delay = base / 2 + (Math.random() * base) / 2;
    this.attempts++;
    this.log.debug({ url: this.url, err: message, delayMs: Math.round(delay) }, "relay reconnecting");
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.running && !this.closed) this.open();
    }, delay);
    this.reconnectTimer.unref();
  }

  /** Forgets the socket and destroys every conn: they cannot outlive the connection. */
  private teardown(cause: string): void {
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    if (this.keepaliveTimer) clearInterval(this.keepaliveTimer);
    this.handshakeTimer = null;
    this.keepaliveTimer = null;
    this.ws = null;
    this.state = "idle";
    this.gen++;
    const peers = [...this.peers.values()];
    this.peers.clear();
    this.blocked.clear();
    this.socketQueued = 0;
    for (const peer of peers) {
      for (const conn of [...peer.conns.values()]) conn.destroy(new Error(`relay connection lost (${cause})`));
    }
  }

  private rejectWaiters(err: Error): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(err);
  }

  private keepalive(): void {
    const ws = this.ws;
    if (!ws || this.state !== "open") return;
    if (this.seen) {
      this.seen = false;
      this.missed = 0;
      return;
    }
    this.missed++;
    if (this.missed >= 3) {
      this.lastError = new Error("relay stopped answering pings");
      ws.terminate();
      return;
    }
    ws.send(encodePing(), SEND_OPTIONS);
  }

  private protocolError(ws: WebSocket, message: string): void {
    this.log.warn({ url: this.url, err: message }, "relay protocol error");
    this.lastError = new Error(`relay protocol error: ${message}`);
    ws.terminate();
  }

  // ---- frames from the relay ----

  private onMessage(ws: WebSocket, data: RawData, isBinary: boolean): void {
    this.seen = true;
    if (!isBinary || !Buffer.isBuffer(data)) {
      this.protocolError(ws, "unexpected text message");
      return;
    }
    if (this.state === "open") {
      switch (data[0]) {
        case FrameType.RECV:
          if (data.length < ADDRESSED_HEADER) this.protocolError(ws, "RECV frame shorter than its header");
          else this.onRecv(data);
          return;
        case FrameType.PEER_GONE:
          if (data.length !== 1 + KEY_LENGTH) this.protocolError(ws, "malformed PEER_GONE");
          else this.onPeerGone(data.subarray(1));
          return;
        case FrameType.PING:
          if (data.length > 1 + MAX_PING_PAYLOAD) {
            this.protocolError(ws, "PING payload too long");
            return;
          }
          data[0] = FrameType.PONG;
          ws.send(data, SEND_OPTIONS);
          return;
        case FrameType.PONG:
          return;
        default:
          this.protocolError(ws, `unexpected frame type 0x${(data[0] ?? 0).toString(16)}`);
          return;
      }
    }
    let frame;
    try {
      frame = decodeFrame(data);
    } catch (err) {
      this.protocolError(ws, (err as Error).message);
      return;
    }
    if (this.state === "handshake" && frame.type === FrameType.CHALLENGE) {
      const signature = sign(this.keyPair, authMessage(frame.challenge));
      ws.send(encodeAuth(this.publicKey, signature), SEND_OPTIONS);
      this.state = "auth";
    } else if (this.state === "auth" && frame.type === FrameType.OK) {
      this.onOpen();
    } else {
      this.protocolError(ws, `unexpected frame type 0x${frame.type.toString(16)} during the handshake`);
    }
  }

  private onPeerGone(key: Buffer): void {
    const keyStr = key.toString("latin1");
    const peer = this.peers.get(keyStr);
    if (!peer) return;
    this.peers.delete(keyStr);
    this.blocked.delete(peer);
    const name = encodeKey(key);
    for (const conn of [...peer.conns.values()]) conn.destroy(new Error(`peer ${name} is unreachable via the relay`));
  }

  private onRecv(frame: Buffer): void {
    const srcStr = frame.toString("latin1", 1, ADDRESSED_HEADER);
    let body;
    try {
      body = decodePairBody(frame.subarray(ADDRESSED_HEADER));
    } catch (err) {
      this.log.debug({ peer: encodeKey(frame.subarray(1, ADDRESSED_HEADER)), err: (err as Error).message }, "relay: malformed pair body");
      return;
    }
    const peer = this.peers.get(srcStr);
    switch (body.kind) {
      case PairKind.OPEN:
        this.onOpenConn(peer, frame, srcStr, body.id, body.window);
        return;
      case PairKind.DATA: {
        const n = body.data.length;
        const conn = peer?.conns.get(body.id);
        if (!peer) {
          const src = Buffer.from(frame.subarray(1, ADDRESSED_HEADER));
          if (n > 0) this.sendFrame(encodePairSend(src, PairKind.CREDIT, LINK_CONN_ID, n));
          this.sendRst(src, body.id, "unknown conn");
          return;
        }
        peer.linkUnreturned += n;
        if (peer.linkUnreturned >= LINK_CREDIT_BATCH || !conn) this.flushLinkCredit(peer);
        if (!conn) {
          this.sendRst(peer.key, body.id, "unknown conn");
          this.maybeForget(peer);
          return;
        }
        conn.onData(body.offset, body.data);
        return;
      }
      case PairKind.CREDIT:
        if (!peer) return;
        if (body.id === LINK_CONN_ID) {
          peer.linkCredit = Math.min(peer.linkWindow, peer.linkCredit + body.bytes);
          this.pump(peer);
          this.maybeForget(peer);
        } else {
          peer.conns.get(body.id)?.onCredit(body.bytes);
        }
        return;
      case PairKind.FIN: {
        const conn = peer?.conns.get(body.id);
        if (conn) conn.onFin(body.offset);
        else this.sendRst(Buffer.from(frame.subarray(1, ADDRESSED_HEADER)), body.id, "unknown conn");
        return;
      }
      case PairKind.RST:
        peer?.conns.get(body.id)?.onReset(body.reason);
        return;
    }
  }

  private onOpenConn(existingPeer: RemotePeer | undefined, frame: Buffer, srcStr: string, id: number, window: number): void {
    if (id === 0 || id & ACCEPTOR_BIT) return;
    const peer = existingPeer ?? this.peerFor(Buffer.from(frame.subarray(1, ADDRESSED_HEADER)), srcStr);
    const dup = peer.conns.get(id);
    if (dup) {
      // Both ends are confused about this id: reset it (the RST reaches the dialer's new conn too).
      dup.destroy(new Error("protocol error: conn id reused"));
      return;
    }
    if (this.listenerCount("conn") === 0) {
      this.sendRst(peer.key, id, "not accepting conns");
      this.maybeForget(peer);
      return;
    }
    const conn = new RelayConn({
      transport: this,
      peer,
      sendId: (id | ACCEPTOR_BIT) >>> 0,
      recvId: id,
      sendCredit: window,
      recvWindow: this.window,
    });
    peer.conns.set(id, conn);
    const extra = this.window - IMPLICIT_OPEN_CREDIT;
    if (extra > 0) this.sendFrame(encodePairSend(peer.key, PairKind.CREDIT, conn.sendId, extra));
    this.emit("conn", peer.key, conn);
  }

  /** RST answering a frame that carried `receivedId` (the reply flips the acceptor bit). */
  private sendRst(key: Buffer, receivedId: number, reason: string): void {
    this.sendFrame(encodePairSend(key, PairKind.RST, (receivedId ^ ACCEPTOR_BIT) >>> 0, undefined, Buffer.from(reason)));
  }

  private peerFor(key: Buffer, keyStr: string): RemotePeer {
    let peer = this.peers.get(keyStr);
    if (!peer) {
      peer = new RemotePeer(key, keyStr, this.linkWindow);
      this.peers.set(keyStr, peer);
    }
    return peer;
  }

  private flushLinkCredit(peer: RemotePeer): void {
    if (peer.linkUnreturned === 0) return;
    this.sendFrame(encodePairSend(peer.key, PairKind.CREDIT, LINK_CONN_ID, peer.linkUnreturned));
    peer.linkUnreturned = 0;
  }

  /** Drops a peer's state once nothing refers to it and all link credit is settled both ways. */
  private maybeForget(peer: RemotePeer): void {
    if (peer.conns.size > 0 || peer.linkUnreturned > 0 || peer.linkCredit < peer.linkWindow) return;
    if (this.peers.get(peer.keyStr) === peer) this.peers.delete(peer.keyStr);
    this.blocked.delete(peer);
  }

  // ---- PairTransport ----

  /** @internal */
  sendFrame(frame: Buffer): boolean {
    const ws = this.ws;
    if (!ws || this.state !== "open" || ws.readyState !== WebSocket.OPEN) return false;
    const gen = this.gen;
    const len = frame.length;
    this.socketQueued += len;
    ws.send(frame, SEND_OPTIONS, () => {
      if (gen !== this.gen) return;
      this.socketQueued -= len;
      if (this.blocked.size > 0 && this.socketQueued <= MAX_SOCKET_QUEUE / 2) {
        const peers = [...this.blocked];
        this.blocked.clear();
        for (const p of peers) this.pump(p);
      }
    });
    return true;
  }

  /** @internal */
  schedule(conn: RelayConn): void {
    if (conn.canSend()) conn.peer.ready.add(conn);
    this.pump(conn.peer);
  }

  /** @internal */
  release(conn: RelayConn): void {
    const peer = conn.peer;
    peer.ready.delete(conn);
    if (peer.conns.get(conn.recvId) === conn) peer.conns.delete(conn.recvId);
    if (peer.conns.size === 0 && this.peers.get(peer.keyStr) === peer) {
      if (this.state === "open") this.flushLinkCredit(peer);
      this.maybeForget(peer);
    }
  }

  /** Sends what the peer's ready conns have, round-robin, within link credit and socket room. */
  private pump(peer: RemotePeer): void {
    if (peer.pumping || this.state !== "open" || this.peers.get(peer.keyStr) !== peer) return;
    peer.pumping = true;
    try {
      while (peer.ready.size > 0 && peer.linkCredit > 0) {
        for (const conn of peer.ready) {
          if (peer.linkCredit <= 0) break;
          if (this.socketQueued >= MAX_SOCKET_QUEUE) {
            this.blocked.add(peer);
            return;
          }
          conn.sendOne();
          if (!conn.canSend()) peer.ready.delete(conn);
        }
        if (this.state !== "open") return;
      }
    } finally {
      peer.pumping = false;
    }
  }
}
