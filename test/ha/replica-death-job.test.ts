// A replica dies in the middle of a job its built-in daemon runs: another replica's reaper fails
// the job at once (not after the 5-minute hang timeout), with the reason in the build's logs.
import { describe, expect, it } from "vitest";
import { Client } from "../../src/codersdk/index.js";
import { agentProcess, agentWhen } from "../helpers/agents.js";
import { startCluster, type ClusterReplica } from "../helpers/cluster.js";
import { DEFAULT_PASSWORD } from "../helpers/coderd.js";
import { pushTemplate, waitForBuild } from "../helpers/templates.js";

describe("a replica killed mid-job", () => {
  it("has its job failed by another replica's reaper, with the reason in the logs", { timeout: 90_000 }, async () => {
    // Only A runs a provisioner daemon; B serves the client throughout.
    const cluster = await startCluster(2, { env: (i): Record<string, string> => (i === 0 ? { CODER_PROVISIONER_DAEMONS: "1" } : {}) });
    const [a, b] = cluster.replicas as [ClusterReplica, ClusterReplica];
    const client = new Client(b.url);
    await client.createFirstUser({ email: "owner@example.com", username: "owner", password: DEFAULT_PASSWORD });
    client.sessionToken = (await client.loginWithPassword("owner@example.com", DEFAULT_PASSWORD)).session_token;
    const { template } = await pushTemplate(client, "doomed");
    const ws = await client.createWorkspace("me", { name: "dev", template_id: template.id });
    await waitForBuild(client, ws.latest_build.id);
    const agent = await agentWhen(client, ws.id, (x) => x.status === "connected");
    const pid = agentProcess(agent.id).pid;
    try {
      // A frozen agent cannot act on SIGTERM: the stop build keeps running on A until A dies.
      process.kill(pid, "SIGSTOP");
      const stop = await client.createWorkspaceBuild(ws.id, { transition: "stop" });
      for await (const line of client.followWorkspaceBuildLogs(stop.id)) if (line.output.startsWith("Acquired by")) break;
      a.process.proc.kill("SIGKILL");

      const failed = await waitForBuild(client, stop.id);
      expect(failed.status).toBe("failed");
      expect(failed.job.error).toBe("Build failed: the replica running its provisioner daemon stopped.");
      const logs = await client.workspaceBuildLogs(stop.id);
      expect(logs.at(-1)!.output).toMatch(/^The replica \S+ \([0-9a-f-]{36}\) whose built-in provisioner daemon ran this job stopped .*: the job was marked failed by replica [0-9a-f-]{36}\./);
      await b.process.waitFor("provisioner job reaped");
    } finally {
      process.kill(pid, "SIGKILL");
    }
  });
});
