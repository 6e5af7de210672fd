// Throughput test over one stream of a tunnel session (`coder speedtest`): both ends of the
// protocol live here, the agent's (serveSpeedtest) and the client's (runSpeedtest).
//
// "down": the agent sends for duration_ms, then ends; the client counts what arrives.
// "up":   the client sends for duration_ms, then ends its side; the agent counts what arrives and
//         answers with that count (8 bytes, big-endian), then ends. "up" needs a stream that can
//         half-close (allowHalfOpen), as a tunnel's streams can.
import type { Duplex, Writable } from "node:stream";
import { endStream, ignoreErrors, waitDrain } from "./streams.js";

export interface SpeedtestRequest {
  direction: "up" | "down";
  duration_ms: number;
}

export interface SpeedtestResult {
  /** Bytes that reached the receiving end. */
  bytes: number;
  elapsedMs: number;
}

export interface SpeedtestOptions extends SpeedtestRequest {
  /** How often onInterval reports (default 1000 ms). */
  intervalMs?: number;
  /** Bytes moved during the interval that just ended, and ms since the test started. */
  onInterval?(bytes: number, elapsedMs: number): void;
}

const UPLOAD_SLACK_MS = 30_000;
const CHUNK = Buffer.alloc(64 * 1024, 0x5a);
/** Chunks written without waiting before yielding, so a stream that never pushes back cannot starve the event loop. */
const MAX_BURST = 64;

/** Writes chunks until the deadline, waiting for 'drain' whenever write() says so; stops early if the stream goes. */
async function blast(stream: Writable, durationMs: number, onWritten: (n: number) => void): Promise<void> {
  const deadline = performance.now() + durationMs;
  let burst = 0;
  while (performance.now() < deadline) {
    if (stream.destroyed || stream.writableEnded) return;
    onWritten(CHUNK.length);
    if (!stream.write(CHUNK)) {
      burst = 0;
      if (!(await waitDrain(stream))) return;
    } else if (++burst >= MAX_BURST) {
      burst = 0;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
}

/** The agent's side. Resolves when the test is over (or the client went away). */
export async function serveSpeedtest(stream: Duplex, req: SpeedtestRequest): Promise<void> {
  ignoreErrors(stream);
  if (req.direction === "down") {
    // What the client sends in a download test means nothing: discard it.
    stream.resume();
    await blast(stream, req.duration_ms, () => {});
    endStream(stream);
    return;
  }
  let received = 0;
  stream.on("data", (chunk: Buffer) => {
    received += chunk.length;
  });
  let limit: NodeJS.Timeout | undefined;
  const ended = await new Promise<boolean>((resolve) => {
    // A client that sends past the duration it asked for (plus slack for a slow link to drain)
    // is holding the stream hostage: give up on it.
    limit = setTimeout(() => resolve(false), req.duration_ms + UPLOAD_SLACK_MS);
    stream.once("end", () => resolve(true));
    stream.once("close", () => resolve(false));
  });
  clearTimeout(limit);
  if (!ended || stream.destroyed) {
    stream.destroy();
    return;
  }
  const count = Buffer.alloc(8);
  count.writeBigUInt64BE(BigInt(received));
  stream.write(count);
  endStream(stream);
}

/** The client's side, on a stream already opened for this test. */
export function runSpeedtest(stream: Duplex, opts: SpeedtestOptions): Promise<SpeedtestResult> {
  const start = performance.now();
  const elapsed = () => performance.now() - start;
  let intervalBytes = 0;
  const timer = setInterval(() => {
    opts.onInterval?.(intervalBytes, elapsed());
    intervalBytes = 0;
  }, opts.intervalMs ?? 1000);
  const finish = () => {
    clearInterval(timer);
    // The last, partial interval, so that the intervals add up to the whole test.
    if (intervalBytes > 0) opts.onInterval?.(intervalBytes, elapsed());
    intervalBytes = 0;
  };

  return new Promise<SpeedtestResult>((resolve, reject) => {
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      finish();
      stream.destroy();
      reject(err);
    };
    const succeed = (bytes: number) => {
      if (settled) return;
      settled = true;
      finish();
      const result = { bytes, elapsedMs: elapsed() };
      endStream(stream);
      resolve(result);
    };
    stream.on("error", (err) => fail(err));
    stream.once("close", () => fail(new Error("speedtest: the stream closed before the test finished")));

    if (opts.direction === "down") {
      let bytes = 0;
      stream.on("data", (chunk: Buffer) => {
        bytes += chunk.length;
        intervalBytes += chunk.length;
      });
      stream.once("end", () => succeed(bytes));
      return;
    }

    const reply: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => reply.push(chunk));
    stream.once("end", () => {
      const count = Buffer.concat(reply);
      if (count.length !== 8) return fail(new Error(`speedtest: expected an 8-byte count from the agent, got ${count.length} bytes`));
      succeed(Number(count.readBigUInt64BE()));
    });
    void blast(stream, opts.duration_ms, (n) => {
      intervalBytes += n;
    }).then(() => {
      if (!stream.destroyed) stream.end();
    });
  });
}
