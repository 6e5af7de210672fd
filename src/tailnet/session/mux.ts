// A stream multiplexer over a message-oriented channel (one write = one message on the other
// side, as @hyperswarm/secret-stream guarantees: every write is encrypted as one length-prefixed
// message and pushed as one chunk). Each frame is one message:
//
//   [type u8][stream id u32 BE][payload]
//
//   OPEN    payload = UTF-8 JSON header object (<= 4 KiB); the opener may send DATA right away
//   DATA    payload = bytes (<= 64 KiB), counted against the receiver's window
//   WINDOW  payload = u32 BE credit increment
//   FIN     the sender will send no more DATA on this stream (half-close)
//   RST     abort the stream; payload = optional UTF-8 reason
//   HELLO, GOAWAY  session-level frames on stream id 0, handled by the session
//
// Flow control: each direction of each stream starts with INITIAL_WINDOW bytes of credit; a
// receiver configured for a larger window grants the difference as soon as the stream exists.
// Credit is returned only as the consumer reads (bytes handed to the Duplex's readable side in
// _read), so a reader that stops reading stops its sender, and nothing else. The transport is
// shared fairly: streams with data and credit take turns, one frame each, and none is written
// while the transport reports backpressure.
import { Duplex } from "node:stream";

export const FRAME_OPEN = 0x01;
export const FRAME_DATA = 0x02;
export const FRAME_WINDOW = 0x03;
export const FRAME_FIN = 0x04;
export const FRAME_RST = 0x05;
/** How long a stream whose peer reset it after its FIN waits for its reader to drain it. */
const ABANDONED_STREAM_MS = 30_000;
/** Session-level frames (stream id 0), passed to MuxOptions.onControl. */
export const FRAME_HELLO = 0x10;
export const FRAME_GOAWAY = 0x11;

export const FRAME_HEADER_BYTES = 5;
export const MAX_DATA_PAYLOAD = 64 * 1024;
export const MAX_OPEN_HEADER_BYTES = 4 * 1024;
const MAX_REASON_BYTES = 1024;
/** Credit each side of a new stream has before any WINDOW frame: part of the protocol. */
export const INITIAL_WINDOW = 256 * 1024;
/** Default receive window per stream (the extra over INITIAL_WINDOW is granted on creation). */
export const DEFAULT_RECEIVE_WINDOW = 2 * 1024 * 1024;
export const DEFAULT_MAX_STREAMS = 256;
const MAX_WINDOW = 0x7fffffff;
const MAX_STREAM_ID = 0xffffffff;

export class ProtocolError extends Error {
  constructor(message: string) {
    super(`protocol error: ${message}`);
    this.name = "ProtocolError";
  }
}

export interface MuxOptions {
  isInitiator: boolean;
  /** Sends one frame as one message. false = backpressure: call drained() when it clears. */
  write(frame: Buffer): boolean;
  /**
   * Optional zero-copy frame buffer (SecretStream.alloc): the buffer returned is always filled
   * and passed to the very next write().
   */
  alloc?(len: number): Buffer;
  /** A peer opened a stream. Return false when nobody will serve it (it is reset). */
  onStream(header: Record<string, unknown>, stream: MuxStream): boolean;
  /** A session-level frame (HELLO, GOAWAY, ...). */
  onControl(type: number, payload: Buffer): void;
  /** The peer broke the protocol: the session must close. */
  onProtocolError(err: ProtocolError): void;
  /** Bytes per stream a peer may send ahead of our reader (>= INITIAL_WINDOW). */
  receiveWindow?: number;
  /** Concurrent streams the peer may open; beyond, new ones are reset. */
  maxStreams?: number;
}

interface PendingWrite {
  chunks: Buffer[];
  index: number;
  offset: number;
  remaining: number;
  cb: (err?: Error | null) => void;
}

/** One multiplexed stream: a Node Duplex (half-open allowed) with credit-based flow control. */
export class MuxStream extends Duplex {
  /** @internal */ sendWindow = INITIAL_WINDOW;
  /** @internal bytes the peer may still send before we grant more */ recvAllowance = INITIAL_WINDOW;
  /** @internal */ pending: PendingWrite | null = null;
  /** @internal in the mux's ready queue */ queued = false;
  /** @internal */ recvQueue: Buffer[] = [];
  /** @internal */ wantRead = false;
  /** @internal consumed bytes not yet returned as credit */ creditPending = 0;
  /** @internal */ remoteFin = false;
  /** @internal */ eofPushed = false;
  /** @internal */ localFin = false;
  /** @internal */ rstReceived = false;
  /** @internal reason sent with our RST */ resetReason: string | undefined;

  constructor(
    private readonly mux: Mux,
    readonly id: number,
  ) {
    super({ allowHalfOpen: true, readableHighWaterMark: MAX_DATA_PAYLOAD, writableHighWaterMark: 256 * 1024 });
  }

  /**
   * Aborts the stream and tells the peer why (an RST with this reason; the peer's stream fails
   * with "stream reset by peer: <reason>"). Unlike destroy(err), no 'error' is emitted here.
   */
  reset(reason = ""): void {
    if (this.destroyed) return;
    this.resetReason = reason;
    this.destroy();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.rstReceived) return cb();
    this.pending = { chunks: [chunk], index: 0, offset: 0, remaining: chunk.length, cb };
    this.mux.schedule(this);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    if (this.rstReceived) return cb();
    let remaining = 0;
    const bufs = chunks.map((c) => {
      remaining += c.chunk.length;
      return c.chunk;
    });
    this.pending = { chunks: bufs, index: 0, offset: 0, remaining, cb };
    this.mux.schedule(this);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.localFin = true;
    if (!this.rstReceived) this.mux.sendFin(this);
    cb();
  }

  override _read(): void {
    this.wantRead = true;
    this.deliver();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.pending = null;
    this.recvQueue = [];
    this.mux.streamDestroyed(this, err);
    cb(err);
  }

  /** @internal Hands queued data to the reader while it wants more, returning credit for it. */
  deliver(): void {
    while (this.wantRead && this.recvQueue.length > 0) {
      const buf = this.recvQueue.shift()!;
      this.creditPending += buf.length;
      this.wantRead = this.push(buf);
    }
    if (this.recvQueue.length === 0 && this.remoteFin && !this.eofPushed) {
      this.eofPushed = true;
      this.push(null);
    }
    this.mux.maybeGrant(this);
  }
}

export class Mux {
  private readonly streams = new Map<number, MuxStream>();
  private readonly isInitiator: boolean;
  private readonly receiveWindow: number;
  private readonly creditThreshold: number;
  private readonly maxStreams: number;
  private nextId: number;
  private lastRemoteId = 0;
  private started = false;
  private blocked = false;
  private closedWith: Error | null = null;
  private preStart: Buffer[] = [];
  private readyQueue: MuxStream[] = [];
  private servicing = false;
  bytesIn = 0;
  bytesOut = 0;

  constructor(private readonly opts: MuxOptions) {
    this.isInitiator = opts.isInitiator;
    this.nextId = opts.isInitiator ? 1 : 2;
    this.receiveWindow = Math.min(MAX_WINDOW, Math.max(INITIAL_WINDOW, opts.receiveWindow ?? DEFAULT_RECEIVE_WINDOW));
    this.creditThreshold = Math.max(16 * 1024, Math.floor(this.receiveWindow / 4));
    this.maxStreams = opts.maxStreams ?? DEFAULT_MAX_STREAMS;
  }

  get streamCount(): number {
    return this.streams.size;
  }

  get closed(): boolean {
    return this.closedWith !== null;
  }

  /** Opens a stream; usable at once (frames wait for start()). */
  openStream(header: object): MuxStream {
    if (this.closedWith) throw new Error("session is closed", { cause: this.closedWith });
    if (header === null || typeof header !== "object" || Array.isArray(header)) throw new TypeError("stream header must be a JSON object");
    const json = Buffer.from(JSON.stringify(header), "utf8");
    if (json.length > MAX_OPEN_HEADER_BYTES) throw new RangeError(`stream header is ${json.length} bytes; at most ${MAX_OPEN_HEADER_BYTES} allowed`);
    if (this.nextId > MAX_STREAM_ID) throw new Error("stream ids exhausted; open a new session");
    const id = this.nextId;
    this.nextId += 2;
    const stream = new MuxStream(this, id);
    this.streams.set(id, stream);
    this.writeFrame(frame(FRAME_OPEN, id, json));
    this.grantInitial(stream);
    return stream;
  }

  /** The channel is verified: frames may flow. */
  start(): void {
    if (this.started || this.closedWith) return;
    this.started = true;
    const queued = this.preStart;
    this.preStart = [];
    for (const f of queued) this.writeFrame(f);
    this.service();
  }

  /** The transport's backpressure cleared. */
  drained(): void {
    this.blocked = false;
    this.service();
  }

  /** Sends a session-level frame (bypasses the pre-start queue only when started). */
  sendControl(type: number, payload: Buffer = Buffer.alloc(0)): void {
    this.writeFrame(frame(type, 0, payload));
  }

  /** Destroys every stream with err; nothing is sent any more. */
  destroy(err: Error): void {
    if (this.closedWith) return;
    this.closedWith = err;
    this.preStart = [];
    this.readyQueue = [];
    for (const s of [...this.streams.values()]) s.destroy(err);
    this.streams.clear();
  }

  /** One message from the channel. */
  receive(msg: Buffer): void {
    if (this.closedWith) return;
    if (msg.length < FRAME_HEADER_BYTES) return this.protocolError(`frame of ${msg.length} bytes`);
    const type = msg[0]!;
    const id = msg.readUInt32BE(1);
    const payload = msg.subarray(FRAME_HEADER_BYTES);
    if (id === 0) {
      if (type < FRAME_HELLO) return this.protocolError(`frame type ${type} on stream 0`);
      this.opts.onControl(type, payload);
      return;
    }
    switch (type) {
      case FRAME_OPEN:
        return this.onOpen(id, payload);
      case FRAME_DATA:
        return this.onData(id, payload);
      case FRAME_WINDOW:
        return this.onWindow(id, payload);
      case FRAME_FIN:
        return this.onFin(id);
      case FRAME_RST:
        return this.onRst(id, payload);
      default:
        return this.protocolError(`unknown frame type ${type}`);
    }
  }

  // --- sending

  /** @internal */
  schedule(s: MuxStream): void {
    if (this.closedWith) return;
    if (!s.queued && s.pending !== null && s.sendWindow > 0) {
      s.queued = true;
      this.readyQueue.push(s);
    }
    this.service();
  }

  /** Round robin, one frame per turn, while the transport takes more. */
  private service(): void {
    if (this.servicing) return;
    this.servicing = true;
    try {
      while (this.started && !this.blocked && !this.closedWith && this.readyQueue.length > 0) {
        const s = this.readyQueue.shift()!;
        s.queued = false;
        if (s.destroyed || s.pending === null || s.sendWindow <= 0) continue;
        this.sendData(s);
        if (!s.queued && s.pending !== null && s.sendWindow > 0) {
          s.queued = true;
          this.readyQueue.push(s);
        }
      }
    } finally {
      this.servicing = false;
    }
  }

  private sendData(s: MuxStream): void {
    const p = s.pending!;
    const n = Math.min(MAX_DATA_PAYLOAD, p.remaining, s.sendWindow);
    const len = FRAME_HEADER_BYTES + n;
    const f = this.opts.alloc ? this.opts.alloc(len) : Buffer.allocUnsafe(len);
    f[0] = FRAME_DATA;
    f.writeUInt32BE(s.id, 1);
    let at = FRAME_HEADER_BYTES;
    while (at < len) {
      const chunk = p.chunks[p.index]!;
      const take = Math.min(chunk.length - p.offset, len - at);
      chunk.copy(f, at, p.offset, p.offset + take);
      at += take;
      p.offset += take;
      if (p.offset === chunk.length) {
        p.index++;
        p.offset = 0;
      }
    }
    p.remaining -= n;
    s.sendWindow -= n;
    this.bytesOut += n;
    if (!this.opts.write(f)) this.blocked = true;
    if (p.remaining === 0) {
      s.pending = null;
      p.cb();
    }
  }

  /** @internal */
  sendFin(s: MuxStream): void {
    if (this.closedWith || !this.streams.has(s.id)) return;
    this.writeFrame(frame(FRAME_FIN, s.id));
    this.detachIfDone(s);
  }

  /**
   * Once both sides sent FIN nothing more can happen on the wire for this stream: forget it. What
   * the reader has yet to consume stays readable, even after the session closes.
   */
  private detachIfDone(s: MuxStream): void {
    if (!s.localFin || !s.remoteFin || this.streams.get(s.id) !== s) return;
    this.streams.delete(s.id);
    if (s.queued) {
      s.queued = false;
      this.readyQueue = this.readyQueue.filter((q) => q !== s);
    }
  }

  /** @internal Returns credit once enough was consumed (never while the reader is stalled). */
  maybeGrant(s: MuxStream): void {
    if (s.remoteFin || s.creditPending < this.creditThreshold || this.closedWith || s.destroyed) return;
    const inc = s.creditPending;
    s.creditPending = 0;
    s.recvAllowance += inc;
    this.writeFrame(windowFrame(s.id, inc));
  }

  private grantInitial(s: MuxStream): void {
    const extra = this.receiveWindow - INITIAL_WINDOW;
    if (extra <= 0) return;
    s.recvAllowance += extra;
    this.writeFrame(windowFrame(s.id, extra));
  }

  /** @internal */
  streamDestroyed(s: MuxStream, err: Error | null): void {
    if (this.streams.get(s.id) !== s) return;
    this.streams.delete(s.id);
    if (s.queued) {
      s.queued = false;
      this.readyQueue = this.readyQueue.filter((q) => q !== s);
    }
    if (this.closedWith || s.rstReceived || (s.localFin && s.remoteFin)) return;
    this.writeFrame(frame(FRAME_RST, s.id, reasonBytes(s.resetReason ?? err?.message ?? "")));
  }

  private writeFrame(f: Buffer): void {
    if (this.closedWith) return;
    if (!this.started) {
      this.preStart.push(f);
      return;
    }
    if (!this.opts.write(f)) this.blocked = true;
  }

  // --- receiving

  private isLocalId(id: number): boolean {
    return (id % 2 === 1) === this.isInitiator;
  }

  /** A frame for a stream we no longer track (closed, or reset by us): ignored. Else an error. */
  private unknownStream(id: number, what: string): void {
    const stale = this.isLocalId(id) ? id < this.nextId : id <= this.lastRemoteId;
    if (!stale) this.protocolError(`${what} for unknown stream ${id}`);
  }

  private onOpen(id: number, payload: Buffer): void {
    if (this.isLocalId(id)) return this.protocolError(`peer opened stream ${id} with our id parity`);
    if (id <= this.lastRemoteId) return this.protocolError(`stream id ${id} reused or out of order`);
    if (payload.length > MAX_OPEN_HEADER_BYTES) return this.protocolError(`stream header of ${payload.length} bytes`);
    let header: unknown;
    try {
      header = JSON.parse(payload.toString("utf8"));
    } catch {
      return this.protocolError("stream header is not JSON");
    }
    if (header === null || typeof header !== "object" || Array.isArray(header)) return this.protocolError("stream header is not a JSON object");
    this.lastRemoteId = id;
    const stream = new MuxStream(this, id);
    this.streams.set(id, stream);
    this.grantInitial(stream);
    if (this.streams.size > this.maxStreams) {
      stream.reset(`too many streams (limit ${this.maxStreams})`);
      return;
    }
    if (!this.opts.onStream(header as Record<string, unknown>, stream)) stream.reset("no handler for incoming streams");
  }

  private onData(id: number, payload: Buffer): void {
    const s = this.streams.get(id);
    if (!s) return this.unknownStream(id, "DATA");
    if (s.remoteFin) return this.protocolError(`DATA after FIN on stream ${id}`);
    if (payload.length > MAX_DATA_PAYLOAD) return this.protocolError(`DATA frame of ${payload.length} bytes`);
    if (payload.length > s.recvAllowance) return this.protocolError(`peer exceeded the flow-control window on stream ${id}`);
    s.recvAllowance -= payload.length;
    this.bytesIn += payload.length;
    if (payload.length === 0) return;
    s.recvQueue.push(payload);
    s.deliver();
  }

  private onWindow(id: number, payload: Buffer): void {
    if (payload.length !== 4) return this.protocolError(`WINDOW frame of ${payload.length} bytes`);
    const s = this.streams.get(id);
    if (!s) return this.unknownStream(id, "WINDOW");
    const inc = payload.readUInt32BE(0);
    if (s.sendWindow + inc > MAX_WINDOW) return this.protocolError(`window overflow on stream ${id}`);
    s.sendWindow += inc;
    if (s.pending !== null) this.schedule(s);
  }

  private onFin(id: number): void {
    const s = this.streams.get(id);
    if (!s) return this.unknownStream(id, "FIN");
    if (s.remoteFin) return this.protocolError(`second FIN on stream ${id}`);
    s.remoteFin = true;
    this.detachIfDone(s);
    s.deliver();
  }

  private onRst(id: number, payload: Buffer): void {
    const s = this.streams.get(id);
    if (!s) return this.unknownStream(id, "RST");
    s.rstReceived = true;
    this.streams.delete(id);
    if (s.remoteFin) {
      // The peer had sent everything (FIN) and then stopped reading: what it sent is still
      // delivered, only our unsent writes are dropped. A peer that ends a stream and closes it
      // at once must not lose its last bytes.
      if (s.queued) {
        s.queued = false;
        this.readyQueue = this.readyQueue.filter((q) => q !== s);
      }
      const pending = s.pending;
      s.pending = null;
      pending?.cb();
      if (s.readableEnded) s.destroy();
      else {
        s.once("end", () => s.destroy());
        // A reader that never drains it does not keep it forever.
        setTimeout(() => s.destroy(), ABANDONED_STREAM_MS).unref();
      }
      return;
    }
    const reason = payload.length > 0 ? payload.subarray(0, MAX_REASON_BYTES).toString("utf8") : "";
    const err = new Error(reason ? `stream reset by peer: ${reason}` : "stream reset by peer") as NodeJS.ErrnoException;
    err.code = "ECONNRESET";
    s.destroy(err);
  }

  private protocolError(message: string): void {
    if (this.closedWith) return;
    this.opts.onProtocolError(new ProtocolError(message));
  }
}

function frame(type: number, id: number, payload?: Buffer): Buffer {
  const f = Buffer.allocUnsafe(FRAME_HEADER_BYTES + (payload?.length ?? 0));
  f[0] = type;
  f.writeUInt32BE(id, 1);
  if (payload) payload.copy(f, FRAME_HEADER_BYTES);
  return f;
}

function windowFrame(id: number, inc: number): Buffer {
  const f = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 4);
  f[0] = FRAME_WINDOW;
  f.writeUInt32BE(id, 1);
  f.writeUInt32BE(inc, 5);
  return f;
}

function reasonBytes(reason: string): Buffer {
  const b = Buffer.from(reason, "utf8");
  return b.length > MAX_REASON_BYTES ? b.subarray(0, MAX_REASON_BYTES) : b;
}
