// External provisioner daemons as real processes: PSK authentication, the whole workspace
// lifecycle, a daemon killed mid-job (the reaper fails the job), and SIGHUP versus SIGINT.
import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { Client } from "../../src/codersdk/index.js";
import { runCli, startProvisionerProcess, startServerProcess, tempConfigDir } from "../helpers/binary.js";
import { createFirstUser, startTestServer, type TestServer } from "../helpers/coderd.js";
import { pushTemplate, waitForBuild } from "../helpers/templates.js";
import { Client as SdkClient } from "../../src/codersdk/index.js";

const PSK = "a-long-random-pre-shared-key-for-tests";

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z ");
  } catch {
    return false;
  }
}

async function agentState(srv: TestServer, buildId: string): Promise<{ dir: string; pids: number[] }> {
  const build = await srv.db.store.getWorkspaceBuildById(buildId);
  const state = JSON.parse(build!.provisioner_state!.toString("utf8")) as { dir: string; agents: Array<{ pid: number }> };
  return { dir: state.dir, pids: state.agents.map((a) => a.pid) };
}

/** Resolves once the job of the build is running on a daemon. */
async function whenRunning(client: Client, buildId: string): Promise<void> {
  const it = client.followWorkspaceBuildLogs(buildId);
  for await (const line of it) if (line.output.startsWith("Acquired by")) return;
  throw new Error("the build ended before it ran");
}

describe("external provisioner daemons", () => {
  it("real server and real daemon with a PSK: create, stop, start, delete a workspace", async () => {
    const server = await startServerProcess(["--config-dir", tempConfigDir(), "--provisioner-daemons", "0"], { CODER_PROVISIONER_DAEMON_PSK: PSK });
    const cli = { CODER_CONFIG_DIR: tempConfigDir() };
    await runCli(["login", server.url, "--first-user-username", "admin", "--first-user-email", "a@example.com", "--first-user-password", "correct-horse-1"], cli);
    const client = new SdkClient(server.url, { sessionToken: readFileSync(`${cli.CODER_CONFIG_DIR}/session`, "utf8") });

    const wrongKey = await runCli(["provisioner", "start", "--url", server.url, "--psk", "not-the-key"], { CODER_CACHE_DIRECTORY: tempConfigDir() });
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stderr).toContain("Invalid provisioner daemon pre-shared key.");

    const cache = tempConfigDir();
    const daemon = await startProvisionerProcess(["--url", server.url, "--name", "external-1"], { CODER_PROVISIONER_DAEMON_PSK: PSK, CODER_CACHE_DIRECTORY: cache });
    const listed = JSON.parse((await runCli(["provisioner", "list", "-o", "json"], cli)).stdout) as Array<{ name: string; status: string; tags: Record<string, string> }>;
    expect(listed).toEqual([expect.objectContaining({ name: "external-1", status: "idle", tags: expect.objectContaining({ host: expect.any(String) }) })]);

    const { template } = await pushTemplate(client, "local");
    const ws = await client.createWorkspace("me", { name: "dev", template_id: template.id });
    const started = await waitForBuild(client, ws.latest_build.id);
    expect(started.status).toBe("running");
    expect(started.job.worker_id).toBeTruthy();
    const state = await (async () => {
      // The state is only visible in the database; read it through the API's build resources instead.
      const logs = await client.workspaceBuildLogs(started.id);
      const line = logs.find((l) => l.output.startsWith("Started agent"))!;
      return { pid: Number(/pid (\d+)/.exec(line.output)![1]), dir: /Workspace directory (\S+)/.exec(logs.map((l) => l.output).join("\n"))![1]! };
    })();
    expect(state.dir.startsWith(cache)).toBe(true);
    expect(isRunning(state.pid)).toBe(true);

    expect((await waitForBuild(client, (await client.createWorkspaceBuild(ws.id, { transition: "stop" })).id)).status).toBe("stopped");
    expect(isRunning(state.pid)).toBe(false);
    expect((await waitForBuild(client, (await client.createWorkspaceBuild(ws.id, { transition: "start" })).id)).status).toBe("running");
    expect((await waitForBuild(client, (await client.createWorkspaceBuild(ws.id, { transition: "delete" })).id)).status).toBe("deleted");
    expect(existsSync(state.dir)).toBe(false);

    expect(await daemon.stop("SIGTERM")).toBe(0);
    expect(await server.stop()).toBe(0);
  });

  it("a daemon killed mid-job: the reaper fails the job with the reason in its logs, and the next build works", async () => {
    const srv = await startTestServer({ provisionerDaemonPsk: PSK, provisionerJobHangTimeoutMs: 1500 });
    const { client } = await createFirstUser(srv);
    const env = { CODER_PROVISIONER_DAEMON_PSK: PSK, CODER_CACHE_DIRECTORY: tempConfigDir() };
    const first = await startProvisionerProcess(["--url", srv.url, "--name", "doomed"], env);
    const { template } = await pushTemplate(client, "local");
    const ws = await client.createWorkspace("me", { name: "dev", template_id: template.id });
    const started = await waitForBuild(client, ws.latest_build.id);
    const { pids } = await agentState(srv, started.id);
    // A frozen agent cannot act on SIGTERM: the stop build keeps running until we say so.
    process.kill(pids[0]!, "SIGSTOP");
    const stop = await client.createWorkspaceBuild(ws.id, { transition: "stop" });
    await whenRunning(client, stop.id);
    await first.stop("SIGKILL");

    const failed = await waitForBuild(client, stop.id);
    expect(failed.status).toBe("failed");
    expect(failed.job.error).toContain("no heartbeat");
    const logs = await client.workspaceBuildLogs(stop.id);
    expect(logs.at(-1)!.output).toMatch(/stopped sending heartbeats.*marked failed/);
    process.kill(pids[0]!, "SIGKILL");

    await startProvisionerProcess(["--url", srv.url, "--name", "survivor"], env);
    const next = await client.createWorkspaceBuild(ws.id, { transition: "stop" });
    expect((await waitForBuild(client, next.id)).status).toBe("stopped");
    const del = await client.createWorkspaceBuild(ws.id, { transition: "delete" });
    expect((await waitForBuild(client, del.id)).status).toBe("deleted");
  });

  it("SIGHUP finishes the current job before exiting; SIGINT cancels it (the build fails)", async () => {
    const srv = await startTestServer({ provisionerDaemonPsk: PSK });
    const { client } = await createFirstUser(srv);
    const env = { CODER_PROVISIONER_DAEMON_PSK: PSK, CODER_CACHE_DIRECTORY: tempConfigDir() };
    let daemon = await startProvisionerProcess(["--url", srv.url, "--name", "hup"], env);
    const { template } = await pushTemplate(client, "local");
    const ws = await client.createWorkspace("me", { name: "dev", template_id: template.id });
    let { pids } = await agentState(srv, (await waitForBuild(client, ws.latest_build.id)).id);

    // SIGHUP while a stop build runs: it completes, then the daemon exits.
    process.kill(pids[0]!, "SIGSTOP");
    const stop = await client.createWorkspaceBuild(ws.id, { transition: "stop" });
    await whenRunning(client, stop.id);
    daemon.proc.kill("SIGHUP");
    await daemon.waitFor("finishing the current job");
    process.kill(pids[0]!, "SIGCONT");
    expect(await daemon.exited).toBe(0);
    const finished = await waitForBuild(client, stop.id);
    expect(finished.status).toBe("stopped");
    expect(isRunning(pids[0]!)).toBe(false);

    // SIGINT while a stop build runs: the build is canceled and fails, then the daemon exits.
    daemon = await startProvisionerProcess(["--url", srv.url, "--name", "int"], env);
    const start = await client.createWorkspaceBuild(ws.id, { transition: "start" });
    pids = (await agentState(srv, (await waitForBuild(client, start.id)).id)).pids;
    process.kill(pids[0]!, "SIGSTOP");
    const stop2 = await client.createWorkspaceBuild(ws.id, { transition: "stop" });
    await whenRunning(client, stop2.id);
    daemon.proc.kill("SIGINT");
    expect(await daemon.exited).toBe(0);
    const canceled = await waitForBuild(client, stop2.id);
    expect(canceled.status).toBe("failed");
    expect(canceled.job.error).toBe("the provisioner daemon received SIGINT");
    expect(isRunning(pids[0]!)).toBe(false);

    daemon = await startProvisionerProcess(["--url", srv.url, "--name", "cleanup"], env);
    const del = await client.createWorkspaceBuild(ws.id, { transition: "delete" });
    expect((await waitForBuild(client, del.id)).status).toBe("deleted");
  });
});
