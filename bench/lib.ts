// What every benchmark needs: the real server binary on a tmp config dir with its built-in
// Postgres, free ports, percentiles and machine readings.
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { nodeFlags } from "../src/buildinfo/node-flags.js";

export const log = (name: string, msg: string) => process.stderr.write(`[bench:${name}] ${msg}\n`);

export function envSeconds(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number of seconds, not "${raw}"`);
  return n;
}

/** The repository root: the nearest directory above this file with bin/coder.js (works from bench/ and dist-bench/bench/). */
export function repoRoot(): string {
  for (let d = dirname(fileURLToPath(import.meta.url)); ; d = dirname(d)) {
    if (existsSync(join(d, "bin", "coder.js")) && existsSync(join(d, "package.json"))) return d;
    if (dirname(d) === d) throw new Error("cannot find the repository root (bin/coder.js) above the benchmark");
  }
}

/** The environment without CODER_* settings a developer's shell might carry. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("CODER_")) env[k] = v;
  return { ...env, ...extra };
}

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once("error", rej);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => res(port));
    });
  });
}

export const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => child.once("exit", () => r()));
}

/** Resolves true when the promise settles within ms, false otherwise. */
export async function within(p: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)));
  try {
    return await Promise.race([p.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function tail(path: string, lines = 20): string {
  try {
    return readFileSync(path, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "<no server output>";
  }
}

export function rssMb(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Math.round((Number(m[1]) / 1024) * 10) / 10 : null;
  } catch {
    return null;
  }
}

/** Share of all CPUs' time spent busy (not idle or waiting for I/O) over the next ms, from /proc/stat. */
export async function machineBusyPct(ms: number): Promise<number | null> {
  const sample = () => {
    const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    return { idle, total: f.reduce((a, b) => a + b, 0) };
  };
  try {
    const a = sample();
    await delay(ms);
    const b = sample();
    const total = b.total - a.total;
    return total > 0 ? Math.round((1 - (b.idle - a.idle) / total) * 100) : null;
  } catch {
    return null;
  }
}

/** The real server binary on a tmp config dir with its built-in Postgres. */
export class ServerProcess {
  readonly url: string;
  private stopping: Promise<void> | undefined;

  private constructor(
    readonly child: ChildProcess,
    readonly configDir: string,
    readonly logFile: string,
    port: number,
  ) {
    this.url = `http://127.0.0.1:${port}`;
  }

  static async start(opts: { args?: string[]; env?: Record<string, string>; name?: string } = {}): Promise<ServerProcess> {
    const root = repoRoot();
    const configDir = mkdtempSync(join(tmpdir(), "coder-bench-"));
    // As root, Postgres runs as the "postgres" user, which must be able to reach the config dir.
    chmodSync(configDir, 0o755);
    const logFile = join(configDir, "server.log");
    let fd: number | undefined;
    try {
      const port = await freePort();
      fd = openSync(logFile, "a");
      const env = { ...process.env };
      delete env.CODER_PG_CONNECTION_URL; // the built-in Postgres
      // As in production: JSON request logs to a file, no human log on the terminal.
      env.CODER_LOGGING_HUMAN = "";
      Object.assign(env, opts.env);
      const args = [
        join(root, "bin", "coder.js"),
        "--config-dir",
        configDir,
        "server",
        "--http-address",
        `127.0.0.1:${port}`,
        "--log-json",
        join(configDir, "server.json.log"),
        "--cache-dir",
        join(configDir, "cache"),
        ...(opts.args ?? []),
      ];
      log(opts.name ?? "server", `starting: node ${args.map((a) => a.replace(root + "/", "")).join(" ")}`);
      const child = spawn(process.execPath, [...nodeFlags, ...args], { cwd: root, env, stdio: ["ignore", fd, fd] });
      return new ServerProcess(child, configDir, logFile, port);
    } catch (err) {
      rmSync(configDir, { recursive: true, force: true });
      throw err;
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  /** Polls GET /healthz until it answers 200, the child exits, or the deadline passes. */
  async waitReady(timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const started = Date.now();
    let lastProblem = "";
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`server exited before it was ready (code ${this.child.exitCode}, signal ${this.child.signalCode}):\n${tail(this.logFile)}`);
      }
      try {
        const res = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(2000) });
        await res.text();
        if (res.ok) {
          log("server", `server ready after ${((Date.now() - started) / 1000).toFixed(1)}s at ${this.url}`);
          return;
        }
        lastProblem = `status ${res.status}`;
      } catch (err) {
        lastProblem = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
      }
      await delay(100);
    }
    throw new Error(`server not ready after ${timeoutMs / 1000}s (last: ${lastProblem}):\n${tail(this.logFile)}`);
  }

  /** SIGTERM, wait for the graceful shutdown (which stops Postgres), then remove the config dir. Idempotent. */
  stop(): Promise<void> {
    return (this.stopping ??= (async () => {
      const child = this.child;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        if (!(await within(exited(child), 30_000))) {
          log("server", "server did not exit 30s after SIGTERM: sending SIGKILL");
          child.kill("SIGKILL");
          await exited(child);
          this.stopOrphanPostgres();
        }
      }
      if (child.exitCode !== 0 && child.exitCode !== null) log("server", `server exited with code ${child.exitCode}:\n${tail(this.logFile)}`);
      // The log goes with the config dir: say what the server complained of first.
      const errors = [this.logFile, join(this.configDir, "server.json.log")]
        .filter((f) => existsSync(f))
        .flatMap((f) => readFileSync(f, "utf8").split("\n").filter((l) => l.includes('"level":50')));
      if (errors.length) log("server", `server logged ${errors.length} errors; the first:\n${errors[0]!.slice(0, 2000)}`);
      rmSync(this.configDir, { recursive: true, force: true });
    })());
  }

  /** After a SIGKILL the (detached) built-in Postgres is still running in our config dir: stop it. */
  private stopOrphanPostgres(): void {
    const pidFile = join(this.configDir, "postgres", "data", "postmaster.pid");
    try {
      const pid = Number.parseInt(readFileSync(pidFile, "utf8").split("\n")[0] ?? "", 10);
      if (Number.isInteger(pid) && pid > 0) process.kill(pid, "SIGQUIT");
    } catch {
      // not started or already gone
    }
  }
}

/** Nearest-rank percentile of sorted values (ms, rounded to 0.01); null for no values. */
export function percentile(sorted: Float64Array, p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return Math.round(sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]! * 100) / 100;
}

/** CPU seconds that all the machine's CPUs together spent busy (not idle or waiting for I/O) since boot, from /proc/stat. */
export function machineBusySeconds(): number {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return (total - (f[3] ?? 0) - (f[4] ?? 0)) / 100; // USER_HZ
}

/**
 * CPU seconds (user + system) used by a process and all its descendants, including descendants
 * already reaped (their time moved to their parent's cutime/cstime). Compared with
 * machineBusySeconds() over the same interval, this tells how much CPU other processes took.
 */
export function treeCpuSeconds(pid: number): number {
  const all = new Map<number, { ppid: number; ticks: number }>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // After "pid (comm) ": state ppid ... utime(11) stime(12) cutime(13) cstime(14)
      all.set(Number(name), { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) });
    } catch {
      // exited meanwhile
    }
  }
  let ticks = 0;
  for (const [p, s] of all) {
    for (let q: number | undefined = p, hops = 0; q !== undefined && q > 0 && hops < 64; q = all.get(q)?.ppid, hops++) {
      if (q === pid) {
        ticks += s.ticks;
        break;
      }
    }
  }
  return ticks / 100;
}
