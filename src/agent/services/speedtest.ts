// Throughput test over one stream of a tunnel session (`coder speedtest`): the agent's side
// (serveSpeedtest). The client's side and the protocol's description live in
// src/tailnet/speedtest-client.ts (the CLI must not load the agent); re-exported here.
import type { Duplex } from "node:stream";
import { sendFor, type SpeedtestRequest } from "../../tailnet/index.js";
import { endStream, ignoreErrors } from "./streams.js";

export { runSpeedtest, type SpeedtestOptions, type SpeedtestRequest, type SpeedtestResult } from "../../tailnet/index.js";

const UPLOAD_SLACK_MS = 30_000;

/** The agent's side. Resolves when the test is over (or the client went away). */
export async function serveSpeedtest(stream: Duplex, req: SpeedtestRequest): Promise<void> {
  ignoreErrors(stream);
  if (req.direction === "down") {
    // What the client sends in a download test means nothing: discard it.
    stream.resume();
    await sendFor(stream, req.duration_ms);
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
