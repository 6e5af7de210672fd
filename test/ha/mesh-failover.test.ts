// Three real replicas on one Postgres behind real nginx: everything through the load balancer,
// tunnels across replicas through the relay mesh, build logs followed on one replica while
// another runs the job, and a replica killed with SIGKILL under a connected agent (and an open
// SSH session, which carries on).
import pg from "pg";
import { describe, expect, it, vi } from "vitest";
import { Client, type Replica } from "../../src/codersdk/index.js";
import { agentWhen } from "../helpers/agents.js";
import { runCli, startCli } from "../helpers/binary.js";
import { startCluster, type ClusterReplica } from "../helpers/cluster.js";
import { DEFAULT_PASSWORD } from "../helpers/coderd.js";
import { pushTemplate, waitForBuild } from "../helpers/templates.js";
import { deleteWorkspace, loggedInConfigDir, removeDir } from "../helpers/workspaces.js";

const withClient = (base: Client, url: string) => Object.assign(new Client(url), { sessionToken: base.sessionToken });

/** Waits until the replica list (as `client` sees it) satisfies ok; polls, as an operator would. */
async function replicasWhen(client: Client, ok: (rs: Replica[]) => boolean, timeoutMs: number): Promise<Replica[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rs = await client.replicas();
    if (ok(rs)) return rs;
    if (Date.now() > deadline) throw new Error(`replicas never got there: ${JSON.stringify(rs.map((r) => [r.hostname, r.relay_address, r.error]))}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The promise, or a failure naming what did not happen within ms (the stated bound). */
function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`${what}: not within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

/** One unlabeled sample from a replica's /metrics. */
async function metric(r: ClusterReplica, name: string): Promise<number> {
  const text = await (await fetch(r.metricsUrl!)).text();
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  if (!m) throw new Error(`${name} is not in ${r.metricsUrl}`);
  return Number(m[1]);
}

async function counts(databaseUrl: string, workspaceId: string): Promise<Record<string, number>> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    const q = async (text: string) => Number((await db.query<{ n: string }>(text, [workspaceId])).rows[0]!.n);
    return {
      workspaces: await q("SELECT count(*) AS n FROM workspaces WHERE id = $1"),
      builds: await q("SELECT count(*) AS n FROM workspace_builds WHERE workspace_id = $1"),
      jobLogs: await q("SELECT count(*) AS n FROM provisioner_job_logs l JOIN workspace_builds b ON b.job_id = l.job_id WHERE b.workspace_id = $1"),
      agentLogs: await q(
        "SELECT count(*) AS n FROM workspace_agent_logs l JOIN workspace_agents a ON a.id = l.agent_id JOIN workspace_resources r ON r.id = a.resource_id JOIN workspace_builds b ON b.job_id = r.job_id WHERE b.workspace_id = $1",
      ),
    };
  } finally {
    await db.end();
  }
}

describe("three replicas behind nginx", () => {
  it("work as one deployment: mesh tunnels, cross-replica logs, and a replica killed under its agent", { timeout: 240_000 }, async () => {
    // Only the third replica runs a provisioner daemon, so jobs run there whoever takes the request.
    const cluster = await startCluster(3, { prometheus: true, env: (i): Record<string, string> => (i === 2 ? { CODER_PROVISIONER_DAEMONS: "1" } : {}) });
    const [a, b, c] = cluster.replicas as [ClusterReplica, ClusterReplica, ClusterReplica];

    // Through the load balancer: first user, login, a template.
    const lb = new Client(cluster.url);
    await lb.createFirstUser({ email: "owner@example.com", username: "owner", password: DEFAULT_PASSWORD });
    lb.sessionToken = (await lb.loginWithPassword("owner@example.com", DEFAULT_PASSWORD)).session_token;
    const { template } = await pushTemplate(lb, "ha");
    const replicas = await replicasWhen(lb, (rs) => rs.length === 3 && rs.every((r) => r.error === ""), 15_000);
    const idOf = (r: ClusterReplica) => replicas.find((x) => x.relay_address === r.url)!.id;
    expect(new Set(replicas.map((r) => r.relay_address))).toEqual(new Set([a.url, b.url, c.url]));

    // The agent will reach replica A only: nginx routes there while the workspace starts.
    await cluster.route([a]);
    const viaB = withClient(lb, b.url);
    const workspace = await viaB.createWorkspace("me", { name: "dev", template_id: template.id });
    // Build logs followed on B while the job runs on C.
    const lines: string[] = [];
    for await (const l of viaB.followWorkspaceBuildLogs(workspace.latest_build.id)) lines.push(l.output);
    const build = await viaB.workspaceBuild(workspace.latest_build.id);
    expect(build.job.status).toBe("succeeded");
    const db = new pg.Client({ connectionString: cluster.databaseUrl });
    await db.connect();
    const ran = await db.query<{ replica_id: string; n: string }>(
      "SELECT d.replica_id, (SELECT count(*) FROM provisioner_job_logs WHERE job_id = j.id) AS n FROM provisioner_jobs j JOIN provisioner_daemons d ON d.id = j.worker_id WHERE j.id = $1",
      [build.job.id],
    );
    await db.end();
    expect(ran.rows[0]!.replica_id).toBe(idOf(c));
    expect(lines.length).toBe(Number(ran.rows[0]!.n));
    expect(lines.length).toBeGreaterThan(0);

    const agent = await agentWhen(viaB, workspace.id, (x) => x.status === "connected" && x.lifecycle_state === "ready");
    expect(agent.last_connected_replica_id).toBe(idOf(a));

    // Clients now land on B or C; the agent stays on A: every byte crosses the mesh (direct paths are blocked).
    await cluster.route([b, c]);
    const cfg = loggedInConfigDir(lb);
    try {
      const cli = (args: string[]) => runCli(["--config-dir", cfg, ...args], {}, 60_000);
      const first = await cli(["ssh", "dev", "--", "echo", "over-the-mesh-$((6*7))"]);
      expect(first.stderr).toBe("");
      expect(first.stdout.trim()).toBe("over-the-mesh-42");
      expect(first.code).toBe(0);
      // The session crossed the mesh: A's relay received what B or C forwarded to its agent.
      expect(await metric(a, "coderd_relay_mesh_received_bytes_total")).toBeGreaterThan(0);
      expect((await metric(b, "coderd_relay_mesh_forwarded_bytes_total")) + (await metric(c, "coderd_relay_mesh_forwarded_bytes_total"))).toBeGreaterThan(0);
      expect(await metric(b, "coderd_relay_mesh_peers")).toBe(2);
      expect(await metric(b, "coderd_replicas")).toBe(3);
      const latencies = (await (await fetch(b.metricsUrl!)).text()).match(/^coderd_replica_peer_latency_seconds\{replica_id="[0-9a-f-]{36}"\} \S+$/gm);
      expect(latencies).toHaveLength(2);

      const before = await counts(cluster.databaseUrl, workspace.id);
      expect(before.jobLogs).toBeGreaterThan(0);

      // An SSH session open across the kill: its stream moves to the agent's new replica.
      const held = startCli(["--config-dir", cfg, "ssh", "dev", "--", "cat"], {}, 90_000, { stdin: true });
      const echoed = (text: string) => vi.waitFor(() => expect(held.output.stdout).toContain(text), { timeout: 30_000, interval: 50 });
      held.input!.write("before the kill\n");
      await echoed("before the kill\n");

      // SIGKILL the replica that serves the agent: no goodbye, no stopped_at.
      a.process.proc.kill("SIGKILL");
      await a.process.exited;
      const reconnected = await within(
        10_000,
        "the agent reconnected through another replica",
        agentWhen(viaB, workspace.id, (x) => x.last_connected_replica_id !== idOf(a) && x.status === "connected"),
      );
      expect([idOf(b), idOf(c)]).toContain(reconnected.last_connected_replica_id);

      const again = await cli(["ssh", "dev", "--", "echo", "after-failover"]);
      expect(again.stdout.trim()).toBe("after-failover");
      expect(again.code).toBe(0);
      held.input!.end("after the kill\n");
      const kept = await held.done;
      expect(kept.stdout).toBe("before the kill\nafter the kill\n");
      expect(kept.stderr).toBe("");
      expect(kept.code).toBe(0);

      const left = await replicasWhen(viaB, (rs) => rs.length === 2, 15_000);
      expect(left.map((r) => r.id)).not.toContain(idOf(a));
      // Nothing written before the kill is missing.
      const after = await counts(cluster.databaseUrl, workspace.id);
      expect(after.workspaces).toBe(before.workspaces);
      expect(after.builds).toBe(before.builds);
      expect(after.jobLogs).toBe(before.jobLogs);
      expect(after.agentLogs).toBeGreaterThanOrEqual(before.agentLogs!);
    } finally {
      removeDir(cfg);
    }
    await deleteWorkspace(viaB, workspace);
  });
});
