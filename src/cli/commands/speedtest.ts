// `coder speedtest <workspace>`: the latency and path to the agent, then a timed throughput
// test over one tunnel stream, reported per second as iperf does.
import type { Command } from "commander";
import { formatDuration, parseDuration } from "../../codersdk/index.js";
import { runSpeedtest } from "../../tailnet/index.js";
import { dialTarget, formatMs, settlePath } from "../agent-dial.js";
import { CliError } from "../errors.js";
import { outputFormat } from "../output.js";
import type { GlobalOptions } from "../session.js";

interface Options {
  time: string;
  direction: string;
  output?: string;
}

/** What the agent's speedtest service accepts. */
const MIN_MS = 100;
const MAX_MS = 60_000;

export interface SpeedtestInterval {
  start_time_seconds: number;
  end_time_seconds: number;
  bytes: number;
  transfer_mbits: number;
  throughput_mbits: number;
}

export interface SpeedtestReport {
  latency_ms: number;
  path: "relay" | "direct";
  direction: "up" | "down";
  duration_ms: number;
  intervals: SpeedtestInterval[];
  overall: SpeedtestInterval;
}

function interval(startMs: number, endMs: number, bytes: number): SpeedtestInterval {
  const mbits = (bytes * 8) / 1e6;
  const seconds = (endMs - startMs) / 1000;
  return { start_time_seconds: startMs / 1000, end_time_seconds: endMs / 1000, bytes, transfer_mbits: mbits, throughput_mbits: seconds > 0 ? mbits / seconds : 0 };
}

export function parseTestDuration(text: string): number {
  const ms = parseDuration(text);
  if (ms === undefined) throw new CliError(`-t/--time "${text}" is not a duration: use e.g. 5s, 500ms or 1m`);
  if (ms < MIN_MS || ms > MAX_MS) throw new CliError(`-t/--time "${text}" must be between ${formatDuration(MIN_MS)} and ${formatDuration(MAX_MS)}`);
  return ms;
}

const cell = (text: string, width: number) => text.padEnd(Math.max(width, text.length + 2));

export function formatRow(i: SpeedtestInterval): string {
  return (
    cell(`${i.start_time_seconds.toFixed(2)}-${i.end_time_seconds.toFixed(2)} sec`, 15) +
    cell(`${i.transfer_mbits.toFixed(4)} MBits`, 17) +
    `${i.throughput_mbits.toFixed(4)} Mbits/sec`
  );
}

export async function run(globals: GlobalOptions, cmd: Command, target: string): Promise<void> {
  const o = cmd.opts() as Options;
  const format = outputFormat(o.output);
  const durationMs = parseTestDuration(o.time);
  if (o.direction !== "up" && o.direction !== "down") throw new CliError(`--direction must be "up" or "down", not "${o.direction}"`);
  const direction = o.direction;
  const { conn } = await dialTarget(globals, target, { wait: "ready" });
  try {
    await settlePath(conn);
    let latency: { ms: number; path: "relay" | "direct" };
    try {
      latency = await conn.ping();
    } catch (err) {
      throw new CliError(`Cannot reach the agent of "${target}": ${(err as Error).message}`);
    }
    const table = format === "table";
    const out = (line: string) => table && process.stdout.write(`${line}\n`);
    out(`${formatMs(latency.ms)} ${latency.path === "direct" ? "direct" : "via coder"}`);
    out(`Starting a ${formatDuration(durationMs)} ${direction === "down" ? "download" : "upload"} test...`);
    out("INTERVAL       TRANSFER         BANDWIDTH");
    const intervals: SpeedtestInterval[] = [];
    let last = 0;
    let result;
    try {
      const { stream } = await conn.openStream({ service: "speedtest", direction, duration_ms: durationMs });
      result = await runSpeedtest(stream, {
        direction,
        duration_ms: durationMs,
        onInterval: (bytes, elapsedMs) => {
          const i = interval(last, elapsedMs, bytes);
          last = elapsedMs;
          intervals.push(i);
          out(formatRow(i));
        },
      });
    } catch (err) {
      throw new CliError(`The speed test to "${target}" failed: ${(err as Error).message}`);
    }
    const overall = interval(0, result.elapsedMs, result.bytes);
    if (table) {
      out("-".repeat(52));
      out(formatRow(overall));
      return;
    }
    const report: SpeedtestReport = { latency_ms: latency.ms, path: latency.path, direction, duration_ms: durationMs, intervals, overall };
    process.stdout.write(JSON.stringify(report, null, 2) + "\n");
  } finally {
    conn.close();
  }
}
