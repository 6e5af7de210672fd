// `coder port-forward`, `coder speedtest` and `coder ping` (the real binary) against a real
// server and a real agent whose startup script runs an HTTP server inside the workspace; both
// over a direct path and relayed (CODER_BLOCK_DIRECT=1).
import { spawn, type ChildProcess } from "node:child_process";
import { connect, createServer, type Server } from "node:net";
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from "vitest";
import type { Client, Workspace } from "../../src/codersdk/index.js";
import { EXAMPLE_TEMPLATE } from "../../src/provisioners/index.js";
import { CODER_BIN, runCli } from "../helpers/binary.js";
import { createFirstUser, startTestServer, type TestServer } from "../helpers/coderd.js";
import { closedPort } from "../helpers/net.js";
import { deleteWorkspace, loggedInConfigDir, removeDir, runningWorkspace } from "../helpers/workspaces.js";

let srv: TestServer;
let owner: Client;
let cfg: string;
let workspace: Workspace;
/** The HTTP server inside the workspace: its port, and its pid (to stop it with the workspace). */
let httpPort: number;
let httpPid: number | undefined;

// The server answers "hello <path>" (and its pid on /pid); the script returns once it listens:
// the server opens the FIFO that `cat` waits on.
const SERVER = `const http = require("http"), fs = require("fs");
http.createServer((q, s) => s.end(q.url === "/pid" ? String(process.pid) : "hello " + q.url)).listen(Number(process.argv[1]), "127.0.0.1", () => fs.writeFileSync(process.argv[2], "up"));`;

function template(port: number): Record<string, string> {
  return {
    ...EXAMPLE_TEMPLATE,
    "template.yaml": `agents:
  - name: main
    startup_script: |
      fifo=$(mktemp -u); mkfifo "$fifo"
      node -e '${SERVER.replace(/\n/g, " ")}' ${port} "$fifo" >/dev/null 2>&1 &
      cat "$fifo" >/dev/null; rm -f "$fifo"
`,
  };
}

beforeAll(async () => {
  srv = await startTestServer({ provisionerDaemons: 1, manualClose: true });
  const { client } = await createFirstUser(srv);
  owner = client;
  httpPort = await closedPort();
  ({ workspace } = await runningWorkspace(client, "dev", template(httpPort)));
  cfg = loggedInConfigDir(client);
});

afterAll(async () => {
  if (httpPid) {
    try {
      process.kill(httpPid);
    } catch {
      // already gone with the workspace
    }
  }
  if (workspace) await deleteWorkspace(owner, workspace);
  await srv?.close();
  removeDir(cfg);
});

const cli = (args: string[], env: Record<string, string> = {}) => runCli(["--config-dir", cfg, ...args], env, 60_000);

function cliEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("CODER_")) env[k] = v;
  return { ...env, ...extra };
}

interface Running {
  proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | null>;
}

/** Starts `coder port-forward` and resolves once it printed a line per forward; killed after the test. */
async function portForward(args: string[], forwards: number, env: Record<string, string> = {}): Promise<Running> {
  const proc = spawn(process.execPath, [CODER_BIN, "--config-dir", cfg, "port-forward", "dev", ...args], { env: cliEnv(env), stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  const exited = new Promise<number | null>((res) => proc.on("exit", (code) => res(code)));
  onTestFinished(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill("SIGKILL");
      await exited;
    }
  });
  proc.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  await new Promise<void>((res, rej) => {
    proc.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if ((out.match(/^Forwarding /gm) ?? []).length >= forwards) res();
    });
    void exited.then((code) => rej(new Error(`coder port-forward exited (${code}) before forwarding:\n${out}\n${err}`)));
  });
  return { proc, stdout: () => out, stderr: () => err, exited };
}

/** GET through the forwarded port: status and body. */
function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((res, rej) => {
    // A fresh connection per request, so that each one is a new tunnel stream.
    const req = request({ host: "127.0.0.1", port, path, agent: false }, (r) => {
      let body = "";
      r.setEncoding("utf8");
      r.on("data", (d: string) => (body += d));
      r.on("end", () => res({ status: r.statusCode!, body }));
      r.on("error", rej);
    });
    req.on("error", rej);
    req.end();
  });
}

describe("coder port-forward", () => {
  it("forwards local ports to the workspace, many connections at once, and stops on SIGINT", async () => {
    const local = await closedPort();
    const refusedLocal = await closedPort();
    const refusedRemote = await closedPort();
    const pf = await portForward(["--tcp", `${local}:${httpPort}`, "--tcp", `127.0.0.1:${refusedLocal}:${refusedRemote}`], 2);
    expect(pf.stdout()).toContain(`Forwarding 127.0.0.1:${local} → workspace port ${httpPort}\n`);
    expect(pf.stdout()).toContain(`Forwarding 127.0.0.1:${refusedLocal} → workspace port ${refusedRemote}\n`);

    expect(await get(local, "/first")).toEqual({ status: 200, body: "hello /first" });
    httpPid = Number((await get(local, "/pid")).body);
    const many = await Promise.all(Array.from({ length: 50 }, (_, i) => get(local, `/req-${i}`)));
    expect(many.map((r) => r.body)).toEqual(Array.from({ length: 50 }, (_, i) => `hello /req-${i}`));
    // The direct path is announced whether it came up before or after the forwards started.
    await vi.waitFor(() => expect(pf.stderr()).toContain("Connected to the agent directly\n"), { timeout: 10_000, interval: 50 });

    // Nothing listens on the remote port: the local connection just ends, the forwarder lives on.
    const ended = await new Promise<string>((res, rej) => {
      const s = connect(refusedLocal, "127.0.0.1");
      let got = "";
      s.on("data", (d) => (got += d.toString()));
      s.on("error", rej);
      s.on("close", () => res(got));
    });
    expect(ended).toBe("");
    expect(await get(local, "/after")).toEqual({ status: 200, body: "hello /after" });

    pf.proc.kill("SIGINT");
    expect(await pf.exited).toBe(0);
    await expect(get(local, "/gone")).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });

  it("works relayed (CODER_BLOCK_DIRECT=1), and a half-closed request still gets its reply", async () => {
    const local = await closedPort();
    const pf = await portForward(["--tcp", `${local}:${httpPort}`], 1, { CODER_BLOCK_DIRECT: "1" });
    expect(await get(local, "/relayed")).toEqual({ status: 200, body: "hello /relayed" });
    const many = await Promise.all(Array.from({ length: 20 }, (_, i) => get(local, `/r-${i}`)));
    expect(many.every((r, i) => r.body === `hello /r-${i}`)).toBe(true);
    // Send the request, then shut down our writing side: the reply must still arrive.
    const reply = await new Promise<string>((res, rej) => {
      const s = connect({ host: "127.0.0.1", port: local, allowHalfOpen: true });
      let got = "";
      s.on("data", (d) => (got += d.toString()));
      s.on("error", rej);
      s.on("end", () => {
        res(got);
        s.destroy();
      });
      s.end("GET /half HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    });
    expect(reply).toMatch(/^HTTP\/1\.1 200/);
    expect(reply).toContain("hello /half");
    expect(pf.stderr()).not.toContain("Connected to the agent directly");
    pf.proc.kill("SIGTERM");
    expect(await pf.exited).toBe(0);
  });

  it("rejects a bad --tcp spec, naming it, before dialing anything", async () => {
    const r = await cli(["port-forward", "dev", "--tcp", "8080:80", "--tcp", "8000-8005:9000-9002"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('--tcp "8000-8005:9000-9002": the local side has 6 ports but the remote side has 3');
    const none = await cli(["port-forward", "dev"]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain("give at least one --tcp");
  });

  it("says clearly when the local port is taken", async () => {
    const taken = await closedPort();
    const blocker = await new Promise<Server>((res) => {
      const s = createServer().listen(taken, "127.0.0.1", () => res(s));
    });
    onTestFinished(() => void blocker.close());
    const r = await cli(["port-forward", "dev", "--tcp", `${taken}:${httpPort}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot listen on 127.0.0.1:${taken}: the address is already in use`);
  });
});

describe("coder speedtest", () => {
  const header = "INTERVAL       TRANSFER         BANDWIDTH\n";
  const total = /\n-{52}\n0\.00-(\d+\.\d\d) sec {2}\d+\.\d{4} MBits +(\d+\.\d{4}) Mbits\/sec\n$/;

  it("downloads over the direct path and prints the seed's table", async () => {
    const r = await cli(["speedtest", "dev", "-t", "1s"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const lines = r.stdout.split("\n");
    expect(lines[0]).toMatch(/^\d+(\.\d+)?ms direct$/);
    expect(lines[1]).toBe("Starting a 1s download test...");
    expect(r.stdout).toContain(header);
    // Interval bounds are measured, not nominal: a busy machine's timer may fire a little late.
    expect(r.stdout).toMatch(/\nINTERVAL.*\n0\.00-1\.\d\d sec {2}\d+\.\d{4} MBits +\d+\.\d{4} Mbits\/sec\n/);
    const m = total.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThanOrEqual(1);
    expect(Number(m![2])).toBeGreaterThan(0);
  });

  it("uploads relayed and says via coder", async () => {
    const r = await cli(["speedtest", "dev", "-t", "1s", "--direction", "up"], { CODER_BLOCK_DIRECT: "1" });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\d+(\.\d+)?ms via coder\nStarting a 1s upload test\.\.\.\n/);
    expect(r.stdout).toContain(header);
    expect(Number(total.exec(r.stdout)?.[2])).toBeGreaterThan(0);
  });

  it("prints JSON with numbers for -o json", async () => {
    const r = await cli(["speedtest", "dev", "-t", "1s", "-o", "json"], { CODER_BLOCK_DIRECT: "1" });
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ path: "relay", direction: "down", duration_ms: 1000 });
    expect(report.latency_ms).toBeTypeOf("number");
    expect(report.intervals.length).toBeGreaterThanOrEqual(1);
    for (const i of report.intervals) for (const k of ["start_time_seconds", "end_time_seconds", "bytes", "transfer_mbits", "throughput_mbits"]) expect(i[k]).toBeTypeOf("number");
    expect(report.overall.throughput_mbits).toBeGreaterThan(0);
    expect(report.overall.bytes).toBe(report.intervals.reduce((a: number, i: { bytes: number }) => a + i.bytes, 0));
  });

  it("rejects bad flags", async () => {
    const t = await cli(["speedtest", "dev", "-t", "forever"]);
    expect(t.code).toBe(1);
    expect(t.stderr).toContain('-t/--time "forever" is not a duration');
    const long = await cli(["speedtest", "dev", "-t", "2m"]);
    expect(long.stderr).toContain('-t/--time "2m" must be between 100ms and 1m');
    const d = await cli(["speedtest", "dev", "--direction", "sideways"]);
    expect(d.code).toBe(1);
    expect(d.stderr).toContain('--direction must be "up" or "down", not "sideways"');
  });
});

describe("coder ping", () => {
  it("pings the given number of times via the relay, with a summary", async () => {
    const r = await cli(["ping", "dev", "-n", "3", "--wait", "50ms"], { CODER_BLOCK_DIRECT: "1" });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const pongs = r.stdout.split("\n").filter((l) => l.startsWith("pong"));
    expect(pongs).toHaveLength(3);
    for (const l of pongs) expect(l).toMatch(/^pong from dev via relay in \d+(\.\d+)?ms$/);
    expect(r.stdout).toContain("--- dev ping statistics ---\n3 pings sent, 3 pongs received, 0% lost\n");
    expect(r.stdout).toMatch(/round trip min\/avg\/max = [\d.]+ms\/[\d.]+ms\/[\d.]+ms, path: relay\n$/);
  });

  it("pings with direct paths allowed", async () => {
    const r = await cli(["ping", "dev", "-n", "3", "--wait", "50ms"]);
    expect(r.code).toBe(0);
    const pongs = r.stdout.split("\n").filter((l) => l.startsWith("pong"));
    expect(pongs).toHaveLength(3);
    for (const l of pongs) expect(l).toMatch(/^pong from dev (direct|via relay) in \d+(\.\d+)?ms$/);
  });

  it("fails clearly when there is no such workspace, or a flag is bad", async () => {
    const r = await cli(["ping", "nope", "-n", "1"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('No workspace "nope"');
    const n = await cli(["ping", "dev", "-n", "many"]);
    expect(n.code).toBe(1);
    expect(n.stderr).toContain('-n/--num "many" must be a whole number');
  });
});
