// The embedded relay ("DERP"-like): peers authenticate with their ed25519 key and exchange opaque
// bodies addressed by key. Transport only: the pair streams and the Noise sessions on top are the
// peers' business, so the relay sees ciphertext.
//
// Memory stays bounded per destination: a frame whose destination already has maxQueueBytes
// waiting in its socket is dropped and counted, and the source socket is never paused (pausing
// it would stall the source's traffic to every other destination). Cooperating clients
// (RelayClient) keep their in-flight bytes per destination inside a window well below the limit,
// so they never see a drop.
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { WebSocket, type RawData } from "../cjs.js";
import { encodeKey, verify } from "../keys.js";
import {
  ADDRESSED_HEADER,
  authMessage,
  CloseCode,
  CHALLENGE_LENGTH,
  decodeFrame,
  encodeChallenge,
  encodeOk,
  encodePeerGone,
  encodePing,
  encodeRecv,
  FrameType,
  KEY_LENGTH,
  MAX_BODY,
  MAX_FRAME,
  MAX_PING_PAYLOAD,
} from "./frames.js";
import { type RelayLogger, silentLogger } from "./logger.js";

export interface RelayServerOptions {
  /** Bytes that may wait in one destination's socket before frames to it are dropped. Default 8 MiB. */
  maxQueueBytes?: number;
  /** Idle time after which the server pings a peer; a peer silent for 3 intervals is closed. Default 15 s. */
  keepaliveIntervalMs?: number;
  /** Time a new socket has to complete AUTH. Default 10 s. */
  handshakeTimeoutMs?: number;
  /** Decides whether an authenticated key may use this relay (e.g. only keys the coordinator knows). */
  authorize?: (publicKey: Buffer, remoteAddress: string | undefined) => boolean | Promise<boolean>;
  logger?: RelayLogger;
}

export interface RelayStats {
  /** Authenticated peers connected now. */
  peers: number;
  /** Frames handed to a local destination's socket. */
  frames_forwarded: number;
  /** Body bytes of those frames. */
  bytes_forwarded: number;
  /** Frames dropped because their destination's queue was full (or it was closing). */
  frames_dropped: number;
  bytes_dropped: number;
}

/** Upper bound on the destinations remembered per peer for PEER_GONE notices. */
const MAX_INTEREST = 4096;
/** Control frames (OK, PONG, PEER_GONE) may exceed the queue limit by this much. */
const CONTROL_SLACK = 64 * 1024;
const SEND_OPTIONS = { binary: true } as const;

type PeerState = "handshake" | "authorizing" | "open" | "closed";

class PeerConn {
  state: PeerState = "handshake";
  key: Buffer | null = null;
  /** key as a latin1 string: the map key. */
  keyStr = "";
  readonly challenge = randomBytes(CHALLENGE_LENGTH);
  handshakeTimer: NodeJS.Timeout | null = null;
  /** Something arrived since the last keepalive tick. */
  seen = true;
  missed = 0;
  /** Destinations this peer sent to (told PEER_GONE when they leave). */
  readonly sentTo = new Set<string>();
  lastDst = "";
  /** Destinations told PEER_GONE during this turn of the event loop (sent once per key). */
  readonly goneNotified = new Set<string>();
  goneClearScheduled = false;

  constructor(
    readonly ws: WebSocket,
    readonly remoteAddress: string | undefined,
  ) {}

  get name(): string {
    return this.key ? encodeKey(this.key) : "(unauthenticated)";
  }
}

export interface RelayServer {
  on(event: "peer", listener: (publicKey: Buffer, connected: boolean) => void): this;
  once(event: "peer", listener: (publicKey: Buffer, connected: boolean) => void): this;
  off(event: "peer", listener: (publicKey: Buffer, connected: boolean) => void): this;
  emit(event: "peer", publicKey: Buffer, connected: boolean): boolean;
}

/**
 * Relays bodies between WebSockets that are already upgraded (the /derp route hands them to
 * accept()). Emits "peer" (publicKey, connected) when a key appears on or leaves this relay; a
 * connection replaced by a newer one with the same key emits nothing (the key stays present).
 */
export class RelayServer extends EventEmitter {
  /**
   * Called for SENDs whose destination is not connected here. Return true when the frame was
   * handled elsewhere (the relay mesh); false makes the relay answer PEER_GONE. `body` is a view
   * that stays valid (the relay does not reuse it).
   */
  onUnknownDestination?: (src: Buffer, dst: Buffer, body: Buffer) => boolean;

  private readonly maxQueueBytes: number;
  private readonly keepaliveIntervalMs: number;
  private readonly handshakeTimeoutMs: number;
  private readonly authorize: RelayServerOptions["authorize"];
  private readonly log: RelayLogger;
  private readonly conns = new Set<PeerConn>();
  private readonly byKey = new Map<string, PeerConn>();
  /** destination key → local peers that sent to it */
  private readonly watchers = new Map<string, Set<PeerConn>>();
  private readonly keepaliveTimer: NodeJS.Timeout;
  private closed = false;
  private framesForwarded = 0;
  private bytesForwarded = 0;
  private framesDropped = 0;
  private bytesDropped = 0;

  constructor(opts: RelayServerOptions = {}) {
    super();
    this.maxQueueBytes = opts.maxQueueBytes ?? 8 * 1024 * 1024;
    this.keepaliveIntervalMs = opts.keepaliveIntervalMs ?? 15_000;
    this.handshakeTimeoutMs = opts.handshakeTimeoutMs ?? 10_000;
    this.authorize = opts.authorize;
    this.log = opts.logger ?? silentLogger;
    this.keepaliveTimer = setInterval(() => this.keepalive(), this.keepaliveIntervalMs);
    this.keepaliveTimer.unref();
  }

  /** Takes over an upgraded WebSocket: challenge, AUTH, then relaying until it closes. */
  accept(ws: WebSocket, remoteAddress?: string): void {
    if (this.closed) {
      ws.close(CloseCode.GOING_AWAY, "relay shutting down");
      return;
    }
    ws.binaryType = "nodebuffer";
    const p = new PeerConn(ws, remoteAddress);
    this.conns.add(p);
    ws.on("message", (data, isBinary) => this.onMessage(p, data, isBinary));
    ws.on("close", () => this.cleanup(p));
    ws.on("error", (err) => {
      this.log.debug({ peer: p.name, remoteAddress, err: err.message }, "relay socket error");
      this.cleanup(p);
    });
    p.handshakeTimer = setTimeout(() => this.fail(p, CloseCode.AUTH_FAILED, "handshake timeout"), this.handshakeTimeoutMs);
    p.handshakeTimer.unref();
    if (ws.readyState !== WebSocket.OPEN) {
      this.cleanup(p);
      return;
    }
    ws.send(encodeChallenge(p.challenge), SEND_OPTIONS);
  }

  /** Keys connected to this relay. */
  peers(): Buffer[] {
    return [...this.byKey.values()].map((p) => p.key as Buffer);
  }

  hasPeer(publicKey: Uint8Array): boolean {
    return this.byKey.has(Buffer.from(publicKey).toString("latin1"));
  }

  stats(): RelayStats {
    return {
      peers: this.byKey.size,
      frames_forwarded: this.framesForwarded,
      bytes_forwarded: this.bytesForwarded,
      frames_dropped: this.framesDropped,
      bytes_dropped: this.bytesDropped,
    };
  }

  /** Bytes waiting in the socket of the peer with this key (undefined when it is not here). */
  queuedBytes(publicKey: Uint8Array): number | undefined {
    return this.byKey.get(Buffer.from(publicKey).toString("latin1"))?.ws.bufferedAmount;
  }

  /**
   * Routes a body from src to dst: to the local peer, else through onUnknownDestination, else
   * (when src is a local peer) answers PEER_GONE. True when delivered or handed off.
   */
  forward(src: Buffer, dst: Buffer, body: Buffer): boolean {
    if (src.length !== KEY_LENGTH || dst.length !== KEY_LENGTH) throw new Error("keys must be 32 bytes");
    if (body.length > MAX_BODY) throw new Error(`body exceeds ${MAX_BODY} bytes`);
    const srcStr = src.toString("latin1");
    const dstStr = dst.toString("latin1");
    const srcConn = this.byKey.get(srcStr);
    const local = this.byKey.get(dstStr);
    if (local) {
      if (srcConn) this.noteInterest(srcConn, dstStr);
      this.push(local, encodeRecv(src, body), body.length);
      return true;
    }
    if (this.handOff(src, dst, body)) {
      if (srcConn) this.noteInterest(srcConn, dstStr);
      return true;
    }
    if (srcConn) this.peerGone(srcConn, dstStr, Buffer.from(dst));
    return false;
  }

  /**
   * Delivers a body that arrived from elsewhere (the relay mesh) to a local peer. False when dst
   * is not connected here. A full destination queue drops the frame (counted) but returns true.
   */
  deliver(src: Buffer, dst: Buffer, body: Buffer): boolean {
    if (src.length !== KEY_LENGTH || dst.length !== KEY_LENGTH) throw new Error("keys must be 32 bytes");
    if (body.length > MAX_BODY) throw new Error(`body exceeds ${MAX_BODY} bytes`);
    const local = this.byKey.get(dst.toString("latin1"));
    if (!local) return false;
    this.push(local, encodeRecv(src, body), body.length);
    return true;
  }

  /**
   * Tells local peers that sent to `publicKey` that it is gone (for the mesh: a key left another
   * relay). Does nothing while the key is connected here.
   */
  notifyPeerGone(publicKey: Buffer): void {
    const keyStr = publicKey.toString("latin1");
    if (!this.byKey.has(keyStr)) this.notifyWatchers(Buffer.from(publicKey), keyStr, null);
  }

  /** Closes every connection (1001) and stops accepting. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.keepaliveTimer);
    for (const p of [...this.conns]) {
      p.ws.close(CloseCode.GOING_AWAY, "relay shutting down");
      this.cleanup(p);
    }
  }

  // ---- connection handling ----

  private onMessage(p: PeerConn, data: RawData, isBinary: boolean): void {
    if (p.state === "closed") return;
    p.seen = true;
    const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    const preAuth = p.state !== "open";
    if (buf.length > MAX_FRAME) {
      this.fail(p, CloseCode.TOO_BIG, `frame of ${buf.length} bytes exceeds ${MAX_FRAME}`);
      return;
    }
    if (!isBinary) {
      this.fail(p, preAuth ? CloseCode.AUTH_FAILED : CloseCode.INVALID_DATA, "text messages are not part of the protocol");
      return;
    }
    if (p.state === "handshake") {
      this.onAuth(p, buf);
      return;
    }
    if (p.state === "authorizing") {
      this.fail(p, CloseCode.AUTH_FAILED, "frame before OK");
      return;
    }
    switch (buf[0]) {
      case FrameType.SEND:
        if (buf.length < ADDRESSED_HEADER) {
          this.fail(p, CloseCode.INVALID_DATA, "SEND frame shorter than its header");
          return;
        }
        this.route(p, buf);
        return;
      case FrameType.PING:
        if (buf.length > 1 + MAX_PING_PAYLOAD) {
          this.fail(p, CloseCode.INVALID_DATA, "PING payload too long");
          return;
        }
        buf[0] = FrameType.PONG;
        this.sendControl(p, buf);
        return;
      case FrameType.PONG:
        if (buf.length > 1 + MAX_PING_PAYLOAD) this.fail(p, CloseCode.INVALID_DATA, "PONG payload too long");
        return;
      default:
        this.fail(p, CloseCode.INVALID_DATA, `unexpected frame type 0x${(buf[0] ?? 0).toString(16).padStart(2, "0")}`);
    }
  }

  private onAuth(p: PeerConn, buf: Buffer): void {
    let frame;
    try {
      frame = decodeFrame(buf);
    } catch (err) {
      this.fail(p, CloseCode.AUTH_FAILED, `malformed AUTH: ${(err as Error).message}`);
      return;
    }
    if (frame.type !== FrameType.AUTH) {
      this.fail(p, CloseCode.AUTH_FAILED, "expected AUTH");
      return;
    }
    if (!verify(frame.publicKey, authMessage(p.challenge), frame.signature)) {
      this.fail(p, CloseCode.AUTH_FAILED, "bad signature");
      return;
    }
    const key = Buffer.from(frame.publicKey);
    const authorize = this.authorize;
    if (!authorize) {
      this.admit(p, key);
      return;
    }
    p.state = "authorizing";
    Promise.resolve()
      .then(() => authorize(key, p.remoteAddress))
      .then(
        (ok) => (ok ? this.admit(p, key) : this.fail(p, CloseCode.AUTH_FAILED, "key not authorized")),
        (err: unknown) => {
          this.log.warn({ peer: encodeKey(key), err: (err as Error)?.message }, "relay authorization failed");
          this.fail(p, CloseCode.AUTH_FAILED, "authorization failed");
        },
      );
  }

  private admit(p: PeerConn, key: Buffer): void {
    if (p.state === "closed" || this.closed) return;
    if (p.handshakeTimer) clearTimeout(p.handshakeTimer);
    p.handshakeTimer = null;
    p.key = key;
    p.keyStr = key.toString("latin1");
    p.state = "open";
    const old = this.byKey.get(p.keyStr);
    this.byKey.set(p.keyStr, p);
    if (old) {
      this.log.debug({ peer: p.name, remoteAddress: p.remoteAddress }, "relay peer replaced its connection");
      this.fail(old, CloseCode.REPLACED, "replaced");
      // The old connection's pair streams are dead: tell whoever talked to it, before the new
      // connection can send anything (it waits for OK), so no notice overtakes its frames.
      this.notifyWatchers(key, p.keyStr, p);
    } else {
      this.log.debug({ peer: p.name, remoteAddress: p.remoteAddress }, "relay peer connected");
    }
    this.sendControl(p, encodeOk());
    if (!old) this.emit("peer", key, true);
  }

  /** Closes one connection with a code and reason; never throws. */
  private fail(p: PeerConn, code: number, reason: string): void {
    if (p.state === "closed") return;
    this.log.debug({ peer: p.name, remoteAddress: p.remoteAddress, code, reason }, "relay closing connection");
    try {
      p.ws.close(code, reason.slice(0, 120));
    } catch {
      p.ws.terminate();
    }
    this.cleanup(p);
  }

  private cleanup(p: PeerConn): void {
    if (p.state === "closed") return;
    p.state = "closed";
    if (p.handshakeTimer) clearTimeout(p.handshakeTimer);
    p.handshakeTimer = null;
    this.conns.delete(p);
    for (const d of p.sentTo) {
      const set = this.watchers.get(d);
      if (set) {
        set.delete(p);
        if (set.size === 0) this.watchers.delete(d);
      }
    }
    p.sentTo.clear();
    if (p.key && this.byKey.get(p.keyStr) === p) {
      this.byKey.delete(p.keyStr);
      this.log.debug({ peer: p.name }, "relay peer disconnected");
      this.notifyWatchers(p.key, p.keyStr, null);
      this.emit("peer", p.key, false);
    }
  }

  private keepalive(): void {
    for (const p of this.conns) {
      if (p.state !== "open") continue;
      if (p.seen) {
        p.seen = false;
        p.missed = 0;
        continue;
      }
      p.missed++;
      if (p.missed >= 3) {
        this.log.debug({ peer: p.name }, "relay peer stopped answering pings");
        p.ws.terminate();
        this.cleanup(p);
        continue;
      }
      this.sendControl(p, encodePing());
    }
  }

  // ---- forwarding ----

  /** The hot path: a SEND from a local peer, rewritten in place into the RECV. */
  private route(src: PeerConn, frame: Buffer): void {
    const dstStr = frame.toString("latin1", 1, ADDRESSED_HEADER);
    const dst = this.byKey.get(dstStr);
    if (dst) {
      this.noteInterest(src, dstStr);
      frame[0] = FrameType.RECV;
      (src.key as Buffer).copy(frame, 1);
      this.push(dst, frame, frame.length - ADDRESSED_HEADER);
      return;
    }
    const dstKey = Buffer.from(frame.subarray(1, ADDRESSED_HEADER));
    if (this.handOff(src.key as Buffer, dstKey, frame.subarray(ADDRESSED_HEADER))) {
      this.noteInterest(src, dstStr);
      return;
    }
    this.peerGone(src, dstStr, dstKey);
  }

  private handOff(src: Buffer, dst: Buffer, body: Buffer): boolean {
    const hook = this.onUnknownDestination;
    if (!hook) return false;
    try {
      return hook(src, dst, body) === true;
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, "relay onUnknownDestination threw");
      return false;
    }
  }

  /** Queues a RECV frame for dst, or drops it when dst's queue is full. */
  private push(dst: PeerConn, frame: Buffer, bodyLength: number): void {
    const ws = dst.ws;
    if (dst.state !== "open" || ws.readyState !== WebSocket.OPEN || ws.bufferedAmount + frame.length > this.maxQueueBytes) {
      this.framesDropped++;
      this.bytesDropped += bodyLength;
      return;
    }
    ws.send(frame, SEND_OPTIONS);
    this.framesForwarded++;
    this.bytesForwarded += bodyLength;
  }

  private sendControl(p: PeerConn, frame: Buffer): void {
    const ws = p.ws;
    if (ws.readyState !== WebSocket.OPEN || ws.bufferedAmount > this.maxQueueBytes + CONTROL_SLACK) {
      this.framesDropped++;
      return;
    }
    ws.send(frame, SEND_OPTIONS);
  }

  private noteInterest(src: PeerConn, dstStr: string): void {
    if (src.lastDst === dstStr) return;
    src.lastDst = dstStr;
    if (src.sentTo.has(dstStr) || src.sentTo.size >= MAX_INTEREST) return;
    src.sentTo.add(dstStr);
    let set = this.watchers.get(dstStr);
    if (!set) {
      set = new Set();
      this.watchers.set(dstStr, set);
    }
    set.add(src);
  }

  /** PEER_GONE for a SEND to an absent key: once per key and turn of the event loop. */
  private peerGone(src: PeerConn, dstStr: string, dstKey: Buffer): void {
    if (src.goneNotified.has(dstStr)) return;
    src.goneNotified.add(dstStr);
    if (!src.goneClearScheduled) {
      src.goneClearScheduled = true;
      setImmediate(() => {
        src.goneClearScheduled = false;
        src.goneNotified.clear();
      });
    }
    this.sendControl(src, encodePeerGone(dstKey));
  }

  /** Tells the local peers that sent to key (except `except`) that it is gone. */
  private notifyWatchers(key: Buffer, keyStr: string, except: PeerConn | null): void {
    const set = this.watchers.get(keyStr);
    if (!set) return;
    this.watchers.delete(keyStr);
    const frame = encodePeerGone(key);
    for (const w of set) {
      w.sentTo.delete(keyStr);
      if (w.lastDst === keyStr) w.lastDst = "";
      if (w !== except && w.state === "open") this.sendControl(w, frame);
    }
  }
}
