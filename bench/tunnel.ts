// Tunnel benchmark: bulk throughput (both directions) and request/response latency through
//   raw     loopback TCP, straight to the target (the ceiling);
//   openssh OpenSSH's own `ssh -L` port forward through a throwaway Debian sshd on loopback;
//   relay   our encrypted tunnel through the server's relay (dialAgent with blockDirect);
//   direct  our encrypted tunnel on the direct path to the agent;
//   port_forward  `coder port-forward --tcp` (a separate CLI process, direct path): what a user
//           runs instead of `ssh -L`, with the same local TCP hop that openssh's figures include
//           (relay and direct write into the tunnel from this process, without that hop).
// The target is one TCP server in a separate node process on 127.0.0.1 (this file, run with
// "serve"): the first byte a connection sends picks what it does: 'U' sink (counts what arrives
// and sends back [u64 bytes][f64 its clock in ms] every 50 ms, so upload is measured where the
// bytes land, not where they were buffered), 'D' source (sends as fast as the socket takes) or
// 'E' echo. This process is the client end of every mode; the agent (a real workspace of a real
// `coder server`, local driver) dials the target on 127.0.0.1 through its tcp service.
// Everything shares one machine: every mode runs while the server and agent idle in the
// background, and the CPU each process used during each bulk test is reported next to it.
//
// Per mode: upload and download (Gbit/s over BENCH_TUNNEL_SECONDS, default 3, after a 0.5 s
// warm-up, each on a fresh connection) and the round trip of a 64-byte message echoed back, one at
// a time over one connection (BENCH_TUNNEL_ROUNDTRIPS, default 2000, after 200 warm-up trips).
// Then ssh_start: `coder ssh --stdio <workspace>` started afresh BENCH_SSH_STARTS times (default
// 10), timed from spawn to the agent's SSH banner on stdout, next to a bare node start.
// BENCH_TUNNEL_MODES (e.g. "relay,direct") measures only some modes. Missed targets are reported,
// not failed; `ok` is false only when a mode errored. Without /usr/sbin/sshd, openssh is skipped.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { cpus, loadavg, tmpdir, userInfo } from "node:os";
import { dirname, join } from "node:path";
import type { Duplex } from "node:stream";
import { fileURLToPath } from "node:url";
import { packDirectory } from "../src/archive/index.js";
import { nodeFlags } from "../src/buildinfo/node-flags.js";
import { Client, dialAgent, type AgentConn } from "../src/codersdk/index.js";
import { EXAMPLE_TEMPLATE } from "../src/provisioners/index.js";
import { cleanEnv, delay, envSeconds, exited, freePort, log as logAs, machineBusyPct, percentile, repoRoot, ServerProcess, tail, within } from "./lib.js";

const log = (msg: string) => logAs("tunnel", msg);
const PASSWORD = "BenchmarkPassword!1";
const CHUNK_BYTES = 256 * 1024;
const PING_BYTES = 64;
const WARMUP_MS = 500;
const WARMUP_ROUNDTRIPS = 200;
/** Pause after each test so buffers still in flight drain before the next one starts. */
const SETTLE_MS = 500;
const MODE_NAMES = ["raw", "openssh", "relay", "direct", "port_forward"] as const;
/** Selectable in BENCH_TUNNEL_MODES too, but measures start-up, not a tunnel. */
const SSH_START = "ssh_start";

// ---------------------------------------------------------------------------------------------
// The target server (its own process: `node tunnel.js serve`, prints its port on stdout).

function serve(): void {
  const chunk = Buffer.alloc(CHUNK_BYTES, 0x61);
  const srv = createServer({ noDelay: true }, (sock) => {
    sock.on("error", () => {});
    let mode = 0;
    let received = 0;
    let ticker: NodeJS.Timeout | undefined;
    sock.once("close", () => clearInterval(ticker));
    sock.on("data", (d: Buffer) => {
      if (mode === 0) {
        mode = d[0]!;
        d = d.subarray(1);
        if (mode === 0x55 /* U */) {
          ticker = setInterval(() => {
            const ack = Buffer.allocUnsafe(16);
            ack.writeBigUInt64BE(BigInt(received), 0);
            ack.writeDoubleBE(performance.now(), 8);
            sock.write(ack);
          }, 50);
        } else if (mode === 0x44 /* D */) {
          const pump = () => {
            while (!sock.destroyed && sock.write(chunk));
          };
          sock.on("drain", pump);
          pump();
        } else if (mode !== 0x45 /* E */) {
          sock.destroy();
          return;
        }
      }
      if (mode === 0x55) received += d.length;
      else if (mode === 0x45 && d.length) sock.write(d);
    });
  });
  srv.listen(0, "127.0.0.1", () => process.stdout.write(`${(srv.address() as { port: number }).port}\n`));
  process.on("SIGTERM", () => process.exit(0));
  process.stdin.on("end", () => process.exit(0)).resume();
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === "serve") serve();

async function startTarget(): Promise<{ child: ChildProcess; port: number }> {
  // Its stdin is a pipe from us: when this process goes away however it ends, so does the target.
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), "serve"], { stdio: ["pipe", "pipe", "inherit"] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error("the target server did not start within 10s")), 10_000);
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /^(\d+)\n/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the target server exited (code ${code})`));
    });
  }).catch((err: unknown) => {
    child.kill("SIGKILL");
    throw err;
  });
  return { child, port };
}

// ---------------------------------------------------------------------------------------------
// Measurements on any Duplex that reaches the target.

/**
 * Opens a connection to the target. With `count`, what arrives is only counted: a TCP socket then
 * reads into one reused buffer (no Buffer per read, no 'data' events), so the client costs as
 * little as it can per byte.
 */
type Dial = (count?: (bytes: number) => void) => Promise<Duplex>;

function dialTcp(port: number, count?: (bytes: number) => void): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const onread = count && { buffer: Buffer.allocUnsafe(1024 * 1024), callback: (n: number) => (count(n), true) };
    const s = connect({ host: "127.0.0.1", port, noDelay: true, ...(onread ? { onread } : {}) });
    s.once("connect", () => {
      s.off("error", reject);
      resolve(s);
    });
    s.once("error", reject);
  });
}

const round = (n: number, digits = 3) => Math.round(n * 10 ** digits) / 10 ** digits;

/** CPU seconds (user + system) of a process, or of it and all its descendants. */
function cpuSeconds(pid: number, tree = false): number {
  const read = (p: number) => {
    try {
      const f = readFileSync(`/proc/${p}/stat`, "utf8").split(") ")[1]!.split(" ");
      return { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) / 100 };
    } catch {
      return null;
    }
  };
  if (!tree) return read(pid)?.cpu ?? 0;
  const all = new Map<number, { ppid: number; cpu: number }>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const s = read(Number(name));
    if (s) all.set(Number(name), s);
  }
  let total = 0;
  for (const [p, s] of all) {
    for (let q: number | undefined = p, hops = 0; q !== undefined && q > 0 && hops < 64; q = all.get(q)?.ppid, hops++) {
      if (q === pid) {
        total += s.cpu;
        break;
      }
    }
  }
  return total;
}

/** Processes whose CPU use is reported during bulk tests: name → pid (and whether to count its children). */
type Watched = Record<string, { pid: number; tree?: boolean }>;

/** CPU used by this process ("client") and the watched ones between start() and stop(), in % of one core. */
function cpuMeter(watched: Watched): { start(): void; stop(): void; readonly percent: Record<string, number> } {
  let before: Record<string, number> = {};
  let self0: NodeJS.CpuUsage | undefined;
  let t0 = 0;
  const percent: Record<string, number> = {};
  return {
    percent,
    start() {
      before = Object.fromEntries(Object.entries(watched).map(([k, w]) => [k, cpuSeconds(w.pid, w.tree)]));
      self0 = process.cpuUsage();
      t0 = performance.now();
    },
    stop() {
      if (!self0) return;
      const secs = (performance.now() - t0) / 1000;
      const self = process.cpuUsage(self0);
      percent.client = Math.round(((self.user + self.system) / 1e6 / secs) * 100);
      for (const [k, w] of Object.entries(watched)) percent[k] = Math.round(((cpuSeconds(w.pid, w.tree) - before[k]!) / secs) * 100);
      self0 = undefined;
    },
  };
}

interface Throughput {
  gbit_per_s: number;
  mbyte_per_s: number;
  bytes: number;
  seconds: number;
  /** CPU the processes on the path used meanwhile (100 = one core): the client (this process), the target, and the tunnel's own processes. */
  cpu_percent: Record<string, number>;
  /** Throughput per core-second of all those processes together: how much each byte costs, which other load on a shared machine changes far less than the throughput itself. */
  gbit_per_cpu_second: number | null;
}

function streamFailure(s: Duplex): Promise<never> {
  return new Promise((_, reject) => {
    s.once("error", (err) => reject(err));
    s.once("close", () => reject(new Error("the connection closed during the test")));
  });
}

/** Client → target: writes as fast as the path takes; the rate is what the sink saw arrive. */
async function upload(dial: Dial, seconds: number, watched: Watched): Promise<Throughput> {
  const cpu = cpuMeter(watched);
  const result = await (async () => {
    const s = await dial();
    const failed = streamFailure(s);
    failed.catch(() => {});
    const chunk = Buffer.alloc(CHUNK_BYTES, 0x62);
    const start = performance.now();
    const measureFrom = start + WARMUP_MS;
    const measureTo = measureFrom + seconds * 1000;
    let first: { bytes: number; ms: number } | undefined;
    let last: { bytes: number; ms: number } | undefined;
    let pending: Buffer = Buffer.alloc(0);
    s.on("data", (d: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, d]) : d;
      const now = performance.now();
      while (pending.length >= 16) {
        const ack = { bytes: Number(pending.readBigUInt64BE(0)), ms: pending.readDoubleBE(8) };
        pending = pending.subarray(16);
        if (now >= measureFrom && !first) first = ack;
        if (now <= measureTo && first) last = ack;
      }
    });
    let stopped = false;
    const pump = () => {
      while (!stopped && !s.destroyed && s.write(chunk));
    };
    s.on("drain", pump);
    s.write(Buffer.from("U"));
    pump();
    try {
      await Promise.race([delay(WARMUP_MS), failed]);
      cpu.start();
      await Promise.race([delay(measureTo - performance.now()), failed]);
      cpu.stop();
      await Promise.race([delay(100), failed]); // the last ack of the window on its way
    } finally {
      stopped = true;
      s.destroy();
    }
    if (!first || !last || last.ms <= first.ms) throw new Error("the sink reported no progress during the test");
    return { bytes: last.bytes - first.bytes, seconds: (last.ms - first.ms) / 1000 };
  })();
  await delay(SETTLE_MS);
  return rate(result.bytes, result.seconds, cpu.percent);
}

/** Target → client: the source sends as fast as the path takes; counted here as it arrives. */
async function download(dial: Dial, seconds: number, watched: Watched): Promise<Throughput> {
  const cpu = cpuMeter(watched);
  const result = await (async () => {
    let bytes = 0;
    const s = await dial((n) => (bytes += n));
    const failed = streamFailure(s);
    failed.catch(() => {});
    s.write(Buffer.from("D"));
    try {
      await Promise.race([delay(WARMUP_MS), failed]);
      const b0 = bytes;
      const t0 = performance.now();
      cpu.start();
      await Promise.race([delay(seconds * 1000), failed]);
      cpu.stop();
      return { bytes: bytes - b0, seconds: (performance.now() - t0) / 1000 };
    } finally {
      s.destroy();
    }
  })();
  await delay(SETTLE_MS);
  return rate(result.bytes, result.seconds, cpu.percent);
}

function rate(bytes: number, seconds: number, cpu_percent: Record<string, number>): Throughput {
  if (bytes <= 0) throw new Error("no bytes moved during the test");
  const gbit = (bytes * 8) / seconds / 1e9;
  const cores = Object.values(cpu_percent).reduce((a, b) => a + b, 0) / 100;
  return {
    gbit_per_s: round(gbit),
    mbyte_per_s: round(bytes / seconds / 1e6, 1),
    bytes,
    seconds: round(seconds, 2),
    cpu_percent,
    gbit_per_cpu_second: cores > 0 ? round(gbit / cores) : null,
  };
}

interface Latency {
  message_bytes: number;
  round_trips: number;
  p50_ms: number | null;
  p95_ms: number | null;
  p99_ms: number | null;
  max_ms: number | null;
}

/** One message there and back at a time over one connection; warm-up round trips are not counted. */
async function latency(dial: Dial, roundTrips: number): Promise<Latency> {
  const s = await dial();
  const failed = streamFailure(s);
  failed.catch(() => {});
  const msg = Buffer.alloc(PING_BYTES, 0x70);
  let got = 0;
  let want = 0;
  let wake: (() => void) | undefined;
  s.on("data", (d: Buffer) => {
    got += d.length;
    if (got >= want && wake) {
      const w = wake;
      wake = undefined;
      w();
    }
  });
  const times = new Float64Array(roundTrips);
  try {
    s.write(Buffer.from("E"));
    for (let i = -WARMUP_ROUNDTRIPS; i < roundTrips; i++) {
      want += PING_BYTES;
      const echoed = new Promise<void>((r) => (wake = r));
      const t0 = performance.now();
      s.write(msg);
      await Promise.race([echoed, failed]);
      if (i >= 0) times[i] = performance.now() - t0;
    }
  } finally {
    s.destroy();
  }
  await delay(SETTLE_MS);
  times.sort();
  return {
    message_bytes: PING_BYTES,
    round_trips: roundTrips,
    p50_ms: percentile(times, 50),
    p95_ms: percentile(times, 95),
    p99_ms: percentile(times, 99),
    max_ms: percentile(times, 100),
  };
}

interface ModeResult {
  upload?: Throughput;
  download?: Throughput;
  latency?: Latency;
  error?: string;
  skipped?: string;
  [extra: string]: unknown;
}

async function measure(name: string, dial: Dial, watched: Watched, seconds: number, roundTrips: number, extra: Record<string, unknown> = {}): Promise<ModeResult> {
  const out: ModeResult = { ...extra };
  try {
    out.upload = await upload(dial, seconds, watched);
    log(`${name}: upload ${out.upload.gbit_per_s} Gbit/s, CPU ${JSON.stringify(out.upload.cpu_percent)}, ${out.upload.gbit_per_cpu_second} Gbit/core-s`);
    out.download = await download(dial, seconds, watched);
    log(`${name}: download ${out.download.gbit_per_s} Gbit/s, CPU ${JSON.stringify(out.download.cpu_percent)}, ${out.download.gbit_per_cpu_second} Gbit/core-s`);
    out.latency = await latency(dial, roundTrips);
    log(`${name}: round trip p50 ${out.latency.p50_ms} ms, p99 ${out.latency.p99_ms} ms`);
  } catch (err) {
    out.error = (err as Error).message;
    log(`${name} failed: ${out.error}`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// OpenSSH: a throwaway sshd on loopback and `ssh -N -L`.

const SSHD = "/usr/sbin/sshd";

interface OpenSsh {
  localPort: number;
  sshd: ChildProcess;
  ssh: ChildProcess;
  cipher: string | null;
  version: string | null;
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(" ")} exited with ${code}: ${out.trim()}`))));
  });
}

/** Collects a child's stderr (bounded) so failures can say what the child said. */
function collect(child: ChildProcess): () => string {
  let text = "";
  child.stderr?.on("data", (d: Buffer) => {
    if (text.length < 256 * 1024) text += d.toString();
  });
  return () => text;
}

async function startOpenSsh(dir: string, targetPort: number, cleanups: Array<() => Promise<void>>): Promise<OpenSsh> {
  const hostKey = join(dir, "host_ed25519");
  const clientKey = join(dir, "client_ed25519");
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", hostKey]);
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", clientKey]);
  writeFileSync(join(dir, "authorized_keys"), readFileSync(`${clientKey}.pub`), { mode: 0o600 });
  const port = await freePort();
  const config = join(dir, "sshd_config");
  writeFileSync(
    config,
    [
      `ListenAddress 127.0.0.1`,
      `HostKey ${hostKey}`,
      `PidFile none`,
      `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
      `PermitRootLogin yes`,
      `PubkeyAuthentication yes`,
      `PasswordAuthentication no`,
      `KbdInteractiveAuthentication no`,
      `UsePAM no`,
      `StrictModes no`,
      `AllowTcpForwarding yes`,
      `LogLevel ERROR`,
      "",
    ].join("\n"),
  );
  // sshd refuses to start without its privilege separation directory (normally made by its unit).
  if (process.getuid?.() === 0 && !existsSync("/run/sshd")) await run("mkdir", ["-p", "-m", "0755", "/run/sshd"]);
  const sshd = spawn(SSHD, ["-D", "-e", "-f", config, "-p", String(port)], { stdio: ["ignore", "ignore", "pipe"] });
  const sshdErr = collect(sshd);
  cleanups.push(async () => {
    sshd.kill("SIGTERM");
    if (!(await within(exited(sshd), 5000))) sshd.kill("SIGKILL");
  });
  // Wait for sshd to listen.
  for (let i = 0; ; i++) {
    if (sshd.exitCode !== null) throw new Error(`sshd exited (code ${sshd.exitCode}): ${sshdErr().trim()}`);
    try {
      (await dialTcp(port)).destroy();
      break;
    } catch {
      if (i > 100) throw new Error(`sshd did not listen within 10s: ${sshdErr().trim()}`);
      await delay(100);
    }
  }
  const localPort = await freePort();
  const ssh = spawn(
    "ssh",
    [
      "-v",
      "-N",
      "-L",
      `127.0.0.1:${localPort}:127.0.0.1:${targetPort}`,
      "-i",
      clientKey,
      "-o",
      "StrictHostKeyChecking=no",
      "-o",
      "UserKnownHostsFile=/dev/null",
      "-o",
      "BatchMode=yes",
      "-o",
      "ExitOnForwardFailure=yes",
      "-F",
      "/dev/null",
      "-p",
      String(port),
      `${userInfo().username}@127.0.0.1`,
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  const sshErr = collect(ssh);
  cleanups.push(async () => {
    ssh.kill("SIGTERM");
    if (!(await within(exited(ssh), 5000))) ssh.kill("SIGKILL");
  });
  for (let i = 0; ; i++) {
    if (ssh.exitCode !== null) throw new Error(`ssh exited (code ${ssh.exitCode}): ${sshErr().trim().split("\n").slice(-5).join("\n")}`);
    // The forward listens only once the session is up.
    if (/Local forwarding listening on|Entering interactive session/.test(sshErr())) {
      try {
        (await dialTcp(localPort)).destroy();
        break;
      } catch {
        // not yet
      }
    }
    if (i > 150) throw new Error(`ssh -L did not listen within 15s: ${sshErr().trim().split("\n").slice(-5).join("\n")}`);
    await delay(100);
  }
  const text = sshErr();
  return {
    localPort,
    sshd,
    ssh,
    cipher: /kex: client->server cipher: (\S+)/.exec(text)?.[1] ?? null,
    version: /^OpenSSH_\S+/m.exec(text)?.[0] ?? null,
  };
}

// ---------------------------------------------------------------------------------------------
// Our tunnel: a real server, a workspace from the example template, its agent.

async function templateArchive(): Promise<Uint8Array> {
  const dir = mkdtempSync(join(tmpdir(), "coder-bench-template-"));
  try {
    for (const [name, text] of Object.entries(EXAMPLE_TEMPLATE)) {
      const path = join(dir, name);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, text);
    }
    return await packDirectory(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function drain<T>(it: AsyncIterable<T>, each?: (v: T) => void): Promise<void> {
  for await (const v of it) each?.(v);
}

interface Workspace {
  name: string;
  agentId: string;
  agentPid: number | null;
}

/** The first user, logged in, and a template from the example. */
async function setupDeployment(server: ServerProcess): Promise<{ client: Client; templateId: string }> {
  await server.waitReady();
  const client = new Client(server.url);
  await client.createFirstUser({ email: "admin@example.com", username: "admin", password: PASSWORD });
  client.sessionToken = (await client.loginWithPassword("admin@example.com", PASSWORD)).session_token;
  const { id } = await client.uploadFile(await templateArchive());
  const version = await client.createTemplateVersion("default", { file_id: id });
  await drain(client.followTemplateVersionLogs(version.id));
  const v = await client.templateVersion(version.id);
  if (v.job.status !== "succeeded") throw new Error(`template import ${v.job.status}: ${v.job.error}`);
  const template = await client.createTemplate("default", { name: "bench", template_version_id: version.id });
  return { client, templateId: template.id };
}

/** A workspace whose agent is connected and ready; deleted (and its agent made sure gone) by the cleanups. */
async function buildWorkspace(client: Client, templateId: string, name: string, cleanups: Array<() => Promise<void>>): Promise<Workspace> {
  const ws = await client.createWorkspace("me", { name, template_id: templateId });
  let agentPid: number | null = null;
  await drain(client.followWorkspaceBuildLogs(ws.latest_build.id), (l) => {
    const m = /^Started agent "[^"]*" \(pid (\d+)\)/.exec(l.output);
    if (m) agentPid = Number(m[1]);
  });
  const build = await client.workspaceBuild(ws.latest_build.id);
  const agentId = build.resources.flatMap((r) => r.agents)[0]?.id;
  // Before anything can fail below: the agent process outlives the server unless the workspace is deleted.
  cleanups.push(async () => {
    try {
      const b = await client.createWorkspaceBuild(ws.id, { transition: "delete" });
      await within(drain(client.followWorkspaceBuildLogs(b.id)), 60_000);
    } catch (err) {
      log(`deleting workspace ${name} failed: ${(err as Error).message}`);
    }
    // The agent is detached from the server: make sure it is gone (only if that pid is still our agent).
    const pid = agentPid;
    if (pid && agentId && agentAlive({ agentId, agentPid: pid })) {
      log(`agent pid ${pid} still running after the delete: killing it`);
      try {
        process.kill(-pid, "SIGKILL");
      } catch {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // gone
        }
      }
    }
  });
  if (build.status !== "running") throw new Error(`workspace build ${build.status}: ${build.job.error}`);
  if (!agentId) throw new Error("the workspace build has no agent");
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (!agentAlive({ agentId, agentPid })) throw new AgentKilled(agentPid);
    const a = await client.workspaceAgent(agentId);
    if (a.status === "connected" && a.lifecycle_state === "ready") break;
    if (Date.now() > deadline) throw new Error(`agent not ready within 60s (status ${a.status}, lifecycle ${a.lifecycle_state})`);
    await delay(200);
  }
  return { name, agentId, agentPid };
}

class AgentKilled extends Error {
  constructor(pid: number | null) {
    super(`the agent process (pid ${pid}) is gone: killed from outside this benchmark`);
  }
}

/**
 * The agent runs detached; something outside this benchmark may kill it (e.g. a concurrent test
 * run's teardown that stops every loopback agent it finds). Then another workspace is built.
 */
async function readyWorkspace(client: Client, templateId: string, name: string, cleanups: Array<() => Promise<void>>): Promise<Workspace> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await buildWorkspace(client, templateId, attempt === 1 ? name : `${name}-${attempt}`, cleanups);
    } catch (err) {
      if (!(err instanceof AgentKilled) || attempt >= 3) throw err;
      log(`${err.message}; building another workspace`);
    }
  }
}

/** Whether the workspace's agent process still runs (a pid not recycled by something else). */
function agentAlive(ws: Pick<Workspace, "agentId" | "agentPid">): boolean {
  return ws.agentPid === null || readEnviron(ws.agentPid).includes(`CODER_AGENT_ID=${ws.agentId}`);
}

function readEnviron(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
  } catch {
    return [];
  }
}

/** Node arguments that run the coder CLI as a user would, from its own config dir logged in with our token. */
function coderArgs(dir: string, url: string, token: string, command: string[]): string[] {
  const cfg = join(dir, "cli");
  mkdirSync(cfg, { recursive: true, mode: 0o700 });
  writeFileSync(join(cfg, "url"), url, { mode: 0o600 });
  writeFileSync(join(cfg, "session"), token, { mode: 0o600 });
  return [...nodeFlags, join(repoRoot(), "bin", "coder.js"), "--config-dir", cfg, ...command];
}

interface SshStart {
  runs: number;
  /** Spawn to first stdout byte of `node -e` with coder's flags: what no CLI code can save. */
  node_boot_p50_ms: number | null;
  /** Spawn to the agent's "SSH-2.0-" banner on stdout, i.e. until OpenSSH could start its handshake. */
  p50_ms: number | null;
  p90_ms: number | null;
  max_ms: number | null;
}

/** Milliseconds from spawning `node args` until its stdout contains `marker`. */
async function timeToOutput(args: string[], marker: string): Promise<number> {
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { env: cleanEnv(), stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  try {
    return await new Promise<number>((resolve, reject) => {
      child.stdout!.on("data", (d: Buffer) => {
        out += d.toString("latin1");
        if (out.includes(marker)) resolve(performance.now() - t0);
      });
      child.once("exit", (code) => reject(new Error(`exited (code ${code}) before printing ${JSON.stringify(marker)}: ${err.trim().slice(-300)}`)));
    });
  } finally {
    child.kill("SIGTERM");
    if (!(await within(exited(child), 5000))) child.kill("SIGKILL");
  }
}

/** `coder ssh --stdio <workspace>` started afresh `runs` times, as OpenSSH's ProxyCommand does for every connection. */
async function sshStart(dir: string, url: string, token: string, workspace: string, runs: number): Promise<SshStart> {
  const boot = new Float64Array(runs);
  const ready = new Float64Array(runs);
  const args = coderArgs(dir, url, token, ["ssh", "--stdio", workspace]);
  await timeToOutput(args, "SSH-2.0-"); // warm-up: file cache, the agent's first session
  for (let i = 0; i < runs; i++) {
    boot[i] = await timeToOutput([...nodeFlags, "-e", "process.stdout.write('up')"], "up");
    ready[i] = await timeToOutput(args, "SSH-2.0-");
  }
  boot.sort();
  ready.sort();
  return { runs, node_boot_p50_ms: percentile(boot, 50), p50_ms: percentile(ready, 50), p90_ms: percentile(ready, 90), max_ms: percentile(ready, 100) };
}

/**
 * `coder port-forward <workspace> --tcp 127.0.0.1:<local>:<target>` as a user runs it (its own
 * config dir, logged in with our token), once it forwards and has its direct path.
 */
async function startPortForward(dir: string, url: string, token: string, workspace: string, localPort: number, targetPort: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, coderArgs(dir, url, token, ["port-forward", workspace, "--tcp", `127.0.0.1:${localPort}:${targetPort}`]), {
    env: cleanEnv(),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  const ready = new Promise<void>((resolve, reject) => {
    const check = () => {
      if (out.includes("Press Ctrl-C") && err.includes("Connected to the agent directly")) resolve();
    };
    child.stdout!.on("data", (d: Buffer) => ((out += d.toString()), check()));
    child.stderr!.on("data", (d: Buffer) => ((err += d.toString()), check()));
    child.once("exit", (code) => reject(new Error(`coder port-forward exited (code ${code}): ${(out + err).trim().slice(-500)}`)));
  });
  ready.catch(() => {});
  if (!(await within(ready, 20_000))) {
    child.kill("SIGKILL");
    throw new Error(`coder port-forward did not forward over a direct path within 20s: ${(out + err).trim().slice(-500)}`);
  }
  await ready;
  return child;
}

function tunnelDial(conn: AgentConn, port: number, path: "relay" | "direct"): Dial {
  return async (count) => {
    const { stream, path: got } = await conn.openStream({ service: "tcp", port });
    if (got !== path) {
      stream.destroy();
      throw new Error(`the stream took the ${got} path, not ${path}`);
    }
    if (count) stream.on("data", (d: Buffer) => count(d.length));
    return stream;
  };
}

function waitDirect(conn: AgentConn, ms: number): Promise<boolean> {
  if (conn.path === "direct") return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      conn.off("path", onPath);
      resolve(false);
    }, ms);
    const onPath = (p: string) => {
      if (p !== "direct") return;
      clearTimeout(timer);
      conn.off("path", onPath);
      resolve(true);
    };
    conn.on("path", onPath);
  });
}

// ---------------------------------------------------------------------------------------------

export interface TunnelBenchmarkDoc {
  benchmark: "tunnel";
  machine: { cpus: number; node: string };
  /** Measured over 1 s before the first mode: the machine is shared (2 cores), so read the figures with this in mind. */
  background: { busy_percent: number | null; loadavg_1m: number };
  seconds: number;
  round_trips: number;
  chunk_bytes: number;
  modes: Record<(typeof MODE_NAMES)[number], ModeResult>;
  /** `coder ssh --stdio` start-up (BENCH_SSH_STARTS runs, default 10); DESIGN wants about 300 ms. */
  ssh_stdio_start: SshStart | { error: string } | { skipped: string };
  ratios: Record<string, { upload: number | null; download: number | null }>;
  added_latency_ms: Record<"relay_p50" | "direct_p50" | "port_forward_p50" | "relay_p99" | "direct_p99" | "port_forward_p99", number | null>;
  targets: {
    direct_at_least_openssh: boolean | null;
    relay_at_least_half_openssh: boolean | null;
    relay_above_1gbit: boolean | null;
    relay_added_p50_under_1ms: boolean | null;
  };
}

export async function runTunnelBenchmark(): Promise<{ doc: TunnelBenchmarkDoc; ok: boolean }> {
  const seconds = envSeconds("BENCH_TUNNEL_SECONDS", 3);
  const roundTrips = Math.round(envSeconds("BENCH_TUNNEL_ROUNDTRIPS", 2000));
  const sshStarts = Math.round(envSeconds("BENCH_SSH_STARTS", 10));
  const known: string[] = [...MODE_NAMES, SSH_START];
  const selected = new Set((process.env.BENCH_TUNNEL_MODES || known.join(",")).split(",").map((m) => m.trim()));
  for (const m of selected) if (!known.includes(m)) throw new Error(`BENCH_TUNNEL_MODES: unknown mode "${m}" (known: ${known.join(", ")})`);
  const notSelected: ModeResult = { skipped: "not selected (BENCH_TUNNEL_MODES)" };
  let background: TunnelBenchmarkDoc["background"] = { busy_percent: null, loadavg_1m: 0 };
  const cleanups: Array<() => Promise<void>> = [];
  let cleaning: Promise<void> | undefined;
  /** Last in, first out; each step runs even when one before it failed. Idempotent. */
  const cleanUp = () =>
    (cleaning ??= (async () => {
      const t0 = performance.now();
      for (const c of cleanups.reverse()) {
        try {
          await c();
        } catch (err) {
          log(`cleanup failed: ${(err as Error).message}`);
        }
      }
      log(`cleaned up in ${((performance.now() - t0) / 1000).toFixed(1)}s`);
    })());
  // Interrupted: the detached agent, sshd and the server's Postgres would outlive us otherwise.
  const onSignal = (sig: NodeJS.Signals) => {
    log(`${sig}: cleaning up`);
    void cleanUp().finally(() => process.exit(sig === "SIGINT" ? 130 : 143));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const dir = mkdtempSync(join(tmpdir(), "coder-bench-tunnel-"));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const modes = {} as TunnelBenchmarkDoc["modes"];
  let sshStartResult: TunnelBenchmarkDoc["ssh_stdio_start"] = { skipped: "not selected (BENCH_TUNNEL_MODES)" };
  let server: ServerProcess | undefined;
  try {
    const target = await startTarget();
    cleanups.push(async () => {
      target.child.kill("SIGTERM");
      if (!(await within(exited(target.child), 5000))) target.child.kill("SIGKILL");
    });
    const targetPid = target.child.pid!;
    log(`target server (pid ${targetPid}) on 127.0.0.1:${target.port}`);

    // The server and workspace first, so every mode is measured with them idling in the background.
    let deployment: { client: Client; templateId: string } | undefined;
    let ws: Workspace | undefined;
    let wsError: string | undefined;
    if (selected.has("relay") || selected.has("direct") || selected.has("port_forward") || selected.has(SSH_START)) {
      try {
        server = await ServerProcess.start({ args: ["--provisioner-daemons", "1"], name: "tunnel" });
        const s = server;
        cleanups.push(() => s.stop());
        deployment = await setupDeployment(server);
        ws = await readyWorkspace(deployment.client, deployment.templateId, "tunnel", cleanups);
        log(`workspace up; agent ${ws.agentId} (pid ${ws.agentPid ?? "?"})`);
      } catch (err) {
        wsError = `setting up the server and workspace failed: ${(err as Error).message}`;
        log(wsError);
        if (server) log(tail(server.logFile));
      }
    }

    // What else keeps this machine busy (other work, the idle server) while the modes are measured.
    background = { busy_percent: await machineBusyPct(1000), loadavg_1m: round(loadavg()[0] ?? 0, 2) };
    log(`machine ${background.busy_percent}% busy before measuring (load average ${background.loadavg_1m})`);

    const targetOnly: Watched = { target: { pid: targetPid } };
    if (!selected.has("raw")) {
      modes.raw = notSelected;
    } else {
      log(`raw: measuring (${seconds}s per direction, ${roundTrips} round trips)`);
      modes.raw = await measure("raw", (count) => dialTcp(target.port, count), targetOnly, seconds, roundTrips);
    }

    if (!selected.has("openssh")) {
      modes.openssh = notSelected;
    } else if (!existsSync(SSHD)) {
      modes.openssh = { skipped: `${SSHD} is not installed (apt-get install -y openssh-server)` };
    } else {
      try {
        const ossh = await startOpenSsh(dir, target.port, cleanups);
        log(`openssh (${ossh.version}, ${ossh.cipher}): measuring`);
        modes.openssh = await measure(
          "openssh",
          (count) => dialTcp(ossh.localPort, count),
          { ...targetOnly, ssh: { pid: ossh.ssh.pid! }, sshd: { pid: ossh.sshd.pid!, tree: true } },
          seconds,
          roundTrips,
          { version: ossh.version, cipher: ossh.cipher },
        );
      } catch (err) {
        modes.openssh = { error: (err as Error).message };
        log(`openssh failed: ${(err as Error).message}`);
      }
    }

    if (!ws || !server || !deployment) {
      modes.relay = selected.has("relay") ? { error: wsError ?? "no workspace" } : notSelected;
      modes.direct = selected.has("direct") ? { error: wsError ?? "no workspace" } : notSelected;
      modes.port_forward = selected.has("port_forward") ? { error: wsError ?? "no workspace" } : notSelected;
      if (selected.has(SSH_START)) sshStartResult = { error: wsError ?? "no workspace" };
    } else {
      const { client, templateId } = deployment;
      const serverPid = server.child.pid!;
      let current = ws;
      let rebuilt = 0;
      /**
       * The agent runs detached; something outside this benchmark may have killed it meanwhile
       * (e.g. a concurrent test run's teardown that stops every loopback agent it finds). Then a
       * fresh workspace replaces it, and the run says so.
       */
      const live = async (): Promise<Workspace> => {
        if (agentAlive(current)) return current;
        log(`the agent process (pid ${current.agentPid}) is gone, killed from outside this benchmark: building a new workspace`);
        current = await readyWorkspace(client, templateId, `tunnel-r${++rebuilt}`, cleanups);
        log(`workspace up; agent ${current.agentId} (pid ${current.agentPid ?? "?"})`);
        return current;
      };
      const tunnelMode = async (path: "relay" | "direct"): Promise<ModeResult> => {
        const rebuiltBefore = rebuilt;
        for (let attempt = 1; ; attempt++) {
          let conn: AgentConn | undefined;
          let result: ModeResult;
          let w: Workspace | undefined;
          try {
            w = await live();
            const watched: Watched = { ...targetOnly, server: { pid: serverPid }, ...(w.agentPid ? { agent: { pid: w.agentPid } } : {}) };
            const t0 = performance.now();
            conn = await dialAgent(client, w.agentId, { blockDirect: path === "relay" });
            if (path === "direct" && !(await waitDirect(conn, 20_000))) throw new Error("no direct path within 20s");
            log(`${path}: session up after ${Math.round(performance.now() - t0)} ms${conn.directTransport ? ` (${conn.directTransport})` : ""}; measuring`);
            result = await measure(path, tunnelDial(conn, target.port, path), watched, seconds, roundTrips);
          } catch (err) {
            result = { error: (err as Error).message };
            log(`${path} failed: ${result.error}`);
          } finally {
            conn?.close();
          }
          if (result.error && w && !agentAlive(w) && attempt < 3) {
            log(`${path}: the agent died during the test (killed from outside); again with a new workspace`);
            continue;
          }
          if (rebuilt > rebuiltBefore) result.workspaces_rebuilt = rebuilt - rebuiltBefore;
          return result;
        }
      };
      modes.relay = selected.has("relay") ? await tunnelMode("relay") : notSelected;
      modes.direct = selected.has("direct") ? await tunnelMode("direct") : notSelected;
      const portForwardMode = async (): Promise<ModeResult> => {
        let pf: ChildProcess | undefined;
        try {
          const w = await live();
          const localPort = await freePort();
          const t0 = performance.now();
          pf = await startPortForward(dir, server!.url, client.sessionToken!, w.name, localPort, target.port);
          log(`port_forward: direct path up after ${Math.round(performance.now() - t0)} ms; measuring`);
          const watched: Watched = { ...targetOnly, coder: { pid: pf.pid! }, server: { pid: serverPid }, ...(w.agentPid ? { agent: { pid: w.agentPid } } : {}) };
          return await measure("port_forward", (count) => dialTcp(localPort, count), watched, seconds, roundTrips);
        } catch (err) {
          log(`port_forward failed: ${(err as Error).message}`);
          return { error: (err as Error).message };
        } finally {
          pf?.kill("SIGTERM");
          if (pf && !(await within(exited(pf), 5000))) pf.kill("SIGKILL");
        }
      };
      modes.port_forward = selected.has("port_forward") ? await portForwardMode() : notSelected;
      if (selected.has(SSH_START)) {
        try {
          const w = await live();
          log(`${SSH_START}: coder ssh --stdio ${w.name}, ${sshStarts} starts`);
          const r = await sshStart(dir, server.url, client.sessionToken!, w.name, sshStarts);
          log(`${SSH_START}: SSH banner after p50 ${r.p50_ms} ms (node alone ${r.node_boot_p50_ms} ms)`);
          sshStartResult = r;
        } catch (err) {
          sshStartResult = { error: (err as Error).message };
          log(`${SSH_START} failed: ${(err as Error).message}`);
        }
      }
    }
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await cleanUp();
  }

  const gbit = (m: ModeResult | undefined, d: "upload" | "download") => m?.[d]?.gbit_per_s ?? null;
  const ratio = (a: ModeResult, b: ModeResult) => {
    const r = (d: "upload" | "download") => {
      const x = gbit(a, d);
      const y = gbit(b, d);
      return x !== null && y !== null && y > 0 ? round(x / y) : null;
    };
    return { upload: r("upload"), download: r("download") };
  };
  const added = (m: ModeResult, p: "p50_ms" | "p99_ms") => {
    const x = m.latency?.[p];
    const y = modes.raw.latency?.[p];
    return x != null && y != null ? round(x - y) : null;
  };
  /** Both directions satisfy pred, null if a figure is missing. */
  const both = (pred: (d: "upload" | "download") => boolean | null) => {
    const u = pred("upload");
    const d = pred("download");
    return u === null || d === null ? null : u && d;
  };
  const ge = (a: ModeResult, b: ModeResult, factor: number) => (d: "upload" | "download") => {
    const x = gbit(a, d);
    const y = gbit(b, d);
    return x === null || y === null ? null : x >= factor * y;
  };
  const addedRelayP50 = added(modes.relay, "p50_ms");
  const doc: TunnelBenchmarkDoc = {
    benchmark: "tunnel",
    machine: { cpus: cpus().length, node: process.version },
    background,
    seconds,
    round_trips: roundTrips,
    chunk_bytes: CHUNK_BYTES,
    modes,
    ssh_stdio_start: sshStartResult,
    ratios: {
      relay_vs_raw: ratio(modes.relay, modes.raw),
      direct_vs_raw: ratio(modes.direct, modes.raw),
      relay_vs_openssh: ratio(modes.relay, modes.openssh),
      direct_vs_openssh: ratio(modes.direct, modes.openssh),
      port_forward_vs_openssh: ratio(modes.port_forward, modes.openssh),
      openssh_vs_raw: ratio(modes.openssh, modes.raw),
    },
    added_latency_ms: {
      relay_p50: addedRelayP50,
      direct_p50: added(modes.direct, "p50_ms"),
      port_forward_p50: added(modes.port_forward, "p50_ms"),
      relay_p99: added(modes.relay, "p99_ms"),
      direct_p99: added(modes.direct, "p99_ms"),
      port_forward_p99: added(modes.port_forward, "p99_ms"),
    },
    targets: {
      direct_at_least_openssh: both(ge(modes.direct, modes.openssh, 1)),
      relay_at_least_half_openssh: both(ge(modes.relay, modes.openssh, 0.5)),
      relay_above_1gbit: both((d) => {
        const x = gbit(modes.relay, d);
        return x === null ? null : x > 1;
      }),
      relay_added_p50_under_1ms: addedRelayP50 === null ? null : addedRelayP50 < 1,
    },
  };
  // Missed targets are figures, not failures; a mode that errored is (a skipped one is not).
  const ok = Object.values(modes).every((m) => !m.error) && !("error" in sshStartResult);
  return { doc, ok };
}
