// Pair streams ("conns"): reliable, ordered byte streams between two peers, multiplexed over
// their relay connections (body layout in frames.ts).
//
// Two credit windows keep every queue bounded:
//  - per conn, consumption-based: the receiver grants CREDIT for bytes as they move into the
//    Duplex's readable side (when _read asks for them), never merely because they arrived, so a
//    consumer that stops reading stops its sender after one window;
//  - per pair of peers ("link"), receipt-based: a sender keeps at most `linkWindow` DATA bytes
//    unacknowledged towards one peer, whatever its number of conns, and the receiver returns link
//    credit as bytes arrive. That bounds what waits in the relay for a destination per sender
//    (well under the relay's drop limit) without letting one slow consumer block the others.
//
// Frames carry stream offsets, so a frame the relay dropped anyway surfaces as an error on the conn
// instead of silently corrupting it.
import { Duplex } from "node:stream";
import {
  ACCEPTOR_BIT,
  ADDRESSED_HEADER,
  FrameType,
  MAX_DATA,
  MAX_RST_REASON,
  PAIR_HEADER,
  PairKind,
  encodePairSend,
} from "./frames.js";

/** Conn credit a dialer may use before the acceptor's first CREDIT (the acceptor knows it too). */
export const IMPLICIT_OPEN_CREDIT = 64 * 1024;
/** Smallest per-conn receive window. */
export const MIN_WINDOW = IMPLICIT_OPEN_CREDIT;
/** Link credit is returned in batches of this many bytes (so a link window must be larger). */
export const LINK_CREDIT_BATCH = 128 * 1024;
export const MIN_LINK_WINDOW = 2 * LINK_CREDIT_BATCH;

const DATA_HEADER = ADDRESSED_HEADER + PAIR_HEADER + 4;

/** What a conn needs from the client that carries it. */
export interface PairTransport {
  /** Sends a complete SEND frame to the relay; false when the relay connection is down. */
  sendFrame(frame: Buffer): boolean;
  /** The conn has bytes to send and credit: send them when the link and the socket allow. */
  schedule(conn: RelayConn): void;
  /** The conn is gone: forget it. */
  release(conn: RelayConn): void;
}

/** Per remote peer state on one relay connection. */
export class RemotePeer {
  /** Conns by the id as it appears in frames received from this peer. */
  readonly conns = new Map<number, RelayConn>();
  /** Conns with bytes to send and conn credit, served round-robin. */
  readonly ready = new Set<RelayConn>();
  /** DATA bytes this side may still send to the peer. */
  linkCredit: number;
  /** DATA bytes received from the peer and not yet acknowledged with link credit. */
  linkUnreturned = 0;
  pumping = false;

  constructor(
    readonly key: Buffer,
    readonly keyStr: string,
    readonly linkWindow: number,
  ) {
    this.linkCredit = linkWindow;
  }
}

export interface RelayConnInit {
  transport: PairTransport;
  peer: RemotePeer;
  /** Id written into frames this side sends. */
  sendId: number;
  /** Id carried by frames this side receives (the key in peer.conns). */
  recvId: number;
  /** Bytes the remote side lets us send before its first CREDIT. */
  sendCredit: number;
  /** This side's receive window. */
  recvWindow: number;
}

/** One pair stream. Emits 'error' when the peer resets it, becomes unreachable, or the relay is lost. */
export class RelayConn extends Duplex {
  /** The other peer's public key. */
  readonly remoteKey: Buffer;
  /** True on the dialing side. */
  readonly initiator: boolean;

  private readonly transport: PairTransport;
  readonly peer: RemotePeer;
  readonly sendId: number;
  readonly recvId: number;

  // send side
  private sendCredit: number;
  private sendOffset = 0;
  private pendingChunks: Buffer[] = [];
  private pendingIndex = 0;
  private pendingOff = 0;
  private pendingBytes = 0;
  private pendingCb: ((err?: Error | null) => void) | null = null;
  private localFin = false;

  // receive side
  private readonly recvWindow: number;
  private readonly creditBatch: number;
  private recvOffset = 0;
  /** Bytes moved into the readable buffer. */
  private delivered = 0;
  /** Bytes the remote may send in total. */
  private recvGranted: number;
  private inbox: Buffer[] = [];
  private inboxHead = 0;
  private wantRead = false;
  private draining = false;
  private remoteFin = false;
  private eofPushed = false;
  private resetByRemote = false;

  constructor(init: RelayConnInit) {
    super({ readableHighWaterMark: 64 * 1024, writableHighWaterMark: 256 * 1024, allowHalfOpen: true });
    this.transport = init.transport;
    this.peer = init.peer;
    this.remoteKey = init.peer.key;
    this.sendId = init.sendId;
    this.recvId = init.recvId;
    this.initiator = (init.sendId & ACCEPTOR_BIT) === 0;
    this.sendCredit = init.sendCredit;
    this.recvWindow = init.recvWindow;
    this.recvGranted = init.recvWindow;
    this.creditBatch = Math.max(1, Math.min(256 * 1024, Math.floor(init.recvWindow / 4)));
  }

  /** Conn id as chosen by the dialer. */
  get connId(): number {
    return (this.sendId & ~ACCEPTOR_BIT) >>> 0;
  }

  // ---- writable side ----

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.enqueue([chunk], chunk.length, cb);
  }

  override _writev(chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>, cb: (err?: Error | null) => void): void {
    const bufs = chunks.map((c) => c.chunk);
    let total = 0;
    for (const b of bufs) total += b.length;
    this.enqueue(bufs, total, cb);
  }

  private enqueue(bufs: Buffer[], total: number, cb: (err?: Error | null) => void): void {
    if (total === 0) {
      cb();
      return;
    }
    this.pendingChunks = bufs;
    this.pendingIndex = 0;
    this.pendingOff = 0;
    this.pendingBytes = total;
    this.pendingCb = cb;
    this.transport.schedule(this);
  }

  /** Whether sendOne would send something if the link had credit. */
  canSend(): boolean {
    return this.pendingBytes > 0 && this.sendCredit > 0 && !this.destroyed;
  }

  /** Sends one DATA frame (≤ MAX_DATA, within conn and link credit). Returns the bytes sent. */
  sendOne(): number {
    const peer = this.peer;
    const n = Math.min(MAX_DATA, this.sendCredit, peer.linkCredit, this.pendingBytes);
    if (n <= 0 || this.destroyed) return 0;
    const frame = Buffer.allocUnsafe(DATA_HEADER + n);
    frame[0] = FrameType.SEND;
    peer.key.copy(frame, 1);
    frame[ADDRESSED_HEADER] = PairKind.DATA;
    frame.writeUInt32BE(this.sendId >>> 0, ADDRESSED_HEADER + 1);
    frame.writeUInt32BE(this.sendOffset % 0x100000000, ADDRESSED_HEADER + PAIR_HEADER);
    let off = DATA_HEADER;
    let left = n;
    while (left > 0) {
      const chunk = this.pendingChunks[this.pendingIndex] as Buffer;
      const take = Math.min(chunk.length - this.pendingOff, left);
      chunk.copy(frame, off, this.pendingOff, this.pendingOff + take);
      off += take;
      left -= take;
      this.pendingOff += take;
      if (this.pendingOff === chunk.length) {
        this.pendingIndex++;
        this.pendingOff = 0;
      }
    }
    this.sendCredit -= n;
    peer.linkCredit -= n;
    this.sendOffset += n;
    this.pendingBytes -= n;
    if (!this.transport.sendFrame(frame)) {
      this.destroy(new Error("relay connection lost"));
      return 0;
    }
    if (this.pendingBytes === 0) {
      const cb = this.pendingCb;
      this.pendingCb = null;
      this.pendingChunks = [];
      cb?.();
    }
    return n;
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (!this.sendControl(PairKind.FIN, this.sendOffset % 0x100000000)) {
      cb(new Error("relay connection lost"));
      return;
    }
    this.localFin = true;
    cb();
  }

  // ---- readable side ----

  override _read(): void {
    this.wantRead = true;
    this.drain();
  }

  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.wantRead && this.inboxHead < this.inbox.length && !this.destroyed) {
        const chunk = this.inbox[this.inboxHead] as Buffer;
        this.inbox[this.inboxHead++] = EMPTY;
        this.delivered += chunk.length;
        this.wantRead = this.push(chunk);
      }
      if (this.inboxHead === this.inbox.length) {
        this.inbox = [];
        this.inboxHead = 0;
        if (this.remoteFin && !this.eofPushed && !this.destroyed) {
          this.eofPushed = true;
          this.push(null);
        }
      }
      // Grant credit for what the reader took, in batches; none needed after the peer's FIN.
      const uncredited = this.delivered + this.recvWindow - this.recvGranted;
      if (!this.remoteFin && uncredited >= this.creditBatch && !this.destroyed) {
        this.recvGranted += uncredited;
        this.sendControl(PairKind.CREDIT, uncredited);
      }
    } finally {
      this.draining = false;
    }
  }

  // ---- frames from the peer (called by the client) ----

  onData(offset: number, data: Buffer): void {
    if (this.destroyed) return;
    if (this.remoteFin) {
      this.destroy(new Error("protocol error: DATA after FIN"));
      return;
    }
    if (offset !== this.recvOffset % 0x100000000) {
      this.destroy(
        new Error(
          `data lost in transit at stream offset ${this.recvOffset} (the relay dropped frames for a congested destination)`,
        ),
      );
      return;
    }
    if (this.recvOffset + data.length > this.recvGranted) {
      this.destroy(new Error("protocol error: peer exceeded the flow-control window"));
      return;
    }
    this.recvOffset += data.length;
    if (data.length === 0) return;
    this.inbox.push(data);
    if (this.wantRead) this.drain();
  }

  onCredit(bytes: number): void {
    if (this.destroyed) return;
    this.sendCredit += bytes;
    if (this.pendingBytes > 0) this.transport.schedule(this);
  }

  onFin(offset: number): void {
    if (this.destroyed || this.remoteFin) return;
    if (offset !== this.recvOffset % 0x100000000) {
      this.destroy(new Error(`data lost in transit before end of stream at offset ${this.recvOffset}`));
      return;
    }
    this.remoteFin = true;
    this.drain();
  }

  onReset(reason: string): void {
    if (this.destroyed) return;
    this.resetByRemote = true;
    this.destroy(new Error(reason ? `conn reset by peer: ${reason}` : "conn reset by peer"));
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    if (!this.resetByRemote && !(this.localFin && this.remoteFin)) {
      const reason = Buffer.from(err?.message ?? "", "utf8").subarray(0, MAX_RST_REASON);
      this.transport.sendFrame(encodePairSend(this.peer.key, PairKind.RST, this.sendId, undefined, reason));
    }
    this.inbox = [];
    this.inboxHead = 0;
    this.pendingChunks = [];
    this.pendingBytes = 0;
    this.pendingCb = null;
    this.transport.release(this);
    cb(err);
  }

  private sendControl(kind: PairKind, value: number): boolean {
    return this.transport.sendFrame(encodePairSend(this.peer.key, kind, this.sendId, value));
  }
}

const EMPTY = Buffer.alloc(0);
