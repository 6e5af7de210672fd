// Real nginx (Debian's /usr/sbin/nginx) in front of loopback upstreams, running the SHIPPED site
// configuration deploy/nginx/coder.conf: the helper only swaps the upstream `server` lines for
// the given addresses and moves every `listen` to a free loopback port, so what the tests (and
// benchmarks) exercise is the file operators install. This module does not use Vitest, so the
// benchmarks (bench/) import it too; tests use startNginx from ./nginx.js, which stops nginx when
// the test finishes.
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { closedPort } from "./net.js";

export const NGINX_BIN = process.env.NGINX_BIN ?? "/usr/sbin/nginx";
/** deploy/nginx of the repository: found upwards from this file (test/helpers/, or dist-bench/test/helpers/ when compiled for the benchmarks). */
export const DEPLOY_NGINX_DIR = findDeployDir(import.meta.dirname);

function findDeployDir(from: string): string {
  for (let d = from; ; d = dirname(d)) {
    const candidate = join(d, "deploy", "nginx");
    if (existsSync(join(candidate, "coder.conf"))) return candidate;
    if (dirname(d) === d) throw new Error(`no deploy/nginx/coder.conf above ${from}`);
  }
}
/** The site file operators install (included inside nginx's `http { }`). */
export const SHIPPED_CONF = join(DEPLOY_NGINX_DIR, "coder.conf");
/** Its TLS variant. */
export const SHIPPED_TLS_CONF = join(DEPLOY_NGINX_DIR, "coder-tls.conf");

export interface NginxOptions {
  /** The site file to run; default deploy/nginx/coder.conf. */
  conf?: string;
  /** Exact text replacements applied to the site file first (e.g. certificate paths); each must occur. */
  replace?: Record<string, string>;
  /** worker_processes; default 2 (so the upstream's shared zone matters, as in production). */
  workers?: number;
}

export interface LaunchOptions extends NginxOptions {
  /**
   * Called with each spawned nginx's stop() as soon as it is spawned (before it is ready), so a
   * caller that is interrupted while waiting can still stop it (tests: onTestFinished).
   */
  onSpawn?: (stop: () => Promise<void>) => void;
}

export interface Nginx {
  /** http(s)://127.0.0.1:port of the first `listen` line of the site file. */
  url: string;
  port: number;
  /** Each port the site file listens on → the loopback port it was moved to. */
  ports: Map<number, number>;
  /** The prefix directory (nginx.conf, site.conf, logs, temp paths). */
  prefix: string;
  /** The master process. */
  pid: number;
  /** The master's current children (the workers, and old workers still shutting down). */
  workerPids(): number[];
  /**
   * Rewrites the upstream servers and reloads (SIGHUP); resolves once only new workers accept
   * connections, rejects when nginx refuses the new config (it then keeps running the old one).
   * Old workers close idle client keep-alive connections as they go: use new connections after.
   */
  reload(upstreams: string[]): Promise<void>;
  /** Stops the master and every worker (SIGTERM, then SIGKILL), removes the prefix. Idempotent. */
  stop(): Promise<void>;
  errorLog(): string;
  accessLog(): string;
}

export interface RenderInput {
  /** "127.0.0.1:port" for each upstream `server` line. */
  upstreams: string[];
  /** Port in the site file → loopback port; each listened-on port must be in it. */
  ports: Map<number, number>;
}

/** The ports that the site file's `listen` lines use (IPv6 lines are dropped when rendering). */
export function listenPorts(site: string): number[] {
  const ports: number[] = [];
  for (const m of site.matchAll(/^\s*listen\s+([^\s;]+)[^;]*;/gm)) {
    const addr = m[1]!;
    if (addr.startsWith("[")) continue;
    const port = Number(addr.includes(":") ? addr.slice(addr.lastIndexOf(":") + 1) : addr);
    if (!Number.isInteger(port)) throw new Error(`listen ${addr}: not a port the test helper understands`);
    if (!ports.includes(port)) ports.push(port);
  }
  if (ports.length === 0) throw new Error("the site file has no listen line");
  return ports;
}

/**
 * The site file with its one `upstream` block's `server` lines replaced by the given addresses
 * (keeping the parameters of the first line, e.g. max_fails/fail_timeout) and each `listen`
 * moved to 127.0.0.1 on the mapped port (keeping ssl/http2/...); IPv6 listens are commented out.
 * Throws when the file no longer has the shape this relies on, rather than test something else.
 */
export function renderSite(site: string, { upstreams, ports }: RenderInput): string {
  if (upstreams.length === 0) throw new Error("at least one upstream");
  const blocks = [...site.matchAll(/^\s*upstream\s+\S+\s*\{[^}]*\}/gm)];
  if (blocks.length !== 1) throw new Error(`expected exactly one upstream block, found ${blocks.length}`);
  const block = blocks[0]![0];
  const servers = [...block.matchAll(/^(\s*)server\s+\S+([^;]*);[^\n]*\n/gm)];
  if (servers.length === 0) throw new Error("the upstream block has no server line");
  const [first] = servers;
  const indent = first![1]!;
  const params = first![2]!;
  const lines = upstreams.map((u) => `${indent}server ${u}${params};\n`).join("");
  let newBlock = block.replace(first![0], "\u0000");
  for (const s of servers.slice(1)) newBlock = newBlock.replace(s[0], "");
  newBlock = newBlock.replace("\u0000", lines);
  let out = site.replace(block, newBlock);
  out = out.replace(/^(\s*)listen\s+([^\s;]+)([^;]*);/gm, (_all, ws: string, addr: string, rest: string) => {
    if (addr.startsWith("[")) return `${ws}# (test helper: IPv6 listen dropped) listen ${addr}${rest};`;
    const port = Number(addr.includes(":") ? addr.slice(addr.lastIndexOf(":") + 1) : addr);
    const to = ports.get(port);
    if (to === undefined) throw new Error(`no loopback port for listen ${addr}`);
    return `${ws}listen 127.0.0.1:${to}${rest};`;
  });
  return out;
}

function applyReplacements(site: string, replace: Record<string, string> = {}): string {
  for (const [from, to] of Object.entries(replace)) {
    if (!site.includes(from)) throw new Error(`"${from}" does not occur in the site file`);
    site = site.split(from).join(to);
  }
  return site;
}

const isRoot = process.getuid?.() === 0;

/** Workers do not run as root: as root, nginx needs a user whose group exists (Debian: nogroup). */
function userDirective(): string {
  if (!isRoot) return "";
  const groups = existsSync("/etc/group") ? readFileSync("/etc/group", "utf8") : "";
  return `user nobody ${/^nogroup:/m.test(groups) ? "nogroup" : "nobody"};\n`;
}

/** The main nginx.conf around the site file, with every path under the prefix. */
function mainConf(prefix: string, workers: number): string {
  const tmp = join(prefix, "tmp");
  return `${userDirective()}worker_processes ${workers};
events { worker_connections 1024; }
http {
    access_log ${join(prefix, "access.log")};
    client_body_temp_path ${tmp}/client_body;
    proxy_temp_path ${tmp}/proxy;
    fastcgi_temp_path ${tmp}/fastcgi;
    uwsgi_temp_path ${tmp}/uwsgi;
    scgi_temp_path ${tmp}/scgi;
    include ${join(prefix, "site.conf")};
}
`;
}

function nginxArgs(prefix: string): string[] {
  const globals = `daemon off; pid ${join(prefix, "nginx.pid")}; error_log ${join(prefix, "error.log")} notice;`;
  // -e: the log for messages before the configuration is read (Debian's default is stderr).
  return ["-p", prefix, "-e", join(prefix, "error.log"), "-c", join(prefix, "nginx.conf"), "-g", globals];
}

function makePrefix(): string {
  const prefix = mkdtempSync(join(process.env.CODER_TEST_RUN_DIR ?? tmpdir(), "coder-nginx-"));
  // Workers run as nobody and must reach the temp paths (nginx creates and chowns them).
  chmodSync(prefix, 0o755);
  // nginx creates only the last component of a temp path.
  mkdirSync(join(prefix, "tmp"), { mode: 0o755 });
  return prefix;
}

function readOr(path: string, fallback = ""): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return fallback;
  }
}

/**
 * `nginx -t` on a site file (its text, as shipped unless you changed it): the file is included
 * inside `http { }` exactly as an operator's /etc/nginx/conf.d/ would. Nothing listens.
 */
export async function checkConfig(site: string, opts: { workers?: number } = {}): Promise<{ ok: boolean; output: string }> {
  const prefix = makePrefix();
  try {
    writeFileSync(join(prefix, "site.conf"), site);
    writeFileSync(join(prefix, "nginx.conf"), mainConf(prefix, opts.workers ?? 1));
    const child = spawn(NGINX_BIN, ["-t", ...nginxArgs(prefix)], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    const code = await new Promise<number | null>((res, rej) => {
      child.on("error", rej);
      child.on("close", res);
    });
    const output = out + readOr(join(prefix, "error.log"));
    return { ok: code === 0, output };
  } finally {
    rmSync(prefix, { recursive: true, force: true });
  }
}

/** Processes whose parent is `ppid` (from /proc; works without CONFIG_PROC_CHILDREN). */
function childrenOf(ppid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    const stat = readOr(`/proc/${d}/stat`);
    // pid (comm) state ppid ...; comm may contain spaces, so split after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(fields[1]) === ppid && fields[0] !== "Z") out.push(Number(d));
  }
  return out;
}

/** Alive and still an nginx process (not a zombie, not a reused pid). */
function isNginx(pid: number): boolean {
  const stat = readOr(`/proc/${pid}/stat`);
  if (!stat || stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) === "Z") return false;
  return readOr(`/proc/${pid}/cmdline`).startsWith("nginx");
}

function title(pid: number): string {
  return readOr(`/proc/${pid}/cmdline`).replace(/\0+$/, "");
}

async function until(cond: () => boolean, what: () => string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`nginx: timed out waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const count = (text: string, needle: string) => text.split(needle).length - 1;

/**
 * Starts real nginx running the site file (default deploy/nginx/coder.conf) with its upstream
 * servers replaced by `upstreams` ("127.0.0.1:port") and its listens moved to free loopback
 * ports. The caller stops it (stop(); onSpawn sees every spawned instance). When it fails to
 * start, whatever it spawned is stopped before the error is thrown.
 */
export async function launchNginx(upstreams: string[], opts: LaunchOptions = {}): Promise<Nginx> {
  const source = applyReplacements(readFileSync(opts.conf ?? SHIPPED_CONF, "utf8"), opts.replace);
  const workers = opts.workers ?? 2;
  const sitePorts = listenPorts(source);
  const scheme = /\bssl\b/.test(/^\s*listen\s+([^;]*);/m.exec(source)?.[1] ?? "") ? "https" : "http";

  for (let attempt = 1; ; attempt++) {
    const prefix = makePrefix();
    const ports = new Map<number, number>();
    for (const p of sitePorts) ports.set(p, await closedPort());
    const errorLogPath = join(prefix, "error.log");
    const writeSite = (ups: string[]) => writeFileSync(join(prefix, "site.conf"), renderSite(source, { upstreams: ups, ports }));
    writeSite(upstreams);
    writeFileSync(join(prefix, "nginx.conf"), mainConf(prefix, workers));

    const proc: ChildProcess = spawn(NGINX_BIN, nginxArgs(prefix), { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    proc.stdout!.on("data", (d) => (stderr += d));
    proc.stderr!.on("data", (d) => (stderr += d));
    const exited = new Promise<void>((res) => proc.once("exit", () => res()));
    let spawnError: Error | undefined;
    proc.once("error", (e) => (spawnError = e));
    const running = () => proc.exitCode === null && proc.signalCode === null && !spawnError;

    let lastErrorLog = "";
    let lastAccessLog = "";
    const errorLog = () => (existsSync(prefix) ? (lastErrorLog = readOr(errorLogPath) + stderr) : lastErrorLog);
    const accessLog = () => (existsSync(prefix) ? (lastAccessLog = readOr(join(prefix, "access.log"))) : lastAccessLog);
    const workerPids = () => (proc.pid === undefined ? [] : childrenOf(proc.pid));

    let stopping: Promise<void> | undefined;
    const stop = () =>
      (stopping ??= (async () => {
        const known = new Set(workerPids());
        if (running()) {
          proc.kill("SIGTERM"); // fast shutdown: the master stops its workers, then exits
          const killed = setTimeout(() => proc.kill("SIGKILL"), 5_000);
          await exited;
          clearTimeout(killed);
        }
        // A master that was SIGKILLed leaves its workers running: kill whatever is left.
        for (const pid of known) {
          try {
            if (isNginx(pid)) process.kill(pid, "SIGKILL");
          } catch {
            // exited meanwhile
          }
        }
        await until(() => [...known].every((pid) => !isNginx(pid)), () => `workers ${[...known].join(", ")} to exit`);
        errorLog();
        accessLog();
        rmSync(prefix, { recursive: true, force: true });
      })());
    opts.onSpawn?.(stop);

    // Ready once the master has started all workers (it listens before forking them).
    try {
      await until(
        () => !running() || count(readOr(errorLogPath), "start worker process") >= workers,
        () => `${workers} workers to start:\n${errorLog()}`,
      );
    } catch (err) {
      await stop();
      throw err;
    }
    if (!running()) {
      const log = errorLog();
      await stop();
      if (attempt < 3 && log.includes("Address already in use")) continue; // lost a port race
      throw spawnError ?? new Error(`nginx exited (${proc.exitCode ?? proc.signalCode}) before starting:\n${log}`);
    }

    const port = ports.get(sitePorts[0]!)!;
    const reload = async (next: string[]) => {
      if (!running()) throw new Error("nginx is not running");
      writeSite(next);
      const from = readOr(errorLogPath).length;
      const old = workerPids();
      proc.kill("SIGHUP");
      const since = () => readOr(errorLogPath).slice(from);
      await until(
        () => {
          if (/\[(emerg|alert)\]/.test(since())) throw new Error(`nginx reload failed:\n${since()}`);
          const fresh = workerPids().filter((p) => !old.includes(p) && title(p) === "nginx: worker process");
          // An old worker retitles itself "worker process is shutting down" in the same step in
          // which it closes its listening sockets: after that it accepts nothing.
          const oldDone = old.every((p) => !isNginx(p) || title(p).includes("shutting down"));
          return fresh.length >= workers && oldDone;
        },
        () => `the reload to finish:\n${since()}`,
      );
    };

    return { url: `${scheme}://127.0.0.1:${port}`, port, ports, prefix, pid: proc.pid!, workerPids, reload, stop, errorLog, accessLog };
  }
}
