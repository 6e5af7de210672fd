// Types for @hyperswarm/secret-stream 6.x, which ships none (read from its index.js). It is a
// streamx Duplex, NOT a Node stream: write() returns false once 16 KiB are buffered (wait for
// 'drain'), _write is called on a later tick, destroy(err) emits 'error' then 'close', and there
// is no writableLength/readableLength. Each write(buf) is encrypted as one message (max 2^24-1-17
// bytes) and arrives as exactly one 'data' chunk on the other side: message boundaries are kept.
declare module "@hyperswarm/secret-stream" {
  import { EventEmitter } from "node:events";

  namespace NoiseSecretStream {
    /** ed25519: publicKey is 32 bytes, secretKey 64 bytes. */
    interface KeyPair {
      publicKey: Buffer;
      secretKey: Buffer;
    }

    /** A handshake performed elsewhere (skips the Noise exchange). */
    interface Handshake {
      tx: Buffer;
      rx: Buffer;
      hash: Buffer;
      publicKey: Buffer;
      remotePublicKey: Buffer;
    }

    /** What the raw transport must offer: a Node stream, a streamx stream or a UDX stream all do. */
    interface RawStream {
      on(event: string, listener: (...args: any[]) => void): unknown;
      write(data: Buffer): boolean;
      end(): unknown;
      destroy(err?: Error | null): unknown;
      pause(): unknown;
      resume(): unknown;
      readonly destroyed?: boolean;
    }

    interface Options {
      /** Noise pattern, default "XX" (both static keys are exchanged; the remote one is not checked). */
      pattern?: string;
      /** Needed only by patterns where the initiator knows the responder's key up front (e.g. "IK"). */
      remotePublicKey?: Buffer | null;
      /** A key pair, or a promise of one; generated when absent. */
      keyPair?: KeyPair | Promise<KeyPair> | null;
      publicKey?: Buffer | null;
      handshake?: Handshake | null;
      /** Interval in ms for empty keep-alive messages; a side with it set drops empty messages. */
      keepAlive?: number;
      /** Drop empty messages instead of emitting them (implied by keepAlive). */
      filterZeroByteMessages?: boolean;
      /** With false, call start() yourself later. */
      autoStart?: boolean;
      /** Unordered datagrams (send/trySend), only over UDX streams. Default true. */
      enableSend?: boolean;
      /** Bytes already read from the raw stream, to be parsed first. */
      data?: Buffer;
      /** The raw stream already ended. */
      ended?: boolean;
    }
  }

  class NoiseSecretStream extends EventEmitter {
    constructor(isInitiator: boolean, rawStream?: NoiseSecretStream.RawStream | null, opts?: NoiseSecretStream.Options);

    static keyPair(seed?: Buffer): NoiseSecretStream.KeyPair;
    static id(handshakeHash: Buffer, isInitiator: boolean, id?: Buffer): Buffer;

    readonly isInitiator: boolean;
    /** The transport given (or an internal bridge when none was). */
    readonly rawStream: NoiseSecretStream.RawStream | null;
    /** Local static public key, known once the key pair is. */
    readonly publicKey: Buffer | null;
    /** The peer's static public key, known after 'handshake'. */
    readonly remotePublicKey: Buffer | null;
    readonly handshakeHash: Buffer | null;
    /** True after 'connect'. */
    readonly connected: boolean;
    readonly keepAlive: number;
    readonly timeout: number;
    /** Resolves true once the handshake completed, false if the stream was destroyed first. */
    readonly opened: Promise<boolean>;
    /** Wire bytes (after encryption) written / read. */
    readonly rawBytesWritten: number;
    readonly rawBytesRead: number;
    userData: unknown;

    // streamx stream state
    readonly readable: boolean;
    readonly writable: boolean;
    readonly destroyed: boolean;
    readonly destroying: boolean;

    start(rawStream?: NoiseSecretStream.RawStream | null, opts?: NoiseSecretStream.Options): void;
    /** Destroy with "Stream timed out" when nothing arrives for ms (0 disables). */
    setTimeout(ms: number): void;
    /** Send an empty message whenever nothing was written for ms (0 disables). */
    setKeepAlive(ms: number): void;
    sendKeepAlive(): void;
    /** Resolves once buffered writes reached the raw stream; false if destroyed. */
    flush(): Promise<boolean>;
    /**
     * A buffer of len bytes that, when filled and passed to the very next write(), is encrypted in
     * place (saves one copy).
     */
    alloc(len: number): Buffer;
    /** Unordered encrypted datagram; only over UDX raw streams, else a no-op. */
    send(buffer: Buffer): Promise<unknown> | undefined;
    trySend(buffer: Buffer): void;

    // streamx Duplex
    /** Returns false once 16 KiB or more are buffered: wait for 'drain'. Strings are UTF-8 encoded. */
    write(data: Buffer | Uint8Array | string): boolean;
    end(data?: Buffer | Uint8Array | string): this;
    destroy(err?: Error | null): void;
    push(data: Buffer | null): boolean;
    read(): Buffer | null;
    pause(): this;
    resume(): this;
    cork(): void;
    uncork(): void;
    pipe<S>(dest: S, cb?: (err: Error | null) => void): S;
    [Symbol.asyncIterator](): AsyncIterator<Buffer>;

    on(event: "handshake" | "connect" | "open" | "end" | "finish" | "drain" | "close" | "readable", listener: () => void): this;
    on(event: "data" | "message", listener: (data: Buffer) => void): this;
    on(event: "error", listener: (err: Error) => void): this;
    once(event: "handshake" | "connect" | "open" | "end" | "finish" | "drain" | "close" | "readable", listener: () => void): this;
    once(event: "data" | "message", listener: (data: Buffer) => void): this;
    once(event: "error", listener: (err: Error) => void): this;
    off(event: string, listener: (...args: any[]) => void): this;
    removeListener(event: string, listener: (...args: any[]) => void): this;
  }

  export = NoiseSecretStream;
}
