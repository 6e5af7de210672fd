// `coder ping <workspace>`: round trips to the agent over the tunnel (its echo service), one line
// each saying which path it took, then a summary. Exits 1 when no pong came back.
import type { Command } from "commander";
import { formatDuration, parseDuration, type AgentConn } from "../../codersdk/index.js";
import { dialTarget, formatMs, untilSignal } from "../agent-dial.js";
import { CliError } from "../errors.js";
import type { GlobalOptions } from "../session.js";

interface Options {
  num: string;
  timeout: string;
  wait: string;
}

function durationFlag(flag: string, text: string, minMs: number): number {
  const ms = parseDuration(text);
  if (ms === undefined) throw new CliError(`${flag} "${text}" is not a duration: use e.g. 5s or 500ms`);
  if (ms < minMs) throw new CliError(`${flag} "${text}" must be at least ${formatDuration(minMs)}`);
  return ms;
}

type Pong = { ms: number; path: "relay" | "direct" };

function pingWithin(conn: AgentConn, timeoutMs: number): Promise<Pong> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${formatDuration(timeoutMs)}`)), timeoutMs);
    conn.ping().then(
      (p) => {
        clearTimeout(timer);
        resolve(p);
      },
      (err: Error) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

export async function run(globals: GlobalOptions, cmd: Command, target: string): Promise<void> {
  const o = cmd.opts() as Options;
  if (!/^\d+$/.test(o.num)) throw new CliError(`-n/--num "${o.num}" must be a whole number (0: until interrupted)`);
  const count = Number(o.num);
  const timeoutMs = durationFlag("-t/--timeout", o.timeout, 1);
  const waitMs = durationFlag("--wait", o.wait, 0);
  const { workspace, conn } = await dialTarget(globals, target, { wait: "connected", timeoutMs: Math.max(timeoutMs, 30_000) });
  const name = workspace.name;
  const signal = untilSignal();
  let interrupted = false;
  void signal.promise.then(() => (interrupted = true));
  const stopped = signal.promise.then(() => undefined);
  const pongs: Pong[] = [];
  let sent = 0;
  try {
    while (!interrupted && (count === 0 || sent < count)) {
      if (sent > 0 && waitMs > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([stopped, new Promise<void>((r) => (timer = setTimeout(r, waitMs)))]);
        clearTimeout(timer);
        if (interrupted) break;
      }
      sent++;
      try {
        const p = await Promise.race([pingWithin(conn, timeoutMs), stopped]);
        if (!p) {
          sent--; // interrupted mid-ping: not counted
          break;
        }
        pongs.push(p);
        process.stdout.write(`pong from ${name} ${p.path === "direct" ? "direct" : "via relay"} in ${formatMs(p.ms)}\n`);
      } catch (err) {
        process.stderr.write(`no pong from ${name}: ${(err as Error).message}\n`);
      }
    }
  } finally {
    signal.cancel();
    conn.close();
  }
  const lost = sent - pongs.length;
  process.stdout.write(`--- ${name} ping statistics ---\n`);
  process.stdout.write(`${sent} pings sent, ${pongs.length} pongs received, ${sent ? Math.round((lost / sent) * 100) : 0}% lost\n`);
  if (pongs.length) {
    const ms = pongs.map((p) => p.ms);
    const avg = ms.reduce((a, b) => a + b, 0) / ms.length;
    const paths = [...new Set(pongs.map((p) => (p.path === "direct" ? "direct" : "relay")))].join(", then ");
    process.stdout.write(`round trip min/avg/max = ${formatMs(Math.min(...ms))}/${formatMs(avg)}/${formatMs(Math.max(...ms))}, path: ${paths}\n`);
  }
  if (sent > 0 && pongs.length === 0) throw new CliError(`The agent of "${target}" did not answer any ping`);
}
