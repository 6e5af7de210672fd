// The agent's end of UDP direct paths: one UDX socket, and "connections" made by the stream-id
// handshake in wire.ts. Every HELLO that is not a retransmit gets a fresh stream connected back to
// the sender; the stream counts as pending until its user calls established() (the agent does so
// once the Session on it is ready). Pending streams are bounded in number (in total and per source
// host) and destroyed after handshakeTimeoutMs, so unauthenticated senders cannot pile them up.
import { EventEmitter } from "node:events";
import { createStream, decodeHello, encodeOk, udx, type UdxSocket, type UdxStream } from "./wire.js";

export interface UdxListenerOptions {
  /** Default "0.0.0.0". */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** Streams not yet established, in all. Beyond, HELLOs are dropped (the sender retries). Default 64. */
  maxPending?: number;
  /** Streams not yet established per source host. Default 16. */
  maxPendingPerHost?: number;
  /** A stream not established within this is destroyed. Default 10 s. */
  handshakeTimeoutMs?: number;
}

export interface UdxRemote {
  host: string;
  port: number;
}

interface Entry {
  stream: UdxStream;
  remote: UdxRemote;
  ok: Buffer;
  timer: NodeJS.Timeout | undefined;
}

export interface UdxListenerStats {
  pending: number;
  established: number;
  /** HELLOs dropped because of the pending limits. */
  refused: number;
}

export class UdxListener extends EventEmitter<{ connection: [UdxStream, UdxRemote] }> {
  private readonly socket: UdxSocket;
  /** By `${host} ${port} ${clientStreamId}`: a retransmitted HELLO finds its stream here. */
  private readonly byHello = new Map<string, Entry>();
  private readonly byStream = new Map<UdxStream, Entry>();
  private readonly pendingByHost = new Map<string, number>();
  private pending = 0;
  private refused = 0;
  private closing: Promise<void> | undefined;
  private readonly maxPending: number;
  private readonly maxPendingPerHost: number;
  private readonly handshakeTimeoutMs: number;

  private constructor(opts: UdxListenerOptions) {
    super();
    this.maxPending = opts.maxPending ?? 64;
    this.maxPendingPerHost = opts.maxPendingPerHost ?? 16;
    this.handshakeTimeoutMs = opts.handshakeTimeoutMs ?? 10_000;
    this.socket = udx().createSocket();
    try {
      this.socket.bind(opts.port ?? 0, opts.host ?? "0.0.0.0");
    } catch (err) {
      void this.socket.close();
      throw err;
    }
    this.socket.on("message", (msg, from) => this.onMessage(msg, from));
  }

  /** Binds the socket (throws if the address is taken) and starts answering HELLOs. */
  static listen(opts: UdxListenerOptions = {}): UdxListener {
    return new UdxListener(opts);
  }

  get port(): number {
    return this.socket.address()?.port ?? 0;
  }

  get stats(): UdxListenerStats {
    return { pending: this.pending, established: this.byStream.size - this.pending, refused: this.refused };
  }

  /** The stream's peer proved who it is: it no longer counts against the pending limits nor times out. */
  established(stream: UdxStream): void {
    const entry = this.byStream.get(stream);
    if (entry) this.settle(entry);
  }

  private settle(entry: Entry): void {
    if (!entry.timer) return;
    clearTimeout(entry.timer);
    entry.timer = undefined;
    this.pending--;
    const n = (this.pendingByHost.get(entry.remote.host) ?? 1) - 1;
    if (n > 0) this.pendingByHost.set(entry.remote.host, n);
    else this.pendingByHost.delete(entry.remote.host);
  }

  private onMessage(msg: Buffer, from: { host: string; port: number }): void {
    if (this.closing) return;
    const clientId = decodeHello(msg);
    if (clientId === undefined || !(from.port > 0)) return; // not ours: ignore it, say nothing
    const key = `${from.host} ${from.port} ${clientId}`;
    const known = this.byHello.get(key);
    if (known) {
      // A retransmit (our OK was lost, or is still on its way): the same answer again.
      this.socket.trySend(known.ok, from.port, from.host);
      return;
    }
    if (this.pending >= this.maxPending || (this.pendingByHost.get(from.host) ?? 0) >= this.maxPendingPerHost) {
      this.refused++;
      return;
    }
    const stream = createStream();
    try {
      stream.connect(this.socket, clientId, from.port, from.host);
    } catch {
      stream.destroy();
      return;
    }
    const remote = { host: from.host, port: from.port };
    const entry: Entry = {
      stream,
      remote,
      ok: encodeOk(clientId, stream.id),
      timer: setTimeout(() => stream.destroy(new Error("the peer did not complete its handshake in time")), this.handshakeTimeoutMs),
    };
    this.byHello.set(key, entry);
    this.byStream.set(stream, entry);
    this.pending++;
    this.pendingByHost.set(from.host, (this.pendingByHost.get(from.host) ?? 0) + 1);
    stream.once("close", () => {
      this.settle(entry);
      this.byHello.delete(key);
      this.byStream.delete(stream);
    });
    this.socket.trySend(entry.ok, from.port, from.host);
    this.emit("connection", stream, remote);
  }

  /** Stops answering, destroys every stream it made, and closes the socket. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const entry of [...this.byStream.values()]) {
        this.settle(entry);
        entry.stream.destroy();
      }
      await this.socket.close();
    })();
    return this.closing;
  }
}
