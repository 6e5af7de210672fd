// What the agent observes in its workspace: metadata commands, listening ports, app health.
import { describe, expect, it } from "vitest";
import { agentWhen } from "../helpers/agents.js";
import { createFirstUser, startTestServer } from "../helpers/coderd.js";
import { closedPort } from "../helpers/net.js";
import { pushTemplate, waitForBuild } from "../helpers/templates.js";
import type { WorkspaceAgent } from "../../src/codersdk/index.js";


describe("agent observations", () => {
  it("reports metadata values and errors, listening ports, and app health", async () => {
    const srv = await startTestServer({ provisionerDaemons: 1 });
    const { client } = await createFirstUser(srv);
    const webPort = await closedPort();
    const deadPort = await closedPort();
    const yaml = `agents:
  - name: main
    startup_script: |
      ${process.execPath} -e "require('http').createServer((q, r) => r.end('ok')).listen(${webPort}, '127.0.0.1')" > /dev/null 2>&1 &
    metadata:
      - key: greeting
        display_name: Greeting
        script: echo hello-metadata
        interval: 1
        timeout: 5
      - key: broken
        display_name: Broken
        script: echo oops >&2; exit 3
        interval: 1
        timeout: 5
    apps:
      - slug: web
        url: http://127.0.0.1:${webPort}
        healthcheck:
          url: http://127.0.0.1:${webPort}/
          interval: 1
          threshold: 2
      - slug: dead
        url: http://127.0.0.1:${deadPort}
        healthcheck:
          url: http://127.0.0.1:${deadPort}/
          interval: 1
          threshold: 2
      - slug: plain
        url: http://127.0.0.1:1
`;
    const { template } = await pushTemplate(client, "observed", { "template.yaml": yaml });
    const ws = await client.createWorkspace("me", { name: "dev", template_id: template.id });
    await waitForBuild(client, ws.latest_build.id);
    const health = (a: WorkspaceAgent) => Object.fromEntries(a.apps.map((p) => [p.slug, p.health]));
    const agent = await agentWhen(client, ws.id, (a) => health(a).web === "healthy" && health(a).dead === "unhealthy");
    expect(health(agent)).toEqual({ dead: "unhealthy", plain: "disabled", web: "healthy" });

    // Ports are scanned every few seconds; each change is published to watchers.
    const abort = new AbortController();
    for await (const _ of client.watchWorkspace(ws.id, abort.signal)) {
      if ((await client.workspaceAgentListeningPorts(agent.id)).ports.some((p) => p.port === webPort)) abort.abort();
    }

    const fresh = await client.workspaceAgent(agent.id);
    const meta = Object.fromEntries(fresh.metadata.map((m) => [m.key, m]));
    expect(meta.greeting).toMatchObject({ display_name: "Greeting", value: "hello-metadata", error: "" });
    expect(meta.broken).toMatchObject({ value: "", error: "oops" });
    expect(meta.greeting!.collected_at).not.toBeNull();

    await waitForBuild(client, (await client.createWorkspaceBuild(ws.id, { transition: "delete" })).id);
    // The startup script's background server stopped with the workspace.
    const after = await fetch(`http://127.0.0.1:${webPort}/`).then(
      () => "still up",
      () => "gone",
    );
    expect(after).toBe("gone");
  });
});
