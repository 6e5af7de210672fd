// No secret is ever logged. A full run of the real binaries with every log at debug level: two
// `coder server` replicas on one Postgres (human logs on stderr and JSON logs to a file, a PSK,
// relays meshed with the deployment's mesh key), an external `coder provisioner start`, logins
// (first user, a wrong password, a second user, a changed password), API tokens (created, forged,
// expired), a daemon with a wrong PSK, an agent with a made-up token, a template push, a
// workspace with a (debug-level) agent, `coder ssh` and `coder port-forward` across the mesh, and
// the workspace's deletion. Then every byte that any process wrote is searched for every secret
// the run used.
import { spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import pg from "pg";
import { describe, expect, it, onTestFinished } from "vitest";
import { Client } from "../../src/codersdk/index.js";
import { agentProcess, agentWhen } from "../helpers/agents.js";
import { CODER_BIN, runCli, startProvisionerProcess, startServerProcess, tempConfigDir, type CliResult } from "../helpers/binary.js";
import { createTestDatabase } from "../helpers/database.js";
import { closedPort } from "../helpers/net.js";
import { writeTemplateDir } from "../helpers/templates.js";

const hex = (n: number) => randomBytes(n).toString("hex");

/** Everything a long-running CLI command writes, until it is stopped. */
function startCli(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, [CODER_BIN, ...args], { env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? "/tmp", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const exited = new Promise<number | null>((res) => child.on("close", res));
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
  });
  return {
    output: () => out,
    waitFor: (text: string) =>
      new Promise<void>((res, rej) => {
        const check = () => out.includes(text) && res();
        child.stdout.on("data", check);
        child.stderr.on("data", check);
        check();
        void exited.then(() => (out.includes(text) ? res() : rej(new Error(`exited without writing "${text}":\n${out}`))));
      }),
    stop: async () => {
      child.kill("SIGINT");
      return exited;
    },
  };
}

describe("secrets in logs", () => {
  it("a full debug-level run never logs a password, token, PSK or mesh key", { timeout: 300_000 }, async () => {
    const runDir = tempConfigDir();
    const databaseUrl = await createTestDatabase();
    const psk = `psk-${hex(16)}`;
    const firstPassword = `First-${hex(8)}-Pw1!`;
    const wrongPassword = `Wrong-${hex(8)}-Pw2!`;
    const newPassword = `New-${hex(8)}-Pw3!`;
    const devPassword = `Dev-${hex(8)}-Pw4!`;
    const wrongPsk = `psk-${hex(16)}`;
    const forgedAgentToken = randomBytes(24).toString("base64url");
    const forgedToken = `${randomBytes(5).toString("hex")}-${randomBytes(11).toString("hex")}`;

    // Two replicas on one database, each its own relay, meshed (the mesh dials with the key).
    const ports = [await closedPort(), await closedPort()];
    const urls = ports.map((p) => `http://127.0.0.1:${p}`);
    const jsonLogs = ports.map((_, i) => join(runDir, `server-${i}.json.log`));
    const servers = [];
    for (const i of [0, 1]) {
      servers.push(
        await startServerProcess(["--config-dir", tempConfigDir(), "--http-address", `127.0.0.1:${ports[i]}`], {
          CODER_PG_CONNECTION_URL: databaseUrl,
          // The access URL names a load balancer; here each replica is its own, reached by another name.
          CODER_ACCESS_URL: `http://localhost:${ports[i]}`,
          CODER_DERP_SERVER_RELAY_URL: urls[i]!,
          CODER_REPLICA_UPDATE_INTERVAL: "1s",
          CODER_REPLICA_LATENCY_THRESHOLD: "1s",
          CODER_BLOCK_DIRECT: "true",
          CODER_VERBOSE: "true",
          CODER_LOGGING_HUMAN: "/dev/stderr",
          CODER_LOGGING_JSON: jsonLogs[i]!,
          CODER_PROVISIONER_DAEMON_PSK: psk,
          CODER_PROVISIONER_DAEMONS: "0",
          CODER_CACHE_DIRECTORY: mkdtempSync(join(runDir, "server-cache-")),
        }),
      );
    }
    await Promise.all(servers.map((s) => s.waitFor("relay mesh: link to a replica is up")));

    const cache = mkdtempSync(join(runDir, "daemon-cache-"));
    const daemon = await startProvisionerProcess(["--url", urls[0]!, "--name", "external-1", "--verbose"], { CODER_PROVISIONER_DAEMON_PSK: psk, CODER_CACHE_DIRECTORY: cache });

    // Every CLI output is checked, except where the CLI prints a token it was asked to create.
    const cliOutputs: Array<{ what: string; text: string }> = [];
    const cfg = tempConfigDir();
    const cli = async (args: string[], opts: { env?: Record<string, string>; printsToken?: boolean; configDir?: string; timeoutMs?: number } = {}): Promise<CliResult> => {
      const r = await runCli(["--config-dir", opts.configDir ?? cfg, ...args], { CODER_VERBOSE: "true", ...opts.env }, opts.timeoutMs ?? 120_000);
      // Named without their arguments, which hold secrets: a failure message must not print them.
      const what = `CLI call #${cliOutputs.length / 2 + 1}: coder ${args.filter((a) => /^[a-z-]+$/.test(a)).join(" ")}`;
      cliOutputs.push({ what: `${what} (stderr)`, text: r.stderr });
      cliOutputs.push({ what: `${what} (stdout)`, text: opts.printsToken ? "" : r.stdout });
      return r;
    };

    const login = await cli(["login", urls[0]!, "--first-user-username", "admin", "--first-user-email", "admin@example.com", "--first-user-password", firstPassword]);
    expect(login.code, login.stderr).toBe(0);
    const session = readFileSync(join(cfg, "session"), "utf8").trim();
    const client = new Client(urls[0]!, { sessionToken: session });

    const failed = await cli(["login", urls[0]!, "--email", "admin@example.com", "--password", wrongPassword], { configDir: tempConfigDir() });
    expect(failed.code).toBe(1);
    const created2 = await cli(["users", "create", "-e", "dev@example.com", "-u", "dev", "-p", devPassword]);
    expect(created2.code, created2.stderr).toBe(0);
    const devLogin = await cli(["login", urls[1]!, "--email", "dev@example.com", "--password", devPassword], { configDir: tempConfigDir() });
    expect(devLogin.code, devLogin.stderr).toBe(0);

    // A daemon with a wrong key, and an agent with a made-up token, are turned away.
    const wrongKey = await cli(["provisioner", "start", "--url", urls[1]!, "--verbose"], { env: { CODER_PROVISIONER_DAEMON_PSK: wrongPsk, CODER_CACHE_DIRECTORY: cache } });
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stderr).toContain("Invalid provisioner daemon pre-shared key.");
    await cli(["agent"], { env: { CODER_AGENT_URL: urls[1]!, CODER_AGENT_TOKEN: forgedAgentToken, CODER_AGENT_ID: randomUUID() }, timeoutMs: 4_000 });

    const created = await cli(["tokens", "create", "--name", "ci"], { printsToken: true });
    expect(created.code, created.stderr).toBe(0);
    const apiToken = created.stdout.trim();
    expect((await cli(["whoami", "--token", apiToken, "--url", urls[1]!])).code).toBe(0);

    const short = await cli(["tokens", "create", "--name", "short", "--lifetime", "2s"], { printsToken: true });
    const expiredToken = short.stdout.trim();
    await new Promise((r) => setTimeout(r, 2500));
    const expired = await cli(["whoami", "--token", expiredToken]);
    expect(expired.code).toBe(1);
    const forged = await cli(["whoami", "--token", forgedToken]);
    expect(forged.code).toBe(1);
    for (const headers of [{ "Coder-Session-Token": forgedToken } as Record<string, string>, { Cookie: `coder_session_token=${expiredToken}` }, { Authorization: `Bearer ${forgedToken}` }]) {
      expect((await fetch(`${urls[1]}/api/v2/users/me`, { headers })).status).toBe(401);
    }

    const templateDir = writeTemplateDir();
    const push = await cli(["templates", "push", "tpl", "-d", templateDir, "-y"]);
    expect(push.code, push.stderr).toBe(0);
    const create = await cli(["create", "dev", "-t", "tpl", "-y"]);
    expect(create.code, create.stderr).toBe(0);
    const ws = await client.workspaceByOwnerAndName("me", "dev");
    const agent = await agentWhen(client, ws.id, (a) => a.status === "connected" && a.lifecycle_state === "ready");
    const proc = agentProcess(agent.id);
    const agentToken = proc.env.CODER_AGENT_TOKEN!;
    const agentLog = join(proc.cwd, ".coder", "agent-main.log");
    expect(existsSync(agentLog)).toBe(true);

    // The driver starts agents without CODER_VERBOSE: run it again as it was, at debug level.
    process.kill(proc.pid, "SIGKILL");
    await agentWhen(client, ws.id, (a) => a.status !== "connected");
    const verboseAgentLog = join(runDir, "agent-verbose.log");
    const fd = openSync(verboseAgentLog, "a", 0o600);
    const verboseAgent = spawn(proc.argv[0]!, proc.argv.slice(1), { cwd: proc.cwd, env: { ...proc.env, CODER_VERBOSE: "true" }, detached: true, stdio: ["ignore", fd, fd] });
    closeSync(fd);
    const verboseAgentExited = new Promise((res) => verboseAgent.on("exit", res));
    onTestFinished(() => {
      if (verboseAgent.exitCode === null) process.kill(-verboseAgent.pid!, "SIGKILL");
    });
    await agentWhen(client, ws.id, (a) => a.status === "connected" && a.lifecycle_state === "ready");

    // Through the other replica: the tunnel crosses the relay mesh.
    const ssh = await cli(["--url", urls[1]!, "ssh", "dev", "--", "echo", "hello-$((6*7))"], { env: { CODER_BLOCK_DIRECT: "1" } });
    expect(ssh.stdout, ssh.stderr).toBe("hello-42\n");

    const web = createServer((_req, res) => res.end("through-the-tunnel"));
    await new Promise<void>((res) => web.listen(0, "127.0.0.1", res));
    onTestFinished(() => new Promise<void>((res) => web.close(() => res())));
    const localPort = await closedPort();
    const forward = startCli(["--config-dir", cfg, "--url", urls[1]!, "port-forward", "dev", "--tcp", `127.0.0.1:${localPort}:${(web.address() as { port: number }).port}`], {
      CODER_BLOCK_DIRECT: "1",
      CODER_VERBOSE: "true",
    });
    await forward.waitFor("Press Ctrl-C to stop.");
    expect(await (await fetch(`http://127.0.0.1:${localPort}/`)).text()).toBe("through-the-tunnel");
    await forward.stop();
    cliOutputs.push({ what: "coder port-forward", text: forward.output() });

    // Password change (a wrong old password first), then a login with the new one.
    const wrongChange = await fetch(`${urls[0]}/api/v2/users/me/password`, {
      method: "PUT",
      headers: { "Coder-Session-Token": session, "Content-Type": "application/json" },
      body: JSON.stringify({ old_password: wrongPassword, password: newPassword }),
    });
    expect(wrongChange.status).toBeGreaterThanOrEqual(400);
    await client.updateUserPassword("me", { old_password: firstPassword, password: newPassword });
    const cfg2 = tempConfigDir();
    const relogin = await cli(["login", urls[1]!, "--email", "admin@example.com", "--password", newPassword], { configDir: cfg2 });
    expect(relogin.code, relogin.stderr).toBe(0);
    const session2 = readFileSync(join(cfg2, "session"), "utf8").trim();
    expect(session2).not.toBe(session);

    // The agent's shutdown at debug level, then the workspace's deletion.
    process.kill(verboseAgent.pid!, "SIGTERM");
    await verboseAgentExited;
    const agentLogText = readFileSync(agentLog, "utf8");
    const del = await cli(["delete", "dev", "-y"], { configDir: cfg2 });
    expect(del.code, del.stderr).toBe(0);

    const db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    const meshKey = (await db.query<{ value: string }>("SELECT value FROM site_configs WHERE key = 'derp_mesh_key'")).rows[0]!.value;
    await db.end();

    expect(await daemon.stop("SIGTERM")).toBe(0);
    for (const s of servers) expect(await s.stop()).toBe(0);

    const logs: Array<{ what: string; text: string }> = [
      { what: "server 1 stdout/stderr", text: servers[0]!.output() },
      { what: "server 2 stdout/stderr", text: servers[1]!.output() },
      { what: "server 1 JSON log", text: readFileSync(jsonLogs[0]!, "utf8") },
      { what: "server 2 JSON log", text: readFileSync(jsonLogs[1]!, "utf8") },
      { what: "provisioner daemon", text: daemon.output() },
      { what: "agent log (as the driver started it)", text: agentLogText },
      { what: "agent log (debug level)", text: readFileSync(verboseAgentLog, "utf8") },
      ...cliOutputs,
    ];

    // The test can fail: the secrets are real, and the logs are substantial and at debug level.
    const secrets: Record<string, string> = {
      "first password": firstPassword,
      "wrong password": wrongPassword,
      "new password": newPassword,
      "first session token": session,
      "second session token": session2,
      "API token": apiToken,
      "expired API token": expiredToken,
      "forged token": forgedToken,
      "second user's password": devPassword,
      "wrong PSK": wrongPsk,
      "forged agent token": forgedAgentToken,
      "agent token": agentToken,
      PSK: psk,
      "mesh key": meshKey,
    };
    for (const token of [session, session2, apiToken, expiredToken, forgedToken]) {
      expect(token).toMatch(/^[A-Za-z0-9]+-[A-Za-z0-9]+$/);
      secrets[`secret part of ${token.split("-")[0]}`] = token.split("-")[1]!;
    }
    for (const [name, value] of Object.entries(secrets)) expect(value.length, name).toBeGreaterThanOrEqual(16);
    expect(meshKey).toMatch(/^[0-9a-f]{64}$/);
    expect(agentToken.length).toBeGreaterThanOrEqual(24);
    for (const name of ["server 1 stdout/stderr", "server 2 stdout/stderr", "server 1 JSON log", "server 2 JSON log"]) {
      expect(logs.find((l) => l.what === name)!.text.length, name).toBeGreaterThan(5_000);
    }
    expect(servers[0]!.output()).toMatch(/\bDEBUG\b/);
    expect(servers[1]!.output()).toMatch(/\bDEBUG\b/);
    // The daemon runs with --verbose (it has no debug-level messages of its own yet).
    expect(daemon.output()).toMatch(/job succeeded[\s\S]*job succeeded[\s\S]*job succeeded/);
    expect(readFileSync(verboseAgentLog, "utf8")).toMatch(/DEBUG \(agent\): session started/);
    expect(readFileSync(verboseAgentLog, "utf8")).toMatch(/DEBUG \(agent\): ssh: connection/);
    expect(servers.map((s) => s.output()).join("")).toContain("relay mesh: link to a replica is up");
    expect(servers.map((s) => s.output()).join("")).toContain("relay mesh: accepted a link from a replica");

    const leaks: string[] = [];
    for (const log of logs) {
      for (const [name, value] of Object.entries(secrets)) {
        const at = log.text.indexOf(value);
        if (at >= 0) leaks.push(`${name} in ${log.what}: …${log.text.slice(Math.max(0, at - 200), at + value.length + 50)}…`);
      }
    }
    expect(leaks).toEqual([]);

    // The human logs: every request line names its request id.
    for (const s of servers) {
      const requestLines = s.output().split("\n").filter((l) => l.includes('"route":'));
      expect(requestLines.length).toBeGreaterThan(10);
      for (const l of requestLines) expect(l).toMatch(/"request_id":"[0-9a-f-]{36}"/);
    }

    // The JSON logs: one object per line with a level and a message; every request line has its id.
    for (const file of jsonLogs) {
      const lines = readFileSync(file, "utf8").trimEnd().split("\n");
      const entries = lines.map((l, i) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          throw new Error(`${file}:${i + 1} is not JSON: ${l}`);
        }
      });
      for (const e of entries) {
        expect(typeof e.level, JSON.stringify(e)).toBe("number");
        expect(typeof e.msg, JSON.stringify(e)).toBe("string");
      }
      expect(entries.some((e) => e.level === 20)).toBe(true);
      const requests = entries.filter((e) => "route" in e);
      expect(requests.length).toBeGreaterThan(10);
      for (const r of requests) expect(r.request_id, JSON.stringify(r)).toMatch(/^[0-9a-f-]{36}$/);
    }
  });
});
