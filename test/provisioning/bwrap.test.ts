// isolation: bwrap runs each agent inside a bubblewrap sandbox (Debian's bubblewrap, installed by
// .ci/run): its own PID namespace, the host read-only, the workspace directory writable.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { EXAMPLE_TEMPLATE } from "../../src/provisioners/index.js";
import { createFirstUser, startTestServer } from "../helpers/coderd.js";
import { pushTemplate, waitForBuild } from "../helpers/templates.js";

/** Processes whose command line is a coder agent and whose environment carries this agent id. */
function agentProcesses(agentId: string): number[] {
  const out: number[] = [];
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      if (cmd.at(-2) !== "agent") continue;
      if (readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").includes(`CODER_AGENT_ID=${agentId}`)) out.push(Number(pid));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

describe("local driver with isolation: bwrap", () => {
  it("runs the agent in its own PID namespace and stops it", async () => {
    execFileSync("bwrap", ["--version"]); // installed by .ci/run; fail loudly if it is not
    const srv = await startTestServer({ provisionerDaemons: 1 });
    const { client } = await createFirstUser(srv);
    const files = { ...EXAMPLE_TEMPLATE, "template.yaml": EXAMPLE_TEMPLATE["template.yaml"]!.replace("isolation: none", "isolation: bwrap") };
    const { template } = await pushTemplate(client, "sandboxed", files);
    const ws = await client.createWorkspace("me", { name: "boxed", template_id: template.id });
    const built = await waitForBuild(client, ws.latest_build.id);
    expect(built.status).toBe("running");
    const agentId = built.resources[0]!.agents[0]!.id;
    const pids = agentProcesses(agentId);
    expect(pids.length).toBeGreaterThan(0);
    const ourNamespace = readlinkSync("/proc/self/ns/pid");
    const command = (p: number) => readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0")[0];
    const inner = pids.filter((p) => readlinkSync(`/proc/${p}/ns/pid`) !== ourNamespace && command(p) !== "bwrap");
    // bwrap stays in our namespace; the agent it started runs in a namespace of its own.
    expect(inner.length).toBe(1);

    expect((await waitForBuild(client, (await client.createWorkspaceBuild(ws.id, { transition: "stop" })).id)).status).toBe("stopped");
    expect(agentProcesses(agentId)).toEqual([]);
    expect((await waitForBuild(client, (await client.createWorkspaceBuild(ws.id, { transition: "delete" })).id)).status).toBe("deleted");
  });
});
