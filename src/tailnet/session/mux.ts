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
//   RESUME  a resumable stream moves here from a session that died; payload = JSON
//           {token, received, fin, header?}: the bytes we received of it, whether its FIN came,
//           and its OPEN header if the peer never confirmed the stream
//   RESUMED the peer took the stream over; payload = JSON {received, fin}, the same from its side
//   HELLO, GOAWAY  session-level frames on stream id 0, handled by the session
//
// Flow control: each direction of each stream starts with INITIAL_WINDOW bytes of credit; a
// receiver configured for a larger window grants the difference as soon as the stream exists.
// Credit is returned only as the consumer reads (bytes handed to the Duplex's readable side in
// _read), so a reader that stops reading stops its sender, and nothing else. The transport is
// shared fairly: streams with data and credit take turns, one frame each, and none is written
// while the transport reports backpressure.
//
// Resumable streams (opened with a token) survive the death of their session: the bytes each side
// sent and the peer's reader has not yet consumed are kept (at most the peer's receive window, as
// flow control allows no more in flight), the stream is suspended rather than destroyed, and its
// opener moves it to another session with RESUME. Both sides then say how much they received and
// send the rest again, so the reader sees every byte once and in order. Acknowledgement is the
// flow-control credit itself: after the peer's first WINDOW frame on a stream (its initial grant,
// always sent), every increment is bytes its reader consumed. What is kept are views of the
// writer's own chunks, not copies (at gigabits a second the copies cost more GC than the crypto):
// like a socket, a resumable stream expects a written chunk's memory not to be reused.
import { Duplex } from "node:stream";

export const FRAME_OPEN = 0x01;
export const FRAME_DATA = 0x02;
export const FRAME_WINDOW = 0x03;
export const FRAME_FIN = 0x04;
export const FRAME_RST = 0x05;
export const FRAME_RESUME = 0x06;
export const FRAME_RESUMED = 0x07;
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
const RESUME_TOKEN = /^[0-9a-f]{32}$/;
const EMPTY = Buffer.alloc(0);
/** How long a suspended stream waits to be resumed before it fails. */
export const DEFAULT_RESUME_TIMEOUT_MS = 60_000;

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
  /**
   * Where streams the peer opened as resumable are kept, so a RESUME on another session can find
   * them. Without it, the peer's streams are not resumable here (a RESUME is answered with RST).
   */
  resumable?: {
    add(token: string, stream: MuxStream): boolean;
    find(token: string): MuxStream | undefined;
  };
  /** How long a suspended stream waits for RESUME before it fails. Default 60 s. */
  resumeTimeoutMs?: number;
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
  /** @internal set when resumable: names the stream across sessions */ token: string | undefined;
  /** @internal payload bytes framed to / acknowledged by / received from the peer, over the stream's life */
  sentBytes = 0;
  /** @internal */ ackedBytes = 0;
  /** @internal */ receivedBytes = 0;
  /** @internal the bytes sent and not yet acknowledged, from unackedHead on (resumable streams only) */
  unacked: Buffer[] = [];
  private unackedHead = 0;
  /** @internal the peer's first WINDOW frame is its initial grant, not an acknowledgement */
  initialGrantSeen = false;
  /** @internal queued bytes that came over an earlier session: consuming them returns no credit */
  creditDebt = 0;
  /**
   * @internal the OPEN header of a resumable stream until the peer shows it has the stream (its
   * first WINDOW): a session that died before its OPEN arrived leaves nothing to resume, so the
   * RESUME carries the header and the peer opens the stream then.
   */
  openHeader: string | undefined;
  /** @internal RESUME sent, RESUMED not yet back: where the peer stands is unknown, send nothing */
  awaitingResume = false;
  /** @internal our FIN goes out once the pending bytes are sent */
  finAfterPending = false;
  private suspendTimer: NodeJS.Timeout | undefined;

  constructor(
    /** @internal the session's mux; null while suspended */ public mux: Mux | null,
    /** @internal */ public id: number,
  ) {
    super({ allowHalfOpen: true, readableHighWaterMark: MAX_DATA_PAYLOAD, writableHighWaterMark: 256 * 1024 });
  }

  /** Whether the stream can outlive its session (it is suspended, then resumed on another). */
  get resumable(): boolean {
    return this.token !== undefined;
  }

  /** Waiting, after its session died, to be resumed on another. */
  get suspended(): boolean {
    return this.mux === null && !this.destroyed;
  }

  /**
   * @internal Its session died: keep everything and wait `timeoutMs` to be resumed ('suspend' tells
   * the owner), then fail with err.
   */
  suspend(err: Error, timeoutMs: number): void {
    this.mux = null;
    this.queued = false;
    this.awaitingResume = false;
    clearTimeout(this.suspendTimer);
    this.suspendTimer = setTimeout(() => this.destroy(new Error(`${err.message} (not resumed within ${Math.round(timeoutMs / 1000)}s)`, { cause: err })), timeoutMs);
    this.suspendTimer.unref();
    this.emit("suspend", err);
  }

  /** @internal Moves onto `mux` as stream `id`, with fresh flow control. */
  attach(mux: Mux, id: number): void {
    clearTimeout(this.suspendTimer);
    this.mux = mux;
    this.id = id;
    this.queued = false;
    this.sendWindow = INITIAL_WINDOW;
    this.recvAllowance = INITIAL_WINDOW;
    this.initialGrantSeen = false;
    // Credit for what came before is settled by the resume exchange, not by WINDOW frames.
    this.creditPending = 0;
    this.creditDebt = this.recvQueue.reduce((n, b) => n + b.length, 0);
  }

  /** @internal The peer's reader consumed n more of our bytes: let them go. */
  acknowledge(n: number): void {
    n = Math.min(n, this.sentBytes - this.ackedBytes);
    this.ackedBytes += n;
    const q = this.unacked;
    while (n > 0) {
      const head = q[this.unackedHead]!;
      if (head.length <= n) {
        q[this.unackedHead++] = EMPTY;
        n -= head.length;
      } else {
        q[this.unackedHead] = head.subarray(n);
        n = 0;
      }
    }
    // Tiny writes make long queues: drop the consumed front now and then, not on every ack.
    if (this.unackedHead > 1024 && this.unackedHead * 2 > q.length) {
      this.unacked = q.slice(this.unackedHead);
      this.unackedHead = 0;
    }
  }

  /** @internal What is kept for sending again (always sentBytes - ackedBytes). */
  get unackedBytes(): number {
    let n = 0;
    for (let i = this.unackedHead; i < this.unacked.length; i++) n += this.unacked[i]!.length;
    return n;
  }

  /** @internal Takes the bytes sent and not acknowledged (to send them again). */
  takeUnacked(): Buffer[] {
    const rest = this.unacked.slice(this.unackedHead);
    this.unacked = [];
    this.unackedHead = 0;
    return rest;
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
    this.enqueue([chunk], chunk.length, cb);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    let remaining = 0;
    const bufs = chunks.map((c) => {
      remaining += c.chunk.length;
      return c.chunk;
    });
    this.enqueue(bufs, remaining, cb);
  }

  private enqueue(chunks: Buffer[], length: number, cb: (err?: Error | null) => void): void {
    if (this.rstReceived) return cb();
    // Only bytes being sent again after a resume can be pending here (they have no callback).
    const p = this.pending;
    if (p) {
      p.chunks.push(...chunks);
      p.remaining += length;
      p.cb = cb;
    } else this.pending = { chunks, index: 0, offset: 0, remaining: length, cb };
    this.mux?.schedule(this);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.localFin = true;
    if (!this.rstReceived) this.mux?.sendFin(this);
    cb();
  }

  override _read(): void {
    this.wantRead = true;
    this.deliver();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    clearTimeout(this.suspendTimer);
    this.pending = null;
    this.recvQueue = [];
    this.takeUnacked();
    this.mux?.streamDestroyed(this, err);
    cb(err);
  }

  /** @internal Hands queued data to the reader while it wants more, returning credit for it. */
  deliver(): void {
    while (this.wantRead && this.recvQueue.length > 0) {
      const buf = this.recvQueue.shift()!;
      const owed = Math.min(this.creditDebt, buf.length);
      this.creditDebt -= owed;
      this.creditPending += buf.length - owed;
      this.wantRead = this.push(buf);
    }
    if (this.recvQueue.length === 0 && this.remoteFin && !this.eofPushed) {
      this.eofPushed = true;
      this.push(null);
    }
    this.mux?.maybeGrant(this);
  }
}

export class Mux {
  private readonly streams = new Map<number, MuxStream>();
  private readonly isInitiator: boolean;
  private readonly receiveWindow: number;
  private readonly creditThreshold: number;
  private readonly maxStreams: number;
  private readonly resumeTimeoutMs: number;
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
    this.resumeTimeoutMs = opts.resumeTimeoutMs ?? DEFAULT_RESUME_TIMEOUT_MS;
  }

  get streamCount(): number {
    return this.streams.size;
  }

  get closed(): boolean {
    return this.closedWith !== null;
  }

  /**
   * Opens a stream; usable at once (frames wait for start()). With `resumeToken` (32 hex digits,
   * unique) the stream is resumable: it travels in the header as `resume_token`.
   */
  openStream(header: object, resumeToken?: string): MuxStream {
    if (header === null || typeof header !== "object" || Array.isArray(header)) throw new TypeError("stream header must be a JSON object");
    if ("resume_token" in header) throw new TypeError("resume_token is reserved in stream headers");
    if (resumeToken !== undefined && !RESUME_TOKEN.test(resumeToken)) throw new TypeError("a resume token is 32 lowercase hex digits");
    const json = Buffer.from(JSON.stringify(resumeToken ? { ...header, resume_token: resumeToken } : header), "utf8");
    if (json.length > MAX_OPEN_HEADER_BYTES) throw new RangeError(`stream header is ${json.length} bytes; at most ${MAX_OPEN_HEADER_BYTES} allowed`);
    const stream = new MuxStream(this, this.allocateId());
    stream.token = resumeToken;
    if (resumeToken) stream.openHeader = JSON.stringify(header);
    this.streams.set(stream.id, stream);
    this.writeFrame(frame(FRAME_OPEN, stream.id, json));
    this.grantInitial(stream);
    return stream;
  }

  /** Moves a suspended resumable stream (of this side's opening) onto this session. */
  resume(stream: MuxStream): void {
    if (!stream.resumable) throw new TypeError("only a resumable stream can be resumed");
    if (!stream.suspended) throw new Error(stream.destroyed ? "the stream is destroyed" : "the stream is not suspended");
    const id = this.allocateId();
    stream.attach(this, id);
    stream.awaitingResume = true;
    this.streams.set(id, stream);
    const resume = { token: stream.token, received: stream.receivedBytes, fin: stream.remoteFin, header: stream.openHeader && JSON.parse(stream.openHeader) };
    this.writeFrame(frame(FRAME_RESUME, id, Buffer.from(JSON.stringify(resume))));
    this.grantInitial(stream);
  }

  private allocateId(): number {
    if (this.closedWith) throw new Error("session is closed", { cause: this.closedWith });
    if (this.nextId > MAX_STREAM_ID) throw new Error("stream ids exhausted; open a new session");
    const id = this.nextId;
    this.nextId += 2;
    return id;
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

  /**
   * Nothing is sent any more. Every stream is destroyed with err, except, when `suspend` (the
   * transport failed, the peer did not close), resumable ones: they wait to be resumed elsewhere.
   */
  destroy(err: Error, suspend = false): void {
    if (this.closedWith) return;
    this.closedWith = err;
    this.preStart = [];
    this.readyQueue = [];
    const streams = [...this.streams.values()];
    this.streams.clear();
    for (const s of streams) {
      if (suspend && s.resumable) s.suspend(err, this.resumeTimeoutMs);
      else s.destroy(err);
    }
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
      case FRAME_RESUME:
        return this.onResume(id, payload);
      case FRAME_RESUMED:
        return this.onResumed(id, payload);
      default:
        return this.protocolError(`unknown frame type ${type}`);
    }
  }

  // --- sending

  /** @internal */
  schedule(s: MuxStream): void {
    if (this.closedWith || s.awaitingResume) return;
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
        if (s.destroyed || s.pending === null || s.sendWindow <= 0 || s.mux !== this) continue;
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
      if (s.resumable) s.unacked.push(chunk.subarray(p.offset, p.offset + take));
      at += take;
      p.offset += take;
      if (p.offset === chunk.length) {
        p.index++;
        p.offset = 0;
      }
    }
    p.remaining -= n;
    s.sendWindow -= n;
    s.sentBytes += n;
    this.bytesOut += n;
    if (!this.opts.write(f)) this.blocked = true;
    if (p.remaining === 0) {
      s.pending = null;
      if (s.finAfterPending) this.sendFin(s);
      p.cb();
    }
  }

  /** @internal */
  sendFin(s: MuxStream): void {
    if (this.closedWith || this.streams.get(s.id) !== s) return;
    if (s.pending !== null || s.awaitingResume) {
      s.finAfterPending = true;
      return;
    }
    s.finAfterPending = false;
    this.writeFrame(frame(FRAME_FIN, s.id));
    this.detachIfDone(s);
  }

  /** @internal The stream moved to another session: forget it without a word to this peer. */
  release(s: MuxStream): void {
    if (this.streams.get(s.id) !== s) return;
    this.streams.delete(s.id);
    if (s.queued) {
      s.queued = false;
      this.readyQueue = this.readyQueue.filter((q) => q !== s);
    }
  }

  /**
   * After a move: the peer has `peerReceived` of our bytes (and our FIN if `peerHasFin`). What it
   * lacks is sent again, ahead of anything still waiting to be sent.
   */
  private rewind(s: MuxStream, peerReceived: number, peerHasFin: boolean): void {
    if (peerReceived < s.ackedBytes || peerReceived > s.sentBytes) {
      s.reset(`cannot resume: the peer has ${peerReceived} bytes, this side kept ${s.ackedBytes} to ${s.sentBytes}`);
      return;
    }
    s.acknowledge(peerReceived - s.ackedBytes);
    const again = s.takeUnacked();
    const length = s.sentBytes - s.ackedBytes;
    s.sentBytes = peerReceived;
    if (length > 0) {
      const p = s.pending;
      const rest = p ? [p.chunks[p.index]!.subarray(p.offset), ...p.chunks.slice(p.index + 1)] : [];
      s.pending = { chunks: [...again, ...rest], index: 0, offset: 0, remaining: length + (p?.remaining ?? 0), cb: p?.cb ?? (() => {}) };
    }
    s.finAfterPending = false;
    if (s.localFin && !peerHasFin) this.sendFin(s);
    else this.detachIfDone(s);
    this.schedule(s);
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

  /** Always sent, even for 0: the peer tells this grant from acknowledgements by its place. */
  private grantInitial(s: MuxStream): void {
    const extra = this.receiveWindow - INITIAL_WINDOW;
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
    const h = header as Record<string, unknown>;
    const token = h.resume_token;
    if (token !== undefined && (typeof token !== "string" || !RESUME_TOKEN.test(token))) return this.protocolError("resume_token is not 32 hex digits");
    delete h.resume_token;
    this.lastRemoteId = id;
    this.openRemote(id, h, token, false);
  }

  /** A stream the peer opened (by OPEN, or by a RESUME of one whose OPEN never arrived). */
  private openRemote(id: number, h: Record<string, unknown>, token: string | undefined, byResume: boolean): void {
    const stream = new MuxStream(this, id);
    this.streams.set(id, stream);
    if (byResume) this.writeFrame(frame(FRAME_RESUMED, id, Buffer.from(JSON.stringify({ received: 0, fin: false }))));
    this.grantInitial(stream);
    if (this.streams.size > this.maxStreams) {
      stream.reset(`too many streams (limit ${this.maxStreams})`);
      return;
    }
    if (token !== undefined && this.opts.resumable) {
      if (!this.opts.resumable.add(token, stream)) return stream.reset("resume token already in use");
      stream.token = token;
    }
    if (!this.opts.onStream(h, stream)) stream.reset("no handler for incoming streams");
  }

  private onResume(id: number, payload: Buffer): void {
    if (this.isLocalId(id)) return this.protocolError(`peer resumed stream ${id} with our id parity`);
    if (id <= this.lastRemoteId) return this.protocolError(`stream id ${id} reused or out of order`);
    if (payload.length > MAX_OPEN_HEADER_BYTES + 256) return this.protocolError(`RESUME of ${payload.length} bytes`);
    const msg = parseJson(payload);
    const { token, received, fin, header } = (msg ?? {}) as Record<string, unknown>;
    if (
      typeof token !== "string" ||
      !RESUME_TOKEN.test(token) ||
      !Number.isSafeInteger(received) ||
      (received as number) < 0 ||
      typeof fin !== "boolean" ||
      (header !== undefined && (header === null || typeof header !== "object" || Array.isArray(header)))
    ) {
      return this.protocolError("RESUME is not {token, received, fin, header?}");
    }
    this.lastRemoteId = id;
    const s = this.opts.resumable?.find(token);
    if (!s && header && received === 0 && !fin && this.opts.resumable) {
      // Its OPEN died with the old session: this is the stream's real start.
      return this.openRemote(id, header as Record<string, unknown>, token, true);
    }
    if (!s || s.destroyed || s.awaitingResume) {
      this.writeFrame(frame(FRAME_RST, id, reasonBytes("no such stream to resume")));
      return;
    }
    // The peer saw its old session die, maybe before we saw ours: it moves here either way.
    s.mux?.release(s);
    s.attach(this, id);
    this.streams.set(id, s);
    this.writeFrame(frame(FRAME_RESUMED, id, Buffer.from(JSON.stringify({ received: s.receivedBytes, fin: s.remoteFin }))));
    this.grantInitial(s);
    this.rewind(s, received as number, fin);
  }

  private onResumed(id: number, payload: Buffer): void {
    const s = this.streams.get(id);
    if (!s) return this.unknownStream(id, "RESUMED");
    if (!s.awaitingResume) return this.protocolError(`RESUMED for stream ${id}, which was not resumed`);
    const { received, fin } = (parseJson(payload) ?? {}) as Record<string, unknown>;
    if (!Number.isSafeInteger(received) || (received as number) < 0 || typeof fin !== "boolean") return this.protocolError("RESUMED is not {received, fin}");
    s.awaitingResume = false;
    this.rewind(s, received as number, fin);
  }

  private onData(id: number, payload: Buffer): void {
    const s = this.streams.get(id);
    if (!s) return this.unknownStream(id, "DATA");
    if (s.remoteFin) return this.protocolError(`DATA after FIN on stream ${id}`);
    if (payload.length > MAX_DATA_PAYLOAD) return this.protocolError(`DATA frame of ${payload.length} bytes`);
    if (payload.length > s.recvAllowance) return this.protocolError(`peer exceeded the flow-control window on stream ${id}`);
    s.recvAllowance -= payload.length;
    s.receivedBytes += payload.length;
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
    if (!s.initialGrantSeen) {
      s.initialGrantSeen = true;
      s.openHeader = undefined;
    } else if (s.resumable) s.acknowledge(inc);
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

function parseJson(payload: Buffer): unknown {
  try {
    return JSON.parse(payload.toString("utf8"));
  } catch {
    return undefined;
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
