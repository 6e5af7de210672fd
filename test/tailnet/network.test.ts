// What the tunnel promises beyond "it works": a relay (or anything between) sees only ciphertext;
// nobody reaches an agent they may not; a dead agent is reported clearly and a restarted one is
// reachable again.
import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from "vitest";
import WebSocket from "ws";
import type { Client, Workspace, WorkspaceAgent } from "../../src/codersdk/index.js";
import { decodeKey, generateKeyPair, RelayClient, Session } from "../../src/tailnet/index.js";
import { agentProcess, agentWhen, restartAgentProcess } from "../helpers/agents.js";
import { CODER_BIN, runCli, startCli } from "../helpers/binary.js";
import { createFirstUser, createUserWithRoles, startTestServer, type TestServer } from "../helpers/coderd.js";
import { captureProxy } from "../helpers/net.js";
import { deleteWorkspace, loggedInConfigDir, removeDir, runningWorkspace } from "../helpers/workspaces.js";

let srv: TestServer;
let proxy: Awaited<ReturnType<typeof captureProxy>>;
let owner: Client;
let workspace: Workspace;
let agent: WorkspaceAgent;
let cfg: string;

beforeAll(async () => {
  srv = await startTestServer({ provisionerDaemons: 1, manualClose: true });
  // Everyone (agent and clients) reaches the server, and so its relay, through a proxy that
  // records every byte.
  proxy = await captureProxy(Number(new URL(srv.url).port));
  const proxied = `http://127.0.0.1:${proxy.port}`;
  srv.coderd.setAccessUrl(proxied);
  ({ client: owner } = await createFirstUser(srv));
  owner = new (owner.constructor as typeof Client)(proxied, { sessionToken: owner.sessionToken });
  ({ workspace, agent } = await runningWorkspace(owner, "net"));
  cfg = loggedInConfigDir(owner);
});

afterAll(async () => {
  if (workspace) await deleteWorkspace(owner, workspace);

  await srv?.close();
  await proxy?.close();
  removeDir(cfg);
});

const cli = (args: string[], env: Record<string, string> = {}) => runCli(["--config-dir", cfg, ...args], env, 60_000);

describe("the tunnel", () => {
  it("carries only ciphertext through the relay", async () => {
    const before = proxy.captured().length;
    // The command and its output both cross the relay; neither may appear in the capture.
    const r = await cli(["ssh", "net", "--", "echo", "PLAIN$((40+2))TEXT"], { CODER_BLOCK_DIRECT: "1" });
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("PLAIN42TEXT\n");
    const seen = proxy.captured().subarray(before);
    expect(seen.includes("GET /derp")).toBe(true);
    expect(seen.length).toBeGreaterThan(4096);
    expect(seen.includes("PLAIN42TEXT")).toBe(false);
    expect(seen.includes("PLAIN$((40+2))TEXT")).toBe(false);
  });

  it("lets no one else coordinate with the agent", async () => {
    const { client: other } = await createUserWithRoles(srv, owner, "mallory");
    const status = await new Promise<number>((resolve) => {
      const u = new URL(`/api/v2/workspaceagents/${agent.id}/coordinate`, srv.url);
      u.protocol = "ws:";
      const ws = new WebSocket(u, { headers: { "Coder-Session-Token": other.sessionToken! } });
      ws.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
      ws.on("open", () => resolve(101));
      ws.on("error", () => {});
    });
    expect(status).toBe(404);
  });

  it("answers a malformed coordinate message with an error naming the field, and closes", async () => {
    const u = new URL(`/api/v2/workspaceagents/${agent.id}/coordinate`, srv.url);
    u.protocol = "ws:";
    for (const [message, expected] of [
      ["not json", /invalid message/],
      [JSON.stringify({ type: "node", node: { key: "short", preferred_relay: 999, endpoints: [] } }), /node\.key: must be a base64url ed25519 public key/],
      [JSON.stringify({ type: "node", node: { key: "A".repeat(43), preferred_relay: 999, endpoints: ["http://evil"] } }), /node\.endpoints\.0/],
    ] as const) {
      const ws = new WebSocket(u, { headers: { "Coder-Session-Token": owner.sessionToken! } });
      const errors: string[] = [];
      ws.on("message", (d) => {
        const msg = JSON.parse(d.toString()) as { type: string; message?: string };
        if (msg.type === "error") errors.push(msg.message!);
      });
      await new Promise((res) => ws.on("open", res));
      ws.send(message);
      const code = await new Promise<number>((res) => ws.on("close", (c) => res(c)));
      expect(code).toBe(1007);
      expect(errors.join("\n")).toMatch(expected);
    }
    // The agent is still reachable by a well-behaved client.
    expect((await cli(["ssh", "net", "--", "echo", "still"])).stdout).toBe("still\n");
  });

  it("shows the agent's open sessions and traffic in its stats", async () => {
    const child = spawn(process.execPath, [CODER_BIN, "--config-dir", cfg, "ssh", "net", "--", "echo started; sleep 60"], { stdio: ["ignore", "pipe", "pipe"] });
    onTestFinished(() => void child.kill("SIGKILL"));
    const during = await agentWhen(owner, workspace.id, (a) => (a.stats?.sessions.ssh ?? 0) >= 1);
    expect(during.stats!.connections).toBeGreaterThanOrEqual(1);
    expect(during.stats!.rx_bytes).toBeGreaterThan(0);
    expect(during.stats!.tx_bytes).toBeGreaterThan(0);
    child.kill("SIGKILL");
    const after = await agentWhen(owner, workspace.id, (a) => a.stats?.sessions.ssh === 0);
    expect(after.stats!.tx_bytes).toBeGreaterThanOrEqual(during.stats!.tx_bytes);
  });

  it("refuses a session from a key the coordinator did not announce", async () => {
    // A legitimate client learns the agent's key and relay...
    const peer = await new Promise<{ key: string }>((resolve) => {
      const u = new URL(`/api/v2/workspaceagents/${agent.id}/coordinate`, srv.url);
      u.protocol = "ws:";
      const ws = new WebSocket(u, { headers: { "Coder-Session-Token": owner.sessionToken! } });
      ws.on("message", (d) => {
        const msg = JSON.parse(d.toString()) as { type: string; peers?: Array<{ kind: string; node: { key: string } }> };
        const a = msg.peers?.find((p) => p.kind === "agent");
        if (a) {
          ws.close();
          resolve(a.node);
        }
      });
    });
    // ...but a stranger with its own key, dialing through the relay, is turned away.
    const keyPair = generateKeyPair();
    const relay = new RelayClient({ url: srv.url, keyPair });
    await relay.connect();
    try {
      const session = Session.initiate(relay.dial(decodeKey(peer.key)), { keyPair, remotePublicKey: decodeKey(peer.key) });
      await expect(session.ready).rejects.toThrow(/not allowed/);
    } finally {
      relay.close();
    }
  });

  it("keeps an SSH session going when every connection through the proxy is cut: relay, coordinator and agent reconnect, the stream resumes", async () => {
    const ssh = startCli(["--config-dir", cfg, "ssh", "net", "--", "cat"], { CODER_BLOCK_DIRECT: "1" }, 60_000, { stdin: true });
    const echoed = (text: string) => vi.waitFor(() => expect(ssh.output.stdout).toContain(text), { timeout: 30_000, interval: 50 });
    ssh.input!.write("before the cut\n");
    await echoed("before the cut\n");
    // The client's relay and coordinator connections, and the agent's, all go at once.
    expect(proxy.cut()).toBeGreaterThanOrEqual(4);
    ssh.input!.write("after the cut\n");
    await echoed("after the cut\n");
    ssh.input!.end("the end\n");
    const r = await ssh.done;
    expect(r.stdout).toBe("before the cut\nafter the cut\nthe end\n");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
  });

  it("reports a killed agent clearly, and works again once the agent is back", async () => {
    const proc = agentProcess(agent.id);
    const child = spawn(process.execPath, [CODER_BIN, "--config-dir", cfg, "ssh", "net", "--", "echo started; sleep 60"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const exited = new Promise<number | null>((res) => child.on("close", res));
    await new Promise<void>((res) => child.stdout.on("data", () => out.includes("started") && res()));
    process.kill(proc.pid, "SIGKILL");
    expect(await exited).toBe(1);
    expect(err).toMatch(/lost the connection to the agent/);

    // While it is away, `coder ssh` waits for it and says so; with --no-wait it dials at once
    // (the dial itself waits for the agent to reach the coordinator) and says nothing.
    await agentWhen(owner, workspace.id, (a) => a.status === "disconnected");
    const waiting = startCli(["--config-dir", cfg, "ssh", "net", "--", "echo", "back"], {}, 60_000);
    const noWait = cli(["ssh", "--no-wait", "net", "--", "echo", "dialed"]);
    await vi.waitFor(() => expect(waiting.output.stderr).toMatch(/Waiting for the agent "\w+" to connect/), { timeout: 20_000, interval: 100 });
    const pid = restartAgentProcess(proc);
    // The driver knows only the pid it started: this one is ours to stop.
    onTestFinished(() => void process.kill(-pid, "SIGKILL"));
    const again = await waiting.done;
    expect(again.stdout).toBe("back\n");
    expect(again.code).toBe(0);
    const dialed = await noWait;
    expect(dialed.stdout).toBe("dialed\n");
    expect(dialed.stderr).toBe("");
    expect(dialed.code).toBe(0);
  });
});
