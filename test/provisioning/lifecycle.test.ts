// The workspace lifecycle through the API with a built-in daemon and the local driver: real
// agent processes started, stopped, and removed with their directory.
import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { isCoderSDKError } from "../../src/codersdk/index.js";
import { createFirstUser, startTestServer } from "../helpers/coderd.js";
import { pushTemplate, waitForBuild } from "../helpers/templates.js";

/** The pids the local driver recorded for the workspace's running agents. */
async function agentPids(srv: Awaited<ReturnType<typeof startTestServer>>, buildId: string): Promise<{ dir: string; pids: number[] }> {
  const build = await srv.db.store.getWorkspaceBuildById(buildId);
  const state = JSON.parse(build!.provisioner_state!.toString("utf8")) as { dir: string; agents: Array<{ pid: number }> };
  return { dir: state.dir, pids: state.agents.map((a) => a.pid) };
}

const running = (pid: number) => {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z ");
  } catch {
    return false;
  }
};

describe("workspace lifecycle (local driver)", () => {
  it("imports a template, then creates, stops, starts and deletes a workspace", async () => {
    const srv = await startTestServer({ provisionerDaemons: 1 });
    const { client } = await createFirstUser(srv);
    const { template, version } = await pushTemplate(client, "local");
    expect(version.job.status).toBe("succeeded");
    const params = await client.templateVersionParameters(version.id);
    expect(params.map((p) => [p.name, p.type, p.default_value, p.mutable])).toEqual([
      ["greeting", "string", "hello", true],
      ["cpus", "number", "2", false],
    ]);
    const resources = await client.templateVersionResources(version.id);
    expect(resources.filter((r) => r.transition === "start").flatMap((r) => r.agents.map((a) => a.name))).toEqual(["main"]);
    const logs = await client.templateVersionLogs(version.id);
    expect(logs.map((l) => l.output)).toContain("Parsed template.yaml: 2 parameter(s), 1 agent(s)");

    const bad = await client
      .createWorkspace("me", { name: "dev", template_id: template.id, rich_parameter_values: [{ name: "cpus", value: "99" }] })
      .catch((e: unknown) => e);
    expect(isCoderSDKError(bad, 400)).toBe(true);
    expect((bad as { validations: unknown[] }).validations).toEqual([{ field: "rich_parameter_values.cpus", detail: "must be at most 8" }]);

    const ws = await client.createWorkspace("me", { name: "dev", template_id: template.id, rich_parameter_values: [{ name: "greeting", value: "hi there" }] });
    expect(ws.latest_build.build_number).toBe(1);
    const started = await waitForBuild(client, ws.latest_build.id);
    expect(started.status).toBe("running");
    expect(started.resources[0]!.agents.map((a) => a.name)).toEqual(["main"]);
    expect(started.resources[0]!.agents[0]!.environment).toEqual({ GREETING: "hi there" });
    const first = await agentPids(srv, started.id);
    expect(first.pids).toHaveLength(1);
    expect(running(first.pids[0]!)).toBe(true);
    expect(existsSync(first.dir)).toBe(true);
    expect((await client.workspaceByOwnerAndName("me", "dev")).latest_build.status).toBe("running");

    const stop = await client.createWorkspaceBuild(ws.id, { transition: "stop" });
    expect((await waitForBuild(client, stop.id)).status).toBe("stopped");
    expect(running(first.pids[0]!)).toBe(false);
    expect(existsSync(first.dir)).toBe(true);

    const start = await client.createWorkspaceBuild(ws.id, { transition: "start" });
    const restarted = await waitForBuild(client, start.id);
    expect(restarted.status).toBe("running");
    const second = await agentPids(srv, restarted.id);
    expect(second.dir).toBe(first.dir);
    expect(running(second.pids[0]!)).toBe(true);

    // Immutable parameters keep their first value.
    const immutable = await client.createWorkspaceBuild(ws.id, { transition: "start", rich_parameter_values: [{ name: "cpus", value: "4" }] }).catch((e: unknown) => e);
    expect(isCoderSDKError(immutable, 400)).toBe(true);

    const del = await client.createWorkspaceBuild(ws.id, { transition: "delete" });
    expect((await waitForBuild(client, del.id)).status).toBe("deleted");
    expect(running(second.pids[0]!)).toBe(false);
    expect(existsSync(first.dir)).toBe(false);
    expect(isCoderSDKError(await client.workspace(ws.id).catch((e: unknown) => e), 404)).toBe(true);
    // The template has no workspaces left, so it can go.
    await client.deleteTemplate(template.id);
  });
});

describe("following job logs", () => {
  it("delivers every line, including those written before the follower connected", async () => {
    const srv = await startTestServer({ provisionerDaemons: 1 });
    const { client } = await createFirstUser(srv);
    const { version } = await pushTemplate(client, "local");
    const all = (await client.templateVersionLogs(version.id)).map((l) => l.id);
    expect(all.length).toBeGreaterThanOrEqual(3);
    // The job has ended: every line comes in the first frames, right after the upgrade.
    for (let i = 0; i < 20; i++) {
      const seen: number[] = [];
      for await (const l of client.followTemplateVersionLogs(version.id)) seen.push(l.id);
      expect(seen).toEqual(all);
    }
    const tail: number[] = [];
    for await (const l of client.followTemplateVersionLogs(version.id, all[1])) tail.push(l.id);
    expect(tail).toEqual(all.slice(2));
  });
});
