// An end-to-end encrypted session between two peers over any reliable, ordered Duplex (a relay
// pair stream, a TCP socket, a UDX stream), carrying multiplexed streams (see mux.ts).
//
// Crypto is @hyperswarm/secret-stream: a Noise XX handshake with ed25519 static keys, then
// libsodium secretstream (XChaCha20-Poly1305), which authenticates every message and its order,
// so a flipped, dropped, reordered or replayed message fails the whole channel.
//
// Who may talk to whom is decided outside (the coordinator): the initiator pins the key it was
// told, the acceptor asks `allow`. After the handshake each side sends HELLO as its first frame
// once it has verified the other; `ready` resolves when we verified the peer and its HELLO came,
// i.e. both sides agreed. The initiator writes optimistically right after verifying (its data can
// only be read by the pinned key), so a stream opened at once costs no extra round trip.
import type { KeyPair } from "../keys.js";
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import type { Duplex } from "node:stream";
import type NoiseSecretStream from "@hyperswarm/secret-stream";
import { SecretStream } from "../cjs.js";
import { FRAME_GOAWAY, FRAME_HEADER_BYTES, FRAME_HELLO, Mux, type MuxStream, ProtocolError } from "./mux.js";
import type { ResumableStreams } from "./resumable-streams.js";


export interface SessionOptions {
  keyPair: KeyPair;
  /** An empty encrypted message is sent when nothing was written for this long. Default 10 s. */
  keepAliveMs?: number;
  /** The session fails when nothing arrives for this long. Default 3 × keepAliveMs. */
  timeoutMs?: number;
  /** `ready` must happen within this (handshake, allow, HELLO). Default 30 s. */
  handshakeTimeoutMs?: number;
  /** Bytes per stream the peer may send ahead of our reader. Default 2 MiB. */
  receiveWindow?: number;
  /** Streams the peer may have open at once; beyond, new ones are reset. Default 256 (so a peer can make us buffer at most 256 × receiveWindow). */
  maxStreams?: number;
  /** How long a resumable stream waits, after its session failed, to be resumed on another. Default 60 s. */
  resumeTimeoutMs?: number;
}

export interface InitiateOptions extends SessionOptions {
  /** The key the coordinator gave for the peer: any other key fails the session. */
  remotePublicKey: Buffer;
}

export interface AcceptOptions extends SessionOptions {
  /** Decides, after the handshake and before anything is served, whether this peer may talk. */
  allow(remotePublicKey: Buffer): boolean | Promise<boolean>;
  /**
   * Shared by the sessions of one acceptor: the peer's resumable streams are kept here, so one
   * that lost its session can be resumed on another (by the same peer key only).
   */
  resumable?: ResumableStreams;
}

export interface SessionStats {
  /** Streams currently open. */
  streams: number;
  /** Stream payload bytes received / sent (not counting framing and encryption). */
  bytesIn: number;
  bytesOut: number;
}

export type SessionStream = MuxStream;

/** A reliable, ordered byte stream: a Node Duplex (TCP socket, relay stream) or a streamx one (UDX stream). */
export type SessionTransport = Duplex | NoiseSecretStream.RawStream;

const DEFAULT_KEEPALIVE_MS = 10_000;
const DEFAULT_HANDSHAKE_TIMEOUT_MS = 30_000;
/** After a graceful close, how long to wait for the peer's end before tearing the transport down. */
const LINGER_MS = 2_000;
const PROTOCOL_VERSION = 1;

export interface Session {
  on(event: "stream", listener: (header: Record<string, unknown>, stream: SessionStream) => void): this;
  on(event: "close", listener: (err: Error | undefined) => void): this;
  once(event: "stream", listener: (header: Record<string, unknown>, stream: SessionStream) => void): this;
  once(event: "close", listener: (err: Error | undefined) => void): this;
  off(event: "stream", listener: (header: Record<string, unknown>, stream: SessionStream) => void): this;
  off(event: "close", listener: (err: Error | undefined) => void): this;
}

type Verifier = (remotePublicKey: Buffer) => Error | null | boolean | Promise<boolean>;

export class Session extends EventEmitter {
  /** Resolves once both sides verified each other; rejects with the cause if the session closes first. */
  readonly ready: Promise<void>;
  /** Resolves when the session and its transport are fully closed: the cause, or undefined for a clean close. */
  readonly closed: Promise<Error | undefined>;
  readonly isInitiator: boolean;

  private readonly sec: SecretStream;
  private readonly mux: Mux;
  private readonly timeoutMs: number;
  private resolveReady!: () => void;
  private rejectReady!: (err: Error) => void;
  private resolveClosed!: (err: Error | undefined) => void;
  private handshaken = false;
  private verified = false;
  private helloReceived = false;
  private isReady = false;
  private closing = false;
  private finalized = false;
  private reading = false;
  private error: Error | undefined;
  private handshakeTimer: NodeJS.Timeout | undefined;
  private lingerTimer: NodeJS.Timeout | undefined;

  /** The client side: the peer must prove it holds `remotePublicKey`. */
  static initiate(transport: SessionTransport, opts: InitiateOptions): Session {
    const pinned = checkKey(opts.remotePublicKey, 32, "remotePublicKey");
    return new Session(transport, true, opts, (remote) =>
      remote.equals(pinned)
        ? null
        : new Error(`the peer's public key did not match the pinned key (expected ${pinned.toString("hex")}, got ${remote.toString("hex")})`),
    );
  }

  /** The agent side: after the handshake, `allow` decides; a refused peer is closed at once. */
  static accept(transport: SessionTransport, opts: AcceptOptions): Session {
    if (typeof opts.allow !== "function") throw new TypeError("accept needs an allow(remotePublicKey) function");
    return new Session(transport, false, opts, (remote) => opts.allow(remote));
  }

  private constructor(
    transport: SessionTransport,
    isInitiator: boolean,
    opts: SessionOptions,
    private readonly verify: Verifier,
  ) {
    super();
    this.isInitiator = isInitiator;
    const keyPair = {
      publicKey: checkKey(opts.keyPair?.publicKey, 32, "keyPair.publicKey"),
      secretKey: checkKey(opts.keyPair?.secretKey, 64, "keyPair.secretKey"),
    };
    const keepAliveMs = opts.keepAliveMs ?? DEFAULT_KEEPALIVE_MS;
    this.timeoutMs = opts.timeoutMs ?? keepAliveMs * 3;

    this.ready = new Promise<void>((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.ready.catch(() => {}); // a caller that never awaits ready must not see an unhandled rejection
    this.closed = new Promise<Error | undefined>((resolve) => {
      this.resolveClosed = resolve;
    });

    const registry = (opts as AcceptOptions).resumable;
    this.mux = new Mux({
      isInitiator,
      resumable: registry && {
        add: (token, stream) => registry.add(this.sec.remotePublicKey!, token, stream),
        find: (token) => registry.find(this.sec.remotePublicKey!, token),
      },
      resumeTimeoutMs: opts.resumeTimeoutMs,
      write: (frame) => this.sec.write(frame),
      alloc: (len) => this.sec.alloc(len),
      onStream: (header, stream) => {
        if (this.closing || this.listenerCount("stream") === 0) return false;
        this.emit("stream", header, stream);
        return true;
      },
      onControl: (type, payload) => this.onControl(type, payload),
      onProtocolError: (err) => this.shutdown(err, { goaway: err.message }),
      receiveWindow: opts.receiveWindow,
      maxStreams: opts.maxStreams,
    });

    // Empty messages are keep-alives; never let one reach the mux even if the peer's setting differs.
    this.sec = new SecretStream(isInitiator, transport, { keyPair, filterZeroByteMessages: true });
    this.sec.on("handshake", () => this.onHandshake());
    this.sec.on("error", (err) => this.shutdown(describeChannelError(err, this.timeoutMs), { hard: true, lost: true }));
    this.sec.on("end", () => {
      if (!this.closing) this.shutdown(new Error("the peer ended the transport without closing the session"), { lost: true });
    });
    this.sec.on("close", () => {
      if (!this.closing) this.shutdown(new Error("transport closed"), { hard: true, lost: true });
      this.finalize();
    });
    this.sec.on("drain", () => this.mux.drained());
    if (keepAliveMs > 0) this.sec.setKeepAlive(keepAliveMs);
    if (this.timeoutMs > 0) this.sec.setTimeout(this.timeoutMs);

    const handshakeTimeoutMs = opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    this.handshakeTimer = setTimeout(
      () => this.shutdown(new Error(`session not established within ${handshakeTimeoutMs} ms`), { hard: true }),
      handshakeTimeoutMs,
    );
    this.handshakeTimer.unref();

    if ((transport as { destroyed?: boolean }).destroyed) this.shutdown(new Error("transport closed"), { hard: true });
  }

  /** The peer's verified public key (null until verified). */
  get remotePublicKey(): Buffer | null {
    return this.verified ? this.sec.remotePublicKey : null;
  }

  get publicKey(): Buffer {
    return this.sec.publicKey!;
  }

  /**
   * Opens a stream carrying `header` (a JSON object, at most 4 KiB) to the peer, which gets it in
   * its 'stream' event. Usable at once: writes wait for the session. Throws once closed.
   */
  openStream(header: object, opts: { resumable?: boolean } = {}): SessionStream {
    return this.mux.openStream(header, opts.resumable ? randomBytes(16).toString("hex") : undefined);
  }

  /**
   * Moves a suspended resumable stream (one this side opened, whose session failed) onto this
   * session; the peer must be the same. If the peer no longer has it, the stream fails.
   */
  resumeStream(stream: SessionStream): void {
    if (this.closing) throw new Error("session is closed", { cause: this.error });
    this.mux.resume(stream);
  }

  /** Closing or closed: no stream can be opened or resumed on it. */
  get isClosing(): boolean {
    return this.closing;
  }

  /** Closes the session: the peer is told (with err's message as the reason), every stream is destroyed. */
  close(err?: Error): void {
    this.shutdown(err, { goaway: err?.message ?? "" });
  }

  stats(): SessionStats {
    return { streams: this.mux.streamCount, bytesIn: this.mux.bytesIn, bytesOut: this.mux.bytesOut };
  }

  private onHandshake(): void {
    this.handshaken = true;
    if (this.closing) return;
    const remote = Buffer.from(this.sec.remotePublicKey!);
    let verdict: ReturnType<Verifier>;
    try {
      verdict = this.verify(remote);
    } catch (err) {
      this.shutdown(new Error(`allow() failed: ${(err as Error)?.message ?? String(err)}`, { cause: err }), { hard: true });
      return;
    }
    if (verdict instanceof Error) return this.shutdown(verdict, { hard: true });
    if (verdict === null || verdict === true) return this.onVerified();
    if (verdict === false) return this.refuse(remote);
    verdict.then(
      (ok) => {
        if (this.closing) return;
        if (ok === true) this.onVerified();
        else this.refuse(remote);
      },
      (err: unknown) => this.shutdown(new Error(`allow() failed: ${(err as Error)?.message ?? String(err)}`, { cause: err }), { hard: true }),
    );
  }

  private refuse(remote: Buffer): void {
    this.shutdown(new Error(`peer ${remote.toString("hex")} is not allowed`), { goaway: "not allowed" });
  }

  private onVerified(): void {
    this.verified = true;
    this.reading = true;
    this.sec.on("data", (msg) => this.onMessage(msg));
    // HELLO goes first, before anything the mux queued (OPENs of streams opened early).
    this.sec.write(controlFrame(FRAME_HELLO, Buffer.from(JSON.stringify({ v: PROTOCOL_VERSION }))));
    this.mux.start();
    this.maybeReady();
  }

  private onMessage(msg: Buffer): void {
    if (this.closing) {
      // Only a GOAWAY still matters (it may carry the peer's reason while we linger).
      return;
    }
    // The peer's first frame is HELLO, or a GOAWAY when it refuses us.
    if (!this.helloReceived && !(msg.length >= FRAME_HEADER_BYTES && (msg[0] === FRAME_HELLO || msg[0] === FRAME_GOAWAY) && msg.readUInt32BE(1) === 0)) {
      this.shutdown(new ProtocolError("first frame was not HELLO"), { goaway: "protocol error: first frame was not HELLO" });
      return;
    }
    this.mux.receive(msg);
  }

  private onControl(type: number, payload: Buffer): void {
    switch (type) {
      case FRAME_HELLO:
        if (this.helloReceived) return this.shutdown(new ProtocolError("second HELLO"), { goaway: "protocol error: second HELLO" });
        this.helloReceived = true;
        this.maybeReady();
        return;
      case FRAME_GOAWAY: {
        const reason = payload.toString("utf8");
        this.shutdown(reason ? new Error(`the peer closed the session: ${reason}`) : undefined, {});
        return;
      }
      default:
        return; // unknown session-level frames are ignored (room for later versions)
    }
  }

  private maybeReady(): void {
    if (this.isReady || !this.verified || !this.helloReceived || this.closing) return;
    this.isReady = true;
    clearTimeout(this.handshakeTimer);
    this.resolveReady();
  }

  /**
   * The one way down. `hard`: the transport is dropped at once (it failed, or the peer is not who
   * it should be). Otherwise a GOAWAY (if given) and our end are sent, and we linger briefly for the
   * peer's end so the GOAWAY is delivered.
   */
  private shutdown(err: Error | undefined, how: { goaway?: string; hard?: boolean; lost?: boolean }): void {
    if (this.closing) return;
    this.closing = true;
    this.error = err;
    clearTimeout(this.handshakeTimer);
    if (!this.isReady) this.rejectReady(err ?? new Error("session closed before it was established"));
    // Resumable streams outlive a session whose transport was lost (nobody chose to close it).
    this.mux.destroy(err ? new Error(`session closed: ${err.message}`, { cause: err }) : new Error("session closed"), how.lost === true);

    const sec = this.sec;
    if (sec.destroying || sec.destroyed) return; // 'close' follows and finalizes
    if (how.hard || !this.handshaken) {
      sec.destroy();
      return;
    }
    if (how.goaway !== undefined) sec.write(controlFrame(FRAME_GOAWAY, Buffer.from(how.goaway, "utf8").subarray(0, 1024)));
    sec.end();
    if (!this.reading) {
      this.reading = true;
      sec.on("data", () => {}); // drain, so the peer's end is seen
    }
    this.lingerTimer = setTimeout(() => sec.destroy(), LINGER_MS);
    this.lingerTimer.unref();
  }

  private finalize(): void {
    if (this.finalized) return;
    this.finalized = true;
    clearTimeout(this.handshakeTimer);
    clearTimeout(this.lingerTimer);
    this.resolveClosed(this.error);
    this.emit("close", this.error);
  }
}

function controlFrame(type: number, payload: Buffer): Buffer {
  const f = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  f[0] = type;
  f.writeUInt32BE(0, 1);
  payload.copy(f, FRAME_HEADER_BYTES);
  return f;
}

function checkKey(key: unknown, len: number, name: string): Buffer {
  if (!Buffer.isBuffer(key) && !(key instanceof Uint8Array)) throw new TypeError(`${name} must be a Buffer of ${len} bytes`);
  if (key.length !== len) throw new TypeError(`${name} must be ${len} bytes, got ${key.length}`);
  return Buffer.isBuffer(key) ? key : Buffer.from(key);
}

function describeChannelError(err: Error, timeoutMs: number): Error {
  if (err?.message === "Stream timed out") return new Error(`peer unresponsive: nothing received for ${timeoutMs} ms`, { cause: err });
  return new Error(`secure channel failed: ${err?.message ?? String(err)}`, { cause: err });
}
