// Throughput test over one stream of a tunnel session (`coder speedtest`): the client's side of
// the protocol, and the sender both sides use. The agent's side (serveSpeedtest) lives with the
// agent's services; the CLI needs only this file, so it never loads the agent.
//
// "down": the agent sends for duration_ms, then ends; the client counts what arrives.
// "up":   the client sends for duration_ms, then ends its side; the agent counts what arrives and
//         answers with that count (8 bytes, big-endian), then ends. "up" needs a stream that can
//         half-close (allowHalfOpen), as a tunnel's streams can.
import type { Duplex, Writable } from "node:stream";

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

const CHUNK = Buffer.alloc(64 * 1024, 0x5a);
/** Chunks written without waiting before yielding, so a stream that never pushes back cannot starve the event loop. */
const MAX_BURST = 64;

/** Resolves true once the stream drains, false if it closes or fails first (the peer went away). */
function drained(stream: Writable): Promise<boolean> {
  if (stream.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      stream.off("drain", onDrain);
      stream.off("close", onGone);
      stream.off("error", onGone);
      resolve(ok);
    };
    const onDrain = () => done(true);
    const onGone = () => done(false);
    stream.on("drain", onDrain);
    stream.on("close", onGone);
    stream.on("error", onGone);
  });
}

/** Writes filler until the deadline, waiting for 'drain' whenever write() says so; stops early if the stream goes. */
export async function sendFor(stream: Writable, durationMs: number, onWritten: (n: number) => void = () => {}): Promise<void> {
  const deadline = performance.now() + durationMs;
  let burst = 0;
  while (performance.now() < deadline) {
    if (stream.destroyed || stream.writableEnded) return;
    onWritten(CHUNK.length);
    if (!stream.write(CHUNK)) {
      burst = 0;
      if (!(await drained(stream))) return;
    } else if (++burst >= MAX_BURST) {
      burst = 0;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
}

/** Ends our side once flushed, then releases the half-open stream (unread input discarded first). */
function finishStream(stream: Duplex): void {
  if (stream.destroyed) return;
  stream.resume();
  if (!stream.writableEnded) stream.end();
  if (stream.writableFinished) stream.destroy();
  else stream.once("finish", () => stream.destroy());
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
      finishStream(stream);
      resolve(result);
    };
    stream.on("error", (err) => fail(err));
    stream.once("close", () => fail(new Error("speedtest: the stream closed before the test finished")));

    if (opts.direction === "down") {
      // We send nothing in a download: say so at once. With both sides' FIN exchanged, the
      // agent's end is a clean close, never a reset racing its last bytes.
      stream.end();
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
    void sendFor(stream, opts.duration_ms, (n) => {
      intervalBytes += n;
    }).then(() => {
      if (!stream.destroyed) stream.end();
    });
  });
}
