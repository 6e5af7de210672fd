// Byte counting for stats, done in place on the stream a service is handed. Counting through a
// 'data' listener would switch the stream to flowing mode (losing data read before the service
// attaches, and fighting its backpressure), and an extra stream in between would add a buffer
// and blur end/close. So the stream's own push() (every byte that arrives passes through it)
// and write()/end() (every byte sent) are wrapped; flow and return values are untouched.
import type { Duplex } from "node:stream";

type Chunk = string | Uint8Array;

function size(chunk: unknown, encoding: unknown): number {
  if (typeof chunk === "string") return Buffer.byteLength(chunk, typeof encoding === "string" ? (encoding as BufferEncoding) : "utf8");
  if (chunk instanceof Uint8Array) return chunk.byteLength;
  return 0;
}

export function meter(stream: Duplex, onRx: (n: number) => void, onTx: (n: number) => void): void {
  const push = stream.push;
  stream.push = function (this: Duplex, chunk: unknown, encoding?: BufferEncoding): boolean {
    const n = size(chunk, encoding);
    if (n > 0) onRx(n);
    return push.call(this, chunk, encoding);
  };
  const write = stream.write as (this: Duplex, chunk: Chunk, ...rest: unknown[]) => boolean;
  stream.write = function (this: Duplex, chunk: Chunk, ...rest: unknown[]): boolean {
    const n = size(chunk, rest[0]);
    if (n > 0) onTx(n);
    return write.call(this, chunk, ...rest);
  } as Duplex["write"];
  // end(chunk) writes its chunk without going through this.write.
  const end = stream.end as (this: Duplex, ...args: unknown[]) => Duplex;
  stream.end = function (this: Duplex, ...args: unknown[]): Duplex {
    if (typeof args[0] !== "function") {
      const n = size(args[0], args[1]);
      if (n > 0) onTx(n);
    }
    return end.call(this, ...args);
  } as Duplex["end"];
}
