// Types for udx-native 1.x, which ships none: only the surface this project uses (read from its
// lib/udx.js, lib/socket.js, lib/stream.js and README). A UDXStream is a streamx Duplex, NOT a
// Node stream (no writableLength; destroy(err) emits 'error' then 'close').
declare module "udx-native" {
  import { EventEmitter } from "node:events";

  namespace UDX {
    interface Address {
      host: string;
      family: number;
      port: number;
    }

    interface SocketOptions {
      ipv6Only?: boolean;
      reuseAddress?: boolean;
    }

    /** One UDP socket. Datagrams that belong to no connected stream arrive as 'message'. */
    interface UDXSocket extends EventEmitter {
      readonly udx: UDX;
      readonly streams: Set<UDXStream>;
      readonly bound: boolean;
      readonly closing: boolean;
      readonly idle: boolean;
      /** null before bind(). */
      address(): Address | null;
      /** Port 0 picks one; without a host: "::" (dual stack), else "0.0.0.0". Throws on failure. */
      bind(port?: number, host?: string): void;
      /** Resolves once closed; the socket closes only after every stream on it has closed. */
      close(): Promise<void>;
      /** Resolves false when the send failed (or the socket is closing). */
      send(buffer: Buffer, port: number, host?: string, ttl?: number): Promise<boolean>;
      trySend(buffer: Buffer, port: number, host?: string, ttl?: number): void;
      on(event: "message", listener: (msg: Buffer, from: Address) => void): this;
      on(event: "close" | "idle" | "busy" | "listening", listener: () => void): this;
      off(event: "message", listener: (msg: Buffer, from: Address) => void): this;
      off(event: "close" | "idle" | "busy" | "listening", listener: () => void): this;
    }

    interface StreamOptions {
      /** Called for packets to a not-yet-connected stream; return true to drop them. */
      firewall?: (socket: UDXSocket, port: number, host: string) => boolean;
      framed?: boolean;
      seq?: number;
    }

    /** A reliable, ordered, congestion-controlled byte stream over a UDXSocket (a streamx Duplex). */
    interface UDXStream extends EventEmitter {
      readonly id: number;
      readonly remoteId: number;
      readonly remoteHost: string | null;
      readonly remotePort: number;
      readonly connected: boolean;
      readonly destroyed: boolean;
      readonly destroying: boolean;
      readonly rtt: number;
      readonly mtu: number;
      socket: UDXSocket | null;
      connect(socket: UDXSocket, remoteId: number, port: number, host?: string): void;
      write(data: Buffer): boolean;
      end(data?: Buffer): this;
      pause(): this;
      resume(): this;
      pipe<T extends NodeJS.WritableStream>(dest: T): T;
      [Symbol.asyncIterator](): AsyncIterator<Buffer>;
      destroy(err?: Error | null): void;
      setKeepalive(timeoutMs: number): void;
    }
  }

  class UDX {
    constructor();
    static isIP(host: string): 0 | 4 | 6;
    createSocket(opts?: UDX.SocketOptions): UDX.UDXSocket;
    createStream(id: number, opts?: UDX.StreamOptions): UDX.UDXStream;
  }

  export = UDX;
}
