// Watching a workspace live, listing with filters, and canceling a running build.
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { WorkspaceStatus } from "../../src/codersdk/index.js";
import { createFirstUser, createUserWithRoles, startTestServer } from "../helpers/coderd.js";
import { pushTemplate, waitForBuild } from "../helpers/templates.js";

describe("workspace watch, list and cancel", () => {
  it("streams every status change of a build to a watcher", async () => {
    const srv = await startTestServer({ provisionerDaemons: 1 });
    const { client } = await createFirstUser(srv);
    const { template } = await pushTemplate(client, "local");
    const ws = await client.createWorkspace("me", { name: "watched", template_id: template.id });
    await waitForBuild(client, ws.latest_build.id);

    const abort = new AbortController();
    const seen: WorkspaceStatus[] = [];
    let first!: () => void;
    const firstSeen = new Promise<void>((r) => (first = r));
    const watching = (async () => {
      for await (const w of client.watchWorkspace(ws.id, abort.signal)) {
        seen.push(w.latest_build.status);
        first();
        if (w.latest_build.transition === "stop" && w.latest_build.status === "stopped") abort.abort();
      }
    })();
    // The watcher gets the current state first; then the stop build happens.
    await firstSeen;
    const stop = await client.createWorkspaceBuild(ws.id, { transition: "stop" });
    await watching;
    expect(seen[0]).toBe("running");
    expect(seen.at(-1)).toBe("stopped");
    // In between, the build was seen queued or under way (which one depends on the daemon's speed).
    expect(seen.slice(1, -1).some((s) => s === "pending" || s === "stopping")).toBe(true);
    expect((await client.workspaceBuild(stop.id)).status).toBe("stopped");
    await waitForBuild(client, (await client.createWorkspaceBuild(ws.id, { transition: "delete" })).id);
  });

  it("lists with owner, template, status and name filters; members see only their own", async () => {
    const srv = await startTestServer({ provisionerDaemons: 2 });
    const { client: owner } = await createFirstUser(srv);
    const alice = await createUserWithRoles(srv, owner, "alice");
    const { template } = await pushTemplate(owner, "local");
    const mine = await owner.createWorkspace("me", { name: "owner-dev", template_id: template.id });
    const hers = await alice.client.createWorkspace("me", { name: "alice-dev", template_id: template.id });
    await Promise.all([waitForBuild(owner, mine.latest_build.id), waitForBuild(owner, hers.latest_build.id)]);
    await waitForBuild(alice.client, (await alice.client.createWorkspaceBuild(hers.id, { transition: "stop" })).id);

    const names = async (q: string, c = owner) => (await c.workspaces(q)).workspaces.map((w) => `${w.owner_name}/${w.name}`).sort();
    expect(await names("")).toEqual(["alice/alice-dev", "owner/owner-dev"]);
    expect(await names("owner:me")).toEqual(["owner/owner-dev"]);
    expect(await names("owner:alice")).toEqual(["alice/alice-dev"]);
    expect(await names("status:stopped")).toEqual(["alice/alice-dev"]);
    expect(await names("status:running template:local")).toEqual(["owner/owner-dev"]);
    expect(await names("template:other")).toEqual([]);
    expect(await names("alice")).toEqual(["alice/alice-dev"]);
    expect(await names("", alice.client)).toEqual(["alice/alice-dev"]);
    expect(await names("owner:owner", alice.client)).toEqual([]);

    for (const [c, w] of [[owner, mine], [alice.client, hers]] as const) {
      await waitForBuild(c, (await c.createWorkspaceBuild(w.id, { transition: "delete" })).id);
    }
  });

  it("cancels a running build: it ends canceled and the workspace can build again", async () => {
    const srv = await startTestServer({ provisionerDaemons: 1 });
    const { client } = await createFirstUser(srv);
    const { template } = await pushTemplate(client, "local");
    const ws = await client.createWorkspace("me", { name: "dev", template_id: template.id });
    const started = await waitForBuild(client, ws.latest_build.id);
    const build = await srv.db.store.getWorkspaceBuildById(started.id);
    const pid = (JSON.parse(build!.provisioner_state!.toString("utf8")) as { agents: Array<{ pid: number }> }).agents[0]!.pid;
    process.kill(pid, "SIGSTOP"); // the stop build now waits on the agent
    const stop = await client.createWorkspaceBuild(ws.id, { transition: "stop" });
    for await (const line of client.followWorkspaceBuildLogs(stop.id)) if (line.output.startsWith("Acquired by")) break;
    const conflict = await client.createWorkspaceBuild(ws.id, { transition: "start" }).catch((e: unknown) => e);
    expect((conflict as { status: number }).status).toBe(409);
    await client.cancelWorkspaceBuild(stop.id);
    const ended = await waitForBuild(client, stop.id);
    expect(ended.status).toBe("canceled");
    // Canceling cut the wait short: the frozen agent was killed.
    expect(existsSync(`/proc/${pid}`)).toBe(false);
    const del = await client.createWorkspaceBuild(ws.id, { transition: "delete" });
    expect((await waitForBuild(client, del.id)).status).toBe("deleted");
  });
});

describe("across replicas", () => {
  it("a watcher on one replica sees a build that another replica's daemon runs, and its logs", async () => {
    const a = await startTestServer({ provisionerDaemons: 1 });
    const b = await startTestServer({ databaseUrl: a.databaseUrl });
    const { client: onA } = await createFirstUser(a);
    const onB = b.anonymous();
    onB.sessionToken = onA.sessionToken;
    const { template } = await pushTemplate(onA, "local");
    const ws = await onA.createWorkspace("me", { name: "dev", template_id: template.id });
    await waitForBuild(onA, ws.latest_build.id);

    const abort = new AbortController();
    const seen: WorkspaceStatus[] = [];
    let first!: () => void;
    const firstSeen = new Promise<void>((r) => (first = r));
    const watching = (async () => {
      for await (const w of onB.watchWorkspace(ws.id, abort.signal)) {
        seen.push(w.latest_build.status);
        first();
        if (w.latest_build.transition === "delete" && w.latest_build.status === "deleted") abort.abort();
      }
    })();
    await firstSeen;
    // Replica B has no daemon: A's runs the build; B streams its logs and its status.
    const del = await onB.createWorkspaceBuild(ws.id, { transition: "delete" });
    const lines: string[] = [];
    for await (const l of onB.followWorkspaceBuildLogs(del.id)) lines.push(l.output);
    await watching;
    expect(lines).toContain("Job succeeded");
    expect(seen[0]).toBe("running");
    expect(seen.at(-1)).toBe("deleted");
  });
});
