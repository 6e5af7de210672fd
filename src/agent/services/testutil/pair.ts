// Test helpers: connected loopback socket pairs (Node 20 has no Duplex.pair) and output capture.
import { connect, createServer, type Socket } from "node:net";
import type { Readable } from "node:stream";

/** [client, server] ends of one loopback TCP connection. */
export async function socketPair(opts: { allowHalfOpen?: boolean } = {}): Promise<[Socket, Socket]> {
  const allowHalfOpen = opts.allowHalfOpen ?? false;
  const server = createServer({ allowHalfOpen });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  const accepted = new Promise<Socket>((resolve) => server.once("connection", resolve));
  const client = connect({ host: "127.0.0.1", port, allowHalfOpen });
  await new Promise<void>((resolve, reject) => client.once("connect", resolve).once("error", reject));
  const serverSide = await accepted;
  server.close();
  return [client, serverSide];
}

/** Everything a stream emits, as text, with a way to await a pattern or the end. */
export class Capture {
  private chunks: Buffer[] = [];
  private waiters = new Set<() => void>();
  readonly ended: Promise<void>;

  constructor(readonly stream: Readable) {
    stream.on("data", (c: Buffer) => {
      this.chunks.push(c);
      for (const w of [...this.waiters]) w();
    });
    stream.on("error", () => {});
    this.ended = new Promise((resolve) => {
      stream.once("end", resolve);
      stream.once("close", resolve);
    });
  }

  get text(): string {
    return Buffer.concat(this.chunks).toString("utf8");
  }

  /**
   * Resolves with the first match of the pattern in what has arrived (now or later). Each check
   * looks only at new chunks (plus an overlap for matches across a boundary), so waiting on a
   * stream of many megabytes stays linear.
   */
  waitFor(re: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
    const OVERLAP = 4096;
    let next = 0;
    return new Promise((resolve, reject) => {
      const check = () => {
        const prev = next > 0 ? this.chunks[next - 1]! : Buffer.alloc(0);
        const window = Buffer.concat([prev.subarray(Math.max(0, prev.length - OVERLAP)), ...this.chunks.slice(next)]);
        next = this.chunks.length;
        const m = window.toString("utf8").match(re);
        if (!m) return;
        cleanup();
        resolve(m);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out waiting for ${re} in ${JSON.stringify(this.text.slice(-500))}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }
}
