// The agent's SSH server against the real OpenSSH client: a plain TCP server on loopback hands
// each connection to server.handle() (standing in for the tunnel), and ssh, scp and sftp run
// against it as users and VS Code do.
import { spawn as spawnChild } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { connect, createServer, type AddressInfo, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn as spawnPty } from "@lydell/node-pty";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentSshServer, hostKeyFingerprint, hostPublicKey, loadOrCreateHostKey } from "../../src/agent/ssh/index.js";

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

let dir: string;
let home: string;
let hostKey: string;
let server: AgentSshServer;
let tcp: Server;
let port: number;
let http: HttpServer;
let httpPort: number;
const handled: Array<Promise<void>> = [];

const BASE_OPTS = ["-F", "/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", "User=coder"];
const SSH_OPTS = [...BASE_OPTS, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"];
const sshArgs = (...args: string[]) => [...SSH_OPTS, "-p", String(port), ...args];

function run(cmd: string, args: string[], opts: { input?: Buffer | string; env?: NodeJS.ProcessEnv } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawnChild(cmd, args, { stdio: ["pipe", "pipe", "pipe"], env: opts.env ?? process.env });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => err.push(d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
    child.stdin.end(opts.input ?? "");
  });
}

const ssh = (command: string, ...opts: string[]) => run("ssh", sshArgs(...opts, "127.0.0.1", command));

async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, "127.0.0.1", () => {
      const p = (srv.address() as AddressInfo).port;
      srv.close(() => resolve(p));
    });
  });
}

/** Pids of processes running exactly this command line (not, say, the ssh client that asked for it). */
function processesRunning(cmdline: string): number[] {
  const pids: number[] = [];
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim() === cmdline) pids.push(Number(pid));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "coder-ssh-test-"));
  home = join(dir, "home");
  mkdirSync(home);
  hostKey = await loadOrCreateHostKey(join(dir, "keys", "host_key"));
  server = new AgentSshServer({ hostKey, env: { WORKSPACE_VAR: "from-the-workspace" }, directory: home });
  tcp = createServer((socket) => handled.push(server.handle(socket)));
  await new Promise<void>((r) => tcp.listen(0, "127.0.0.1", r));
  port = (tcp.address() as AddressInfo).port;
  http = createHttpServer((_req, res) => res.end("hello over http"));
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
  httpPort = (http.address() as AddressInfo).port;
});

afterAll(async () => {
  await server?.close();
  tcp?.close();
  http?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("host key", () => {
  it("is created once with mode 0600 and reused", async () => {
    const path = join(dir, "keys", "host_key");
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(await loadOrCreateHostKey(path)).toBe(hostKey);
  });

  it("prints the fingerprint as ssh-keygen does, and clients can pin it", async () => {
    const pub = join(dir, "host_key.pub");
    writeFileSync(pub, `${hostPublicKey(hostKey)}\n`);
    const keygen = await run("ssh-keygen", ["-l", "-E", "sha256", "-f", pub]);
    expect(keygen.stdout.split(" ")[1]).toBe(hostKeyFingerprint(hostKey));

    const pinned = join(dir, "known_hosts");
    writeFileSync(pinned, `[127.0.0.1]:${port} ${hostPublicKey(hostKey)}\n`);
    // (ssh takes the first value given for an option: these cannot follow SSH_OPTS.)
    const strict = (file: string) => [...BASE_OPTS, "-p", String(port), "-o", "StrictHostKeyChecking=yes", "-o", `UserKnownHostsFile=${file}`];
    const ok = await run("ssh", [...strict(pinned), "127.0.0.1", "echo pinned"]);
    expect(ok).toMatchObject({ code: 0, stdout: "pinned\n" });

    const other = join(dir, "other_known_hosts");
    const otherKey = await loadOrCreateHostKey(join(dir, "keys", "other"));
    writeFileSync(other, `[127.0.0.1]:${port} ${hostPublicKey(otherKey)}\n`);
    const refused = await run("ssh", [...strict(other), "127.0.0.1", "echo pinned"]);
    expect(refused.code).toBe(255);
    expect(refused.stdout).toBe("");
  });
});

describe("exec", () => {
  it("runs a command and reports its exit status", async () => {
    expect(await ssh("echo hello")).toMatchObject({ code: 0, stdout: "hello\n" });
    expect((await ssh("exit 42")).code).toBe(42);
  });

  it("keeps stderr separate", async () => {
    expect(await ssh("echo out; echo err >&2")).toMatchObject({ code: 0, stdout: "out\n", stderr: "err\n" });
  });

  it("passes the client's env requests and the workspace's environment", async () => {
    const r = await ssh('echo "$FOO $WORKSPACE_VAR $PWD"', "-o", "SetEnv=FOO=bar");
    expect(r).toMatchObject({ code: 0, stdout: `bar from-the-workspace ${home}\n` });
  });

  it("pipes stdin through unchanged", async () => {
    const data = randomBytes(256 * 1024);
    const r = await run("ssh", sshArgs("127.0.0.1", "sha256sum"), { input: data });
    expect(r.stdout.split(" ")[0]).toBe(createHash("sha256").update(data).digest("hex"));
  });

  it("reports a program killed by a signal", async () => {
    // ssh exits 255 on exit-signal (as without any status); only its debug log names the request.
    const r = await ssh("kill -TERM $$", "-v");
    expect(r.code).toBe(255);
    expect(r.stderr).toMatch(/rtype exit-signal/);
  });
});

describe("pty", () => {
  /** Runs ssh -tt on a terminal of our own, so that its size and TERM are known. */
  function sshOnTerminal(command: string[], cols: number, rows: number) {
    const term = spawnPty("ssh", [...sshArgs("-tt", "127.0.0.1"), ...command], { cols, rows, name: "xterm-256color", env: { ...process.env, TERM: "xterm-256color" } as Record<string, string> });
    let output = "";
    term.onData((d) => (output += d));
    const exited = new Promise<number>((r) => term.onExit(({ exitCode }) => r(exitCode)));
    return { term, exited, output: () => output, waitFor: (s: string) => until(`"${s}" in the output`, () => output.includes(s) || undefined) };
  }

  it("runs a command on a terminal of the client's size and TERM, and follows resizes", async () => {
    const s = sshOnTerminal(["tty; echo TERM=$TERM; stty size; trap 'stty size' WINCH; while :; do sleep 0.05; done"], 100, 30);
    try {
      await s.waitFor("30 100");
      expect(s.output()).toMatch(/\/dev\/pts\/\d+/);
      expect(s.output()).toContain("TERM=xterm-256color");
      s.term.resize(120, 40);
      await s.waitFor("40 120");
    } finally {
      s.term.kill("SIGKILL");
      await s.exited;
    }
  });

  it("runs an interactive login shell", async () => {
    const s = sshOnTerminal([], 80, 24);
    s.term.write("echo $((6 * 7))done\r");
    await s.waitFor("42done");
    s.term.write("exit 3\r");
    expect(await s.exited).toBe(3);
  });
});

describe("file transfer", () => {
  it("copies a binary file up and back down with scp", async () => {
    const src = join(dir, "upload.bin");
    writeFileSync(src, randomBytes(5 * 1024 * 1024));
    const scpArgs = [...SSH_OPTS, "-P", String(port)];
    const up = await run("scp", [...scpArgs, src, "127.0.0.1:uploaded.bin"]);
    expect(up).toMatchObject({ code: 0, stderr: "" });
    expect(sha256(join(home, "uploaded.bin"))).toBe(sha256(src));
    const back = join(dir, "downloaded.bin");
    const down = await run("scp", [...scpArgs, `127.0.0.1:${join(home, "uploaded.bin")}`, back]);
    expect(down).toMatchObject({ code: 0, stderr: "" });
    expect(sha256(back)).toBe(sha256(src));
  });

  it("serves sftp in batch mode", async () => {
    const local = join(dir, "local.txt");
    writeFileSync(local, "some text\n");
    const batch = join(dir, "batch");
    writeFileSync(
      batch,
      ["mkdir sub", "cd sub", `put ${local} remote.txt`, "chmod 600 remote.txt", "ls -l", "rename remote.txt moved.txt", "symlink moved.txt link.txt", "ls", `get link.txt ${join(dir, "fetched.txt")}`, "rm link.txt", "rm moved.txt", "cd ..", "rmdir sub", "ls"].join("\n") + "\n",
    );
    const r = await run("sftp", [...SSH_OPTS, "-P", String(port), "-b", batch, "127.0.0.1"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/-rw------- .* remote\.txt/);
    expect(r.stdout).toContain("moved.txt");
    expect(readFileSync(join(dir, "fetched.txt"), "utf8")).toBe("some text\n");
    expect(existsSync(join(home, "sub"))).toBe(false);
  });
});

describe("port forwarding", () => {
  it("forwards a local port to a server the workspace can reach", async () => {
    const local = await freePort();
    const child = spawnChild("ssh", sshArgs("-N", "-o", "ExitOnForwardFailure=yes", "-L", `${local}:127.0.0.1:${httpPort}`, "127.0.0.1"), { stdio: "ignore" });
    try {
      const body = await until("the forward", async () => (await fetch(`http://127.0.0.1:${local}/`)).text());
      expect(body).toBe("hello over http");
      expect(server.sessions().port_forward ?? 0).toBeLessThanOrEqual(1);
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("forwards a port inside the workspace back to the client", async () => {
    const remote = await freePort();
    const child = spawnChild("ssh", sshArgs("-N", "-o", "ExitOnForwardFailure=yes", "-R", `${remote}:127.0.0.1:${httpPort}`, "127.0.0.1"), { stdio: "ignore" });
    try {
      const body = await until("the remote forward", async () => (await fetch(`http://127.0.0.1:${remote}/`)).text());
      expect(body).toBe("hello over http");
    } finally {
      child.kill("SIGKILL");
    }
    // The connection is gone, and with it the listener.
    await until("the listener to close", () => new Promise<boolean | undefined>((r) => connect(remote, "127.0.0.1").once("connect", () => r(undefined)).once("error", () => r(true))));
  });

  it("tells the client which port it bound when asked for port 0", async () => {
    // -v: ssh reports the allocated port at INFO, which LogLevel=ERROR hides.
    const child = spawnChild("ssh", sshArgs("-v", "-N", "-o", "ExitOnForwardFailure=yes", "-R", `0:127.0.0.1:${httpPort}`, "127.0.0.1"), { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    try {
      const allocated = await until("the allocated port", () => /Allocated port (\d+) for remote forward/.exec(stderr)?.[1]);
      const body = await until("the remote forward", async () => (await fetch(`http://127.0.0.1:${allocated}/`)).text());
      expect(body).toBe("hello over http");
    } finally {
      child.kill("SIGKILL");
    }
  });
});

describe("agent forwarding", () => {
  it("lets the session use the client's ssh-agent", async () => {
    const sock = join(dir, "agent.sock");
    const agent = spawnChild("ssh-agent", ["-D", "-a", sock], { stdio: "ignore" });
    try {
      await until("ssh-agent", () => existsSync(sock) || undefined);
      const key = join(dir, "user_key");
      await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "forwarded-key", "-f", key]);
      const env = { ...process.env, SSH_AUTH_SOCK: sock };
      expect((await run("ssh-add", [key], { env })).code).toBe(0);
      const r = await run("ssh", sshArgs("-A", "127.0.0.1", 'echo "sock=$SSH_AUTH_SOCK"; ssh-add -l'), { env });
      expect(r.stderr).toBe("");
      expect(r.stdout).toMatch(/sock=\/.+/);
      expect(r.stdout).toContain("forwarded-key");
    } finally {
      agent.kill("SIGKILL");
    }
  });
});

describe("robustness", () => {
  it("leaves no process behind when the client is killed mid-session", async () => {
    const marker = "31415";
    const child = spawnChild("ssh", sshArgs("127.0.0.1", `sleep ${marker}; echo never`), { stdio: "ignore" });
    await until("the remote command", () => processesRunning(`sleep ${marker}`).length > 0 || undefined);
    expect(server.sessions().ssh).toBeGreaterThanOrEqual(1);
    child.kill("SIGKILL");
    await until("the remote command to be gone", () => processesRunning(`sleep ${marker}`).length === 0 || undefined);
    await until("the session count to drop", () => !server.sessions().ssh || undefined);
  });

  it("ends every connection and its processes on close()", async () => {
    const other = new AgentSshServer({ hostKey, directory: home });
    const srv = createServer((socket) => void other.handle(socket));
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    try {
      const marker = "27182";
      const child = spawnChild("ssh", [...SSH_OPTS, "-p", String((srv.address() as AddressInfo).port), "127.0.0.1", `sleep ${marker}; echo never`], { stdio: "ignore" });
      const clientExit = new Promise((r) => child.once("close", r));
      await until("the remote command", () => processesRunning(`sleep ${marker}`).length > 0 || undefined);
      expect(other.sessions()).toEqual({ ssh: 1 });
      await other.close();
      await clientExit;
      await until("the remote command to be gone", () => processesRunning(`sleep ${marker}`).length === 0 || undefined);
      expect(other.sessions()).toEqual({});
    } finally {
      srv.close();
    }
  });

  it("survives garbage and abrupt disconnects", async () => {
    const before = handled.length;
    const socket = connect(port, "127.0.0.1");
    await new Promise((r) => socket.once("connect", r));
    socket.end(Buffer.concat([Buffer.from("GET / HTTP/1.1\r\n\r\n"), randomBytes(4096)]));
    socket.on("error", () => {});
    socket.resume();
    await until("the connection", () => handled.length > before || undefined);
    await handled[before];
    const half = connect(port, "127.0.0.1");
    await new Promise((r) => half.once("connect", r));
    half.destroy();
    await until("the second connection", () => handled.length > before + 1 || undefined);
    await handled[before + 1];
    expect(await ssh("echo still here")).toMatchObject({ code: 0, stdout: "still here\n" });
  });
});
