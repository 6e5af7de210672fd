// The real agent process (started by the local driver) against a real server: status, lifecycle,
// startup logs in order, reconnection without lost or repeated lines, the shutdown script, and
// what an agent token may (not) do.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import WebSocket from "ws";
import { describe, expect, it } from "vitest";
import type { Client } from "../../src/codersdk/index.js";
import { EXAMPLE_TEMPLATE } from "../../src/provisioners/index.js";
import { runCli } from "../helpers/binary.js";
import { agentWhen } from "../helpers/agents.js";
import { createFirstUser, startTestServer, type TestServer } from "../helpers/coderd.js";
import { pushTemplate, waitForBuild } from "../helpers/templates.js";

function template(startup: string, shutdown: string): Record<string, string> {
  return {
    ...EXAMPLE_TEMPLATE,
    "template.yaml": `agents:
  - name: main
    startup_script: |
${startup.replace(/^/gm, "      ")}
    shutdown_script: |
${shutdown.replace(/^/gm, "      ")}
`,
  };
}



async function agentLogs(srv: TestServer, client: Client, agentId: string): Promise<string[]> {
  const res = await fetch(`${srv.url}/api/v2/workspaceagents/${agentId}/logs`, { headers: { "Coder-Session-Token": client.sessionToken! } });
  return ((await res.json()) as Array<{ output: string }>).map((l) => l.output);
}

/** The token the driver gave the agent (read from the agent process's environment). */
function agentToken(agentId: string): string {
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const env = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
      if (env.includes(`CODER_AGENT_ID=${agentId}`)) return env.find((e) => e.startsWith("CODER_AGENT_TOKEN="))!.slice("CODER_AGENT_TOKEN=".length);
    } catch {
      // gone or not ours
    }
  }
  throw new Error(`no process for agent ${agentId}`);
}

describe("workspace agent", () => {
  it("connects, runs its startup script (logs in order), and runs the shutdown script on stop", async () => {
    const srv = await startTestServer({ provisionerDaemons: 1 });
    const { client } = await createFirstUser(srv);
    const { template: t } = await pushTemplate(client, "agent", template('for i in $(seq 1 20); do echo "line $i"; done', 'echo "bye from $PWD"; touch shutdown-ran'));
    const ws = await client.createWorkspace("me", { name: "dev", template_id: t.id });
    const built = await waitForBuild(client, ws.latest_build.id);
    expect(["connecting", "connected"]).toContain(built.resources[0]!.agents[0]!.status);
    const ready = await agentWhen(client, ws.id, (a) => a.lifecycle_state === "ready");
    expect(ready.status).toBe("connected");
    expect(ready.version).toMatch(/^v/);
    expect(ready.first_connected_at).not.toBeNull();
    expect(ready.ssh_host_public_key).toMatch(/^ssh-ed25519 [A-Za-z0-9+/=]+$/);
    expect(await agentLogs(srv, client, ready.id)).toEqual(Array.from({ length: 20 }, (_, i) => `line ${i + 1}`));
    const cli = { CODER_URL: srv.url, CODER_SESSION_TOKEN: client.sessionToken! };
    const logs = await runCli(["logs", "dev"], cli);
    expect(logs.code).toBe(0);
    expect(logs.stdout).toBe(Array.from({ length: 20 }, (_, i) => `line ${i + 1}\n`).join(""));
    expect((await runCli(["show", "dev"], cli)).stdout).toMatch(/agent main {2}connected, ready/);

    const stop = await client.createWorkspaceBuild(ws.id, { transition: "stop" });
    expect((await waitForBuild(client, stop.id)).status).toBe("stopped");
    const dir = built.resources[0]!.agents[0]!.directory;
    expect(existsSync(join(dir, "shutdown-ran"))).toBe(true);
    const after = await client.workspaceAgent(ready.id);
    expect(after.lifecycle_state).toBe("off");
    expect(await agentLogs(srv, client, ready.id)).toContain(`bye from ${dir}`);

    // Started again: a new agent with the same host key, so a pinned key keeps working.
    await waitForBuild(client, (await client.createWorkspaceBuild(ws.id, { transition: "start" })).id);
    const again = await agentWhen(client, ws.id, (a) => a.lifecycle_state === "ready");
    expect(again.id).not.toBe(ready.id);
    expect(again.ssh_host_public_key).toBe(ready.ssh_host_public_key);
    await waitForBuild(client, (await client.createWorkspaceBuild(ws.id, { transition: "delete" })).id);
  });

  it("reconnects after the server restarts, without losing or repeating a log line", async () => {
    const first = await startTestServer({ provisionerDaemons: 1, manualClose: true });
    const { client } = await createFirstUser(first);
    const port = Number(new URL(first.url).port);
    const { template: t } = await pushTemplate(client, "agent", template('for i in $(seq 1 40); do echo "line $i"; sleep 0.05; done', "true"));
    const ws = await client.createWorkspace("me", { name: "dev", template_id: t.id });
    await waitForBuild(client, ws.latest_build.id);
    const starting = await agentWhen(client, ws.id, (a) => a.lifecycle_state === "starting");
    await first.close();
    // The script keeps writing while no server is there.
    const second = await startTestServer({ databaseUrl: first.databaseUrl, port, provisionerDaemons: 1 });
    const ready = await agentWhen(client, ws.id, (a) => a.lifecycle_state === "ready" && a.status === "connected");
    expect(ready.id).toBe(starting.id);
    expect(await agentLogs(second, client, ready.id)).toEqual(Array.from({ length: 40 }, (_, i) => `line ${i + 1}`));
    // The second server's daemon has another cache dir: it still manages this host's workspace.
    const del = await client.createWorkspaceBuild(ws.id, { transition: "delete" });
    expect((await waitForBuild(client, del.id)).status).toBe("deleted");
  });

  it("an agent token reaches only its own agent API, and bad frames are refused", async () => {
    const srv = await startTestServer({ provisionerDaemons: 1 });
    const { client } = await createFirstUser(srv);
    const { template: t } = await pushTemplate(client, "agent", template("true", "true"));
    const a = await client.createWorkspace("me", { name: "a", template_id: t.id });
    const b = await client.createWorkspace("me", { name: "b", template_id: t.id });
    const agentA = (await waitForBuild(client, a.latest_build.id)).resources[0]!.agents[0]!;
    const agentB = (await waitForBuild(client, b.latest_build.id)).resources[0]!.agents[0]!;
    const token = agentToken(agentA.id);
    const get = (path: string) => fetch(srv.url + path, { headers: { "Coder-Session-Token": token } });

    const manifest = (await (await get("/api/v2/workspaceagents/me/manifest")).json()) as { workspace_id: string; agent_id: string };
    expect(manifest).toMatchObject({ workspace_id: a.id, agent_id: agentA.id });
    // Not a user's token: user routes, including B's agent and workspace, refuse it.
    for (const path of [`/api/v2/workspaceagents/${agentB.id}`, `/api/v2/workspaces/${b.id}`, "/api/v2/users/me", `/api/v2/workspaceagents/${agentB.id}/logs`]) {
      expect((await get(path)).status, path).toBe(401);
    }
    expect((await fetch(`${srv.url}/api/v2/workspaceagents/me/manifest`, { headers: { "Coder-Session-Token": "forged-token" } })).status).toBe(401);

    // The RPC: an oversized batch is refused with an error, nothing stored; a malformed frame closes the socket.
    const rpc = new WebSocket(`${srv.url.replace("http", "ws")}/api/v2/workspaceagents/me/rpc`, { headers: { "Coder-Session-Token": token } });
    const replies: Array<{ id: number; error?: { message: string } }> = [];
    rpc.on("message", (d) => replies.push(JSON.parse(d.toString())));
    await new Promise((r) => rpc.once("open", r));
    const tooMany = Array.from({ length: 1001 }, (_, i) => ({ seq: i + 1, created_at: new Date().toISOString(), source: "x", level: "info", output: "x" }));
    rpc.send(JSON.stringify({ id: 1, method: "logs", params: { logs: tooMany } }));
    rpc.send(JSON.stringify({ id: 2, method: "logs", params: { logs: [{ seq: 1, created_at: "yesterday", source: "x", level: "info", output: "x" }] } }));
    rpc.send(JSON.stringify({ id: 3, method: "lifecycle", params: { state: "exploded", changed_at: new Date().toISOString() } }));
    rpc.send(JSON.stringify({ id: 4, method: "logs", params: { logs: [{ seq: 1, created_at: new Date().toISOString(), source: "x", level: "info", output: "y".repeat(70_000) }] } }));
    rpc.send(JSON.stringify({ id: 5, method: "ping", params: {} }));
    while (replies.length < 5) await new Promise((r) => rpc.once("message", r));
    expect(replies.sort((x, y) => x.id - y.id).map((r) => Boolean(r.error))).toEqual([true, true, true, true, false]);
    rpc.send("{not json");
    const code = await new Promise<number>((r) => rpc.once("close", (c) => r(c)));
    expect(code).toBe(1007);
    expect(await agentLogs(srv, client, agentA.id)).toEqual([]);
    // The server is unharmed.
    expect((await fetch(`${srv.url}/healthz`)).status).toBe(200);
    for (const w of [a, b]) await waitForBuild(client, (await client.createWorkspaceBuild(w.id, { transition: "delete" })).id);
  });
});
