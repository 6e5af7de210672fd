// `coder support bundle` with the real binary against a real server: the zip's files and their
// JSON, a workspace's logs and agent, parts that fail recorded as .error.txt, never the session
// token, and a clear refusal for a user who is not an owner.
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { strFromU8, unzipSync } from "fflate";
import { describe, expect, it } from "vitest";
import type { AgentConnectionInfo, BuildInfo, HealthReport, Replica, Workspace, WorkspaceAgent } from "../../src/codersdk/index.js";
import { CODER_BIN, runCli, tempConfigDir } from "../helpers/binary.js";
import { createFirstUser, createUserWithRoles, startTestServer } from "../helpers/coderd.js";
import { deleteWorkspace, runningWorkspace } from "../helpers/workspaces.js";

function unzip(path: string): Record<string, string> {
  return Object.fromEntries(Object.entries(unzipSync(readFileSync(path))).map(([name, data]) => [name, strFromU8(data)]));
}

describe("coder support bundle", () => {
  it("writes deployment, network, CLI and workspace diagnostics, and never the session token", { timeout: 120_000 }, async () => {
    const srv = await startTestServer({ provisionerDaemons: 1 });
    const { client } = await createFirstUser(srv);
    const { workspace, agent } = await runningWorkspace(client, "dev");
    try {
      const token = client.sessionToken!;
      const dir = tempConfigDir();
      const env = { CODER_URL: srv.url, CODER_SESSION_TOKEN: token, CODER_CONFIG_DIR: tempConfigDir() };
      const out = join(dir, "bundle.zip");

      const r = await runCli(["support", "bundle", "dev", "-O", out, "-y"], env, 60_000);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe("");
      expect(r.stderr).toContain(`Collecting diagnostics from ${srv.url}`);
      expect(r.stderr).toMatch(/^ {2}deployment\/health\.json$/m);
      expect(r.stderr).toContain(`Wrote ${out} (`);
      expect(r.stderr).not.toContain(token);

      const files = unzip(out);
      expect(Object.keys(files).sort()).toEqual([
        "cli/info.json",
        "deployment/buildinfo.json",
        "deployment/health.json",
        "deployment/replicas.json",
        "network/connection-info.json",
        "network/derp-map.json",
        "workspace/agent-logs.txt",
        "workspace/agent.json",
        "workspace/build-logs.txt",
        "workspace/workspace.json",
      ]);
      const parse = <T>(name: string) => JSON.parse(files[name]!) as T;
      expect(parse<BuildInfo>("deployment/buildinfo.json")).toMatchObject({ version: expect.any(String), deployment_id: expect.any(String) });
      const health = parse<HealthReport>("deployment/health.json");
      expect(health.sections.database).toMatchObject({ reachable: true });
      expect(Number.isNaN(Date.parse(health.time))).toBe(false);
      expect(parse<Replica[]>("deployment/replicas.json")).toEqual([expect.objectContaining({ id: expect.any(String), hostname: expect.any(String) })]);
      const derpMap = parse<AgentConnectionInfo["relay_map"]>("network/derp-map.json");
      expect(derpMap.Regions[999]).toMatchObject({ RegionID: 999, RegionCode: "coder", Nodes: [expect.objectContaining({ HostName: "127.0.0.1" })] });
      expect(parse<AgentConnectionInfo>("network/connection-info.json")).toMatchObject({ relay_map: derpMap, disable_direct_connections: false });
      expect(parse<Record<string, unknown>>("cli/info.json")).toMatchObject({
        version: expect.any(String),
        os: process.platform,
        arch: process.arch,
        node: process.version,
        url: srv.url,
        user: "owner",
      });
      expect(parse<Workspace>("workspace/workspace.json")).toMatchObject({ id: workspace.id, name: "dev", owner_name: "owner" });
      expect(parse<WorkspaceAgent>("workspace/agent.json")).toMatchObject({ id: agent.id, name: "main", status: "connected" });
      expect(files["workspace/build-logs.txt"]).toMatch(/Start workspace: Started agent "main"/);
      expect(files["workspace/agent-logs.txt"]).toContain("hello from dev");

      // The token (whole, or its secret half) appears in no file and in no file's name.
      for (const [name, text] of Object.entries(files)) {
        expect(name).not.toContain(token);
        expect(text, name).not.toContain(token);
        expect(text, name).not.toContain(token.split("-")[1]!);
      }
    } finally {
      await deleteWorkspace(client, workspace);
    }
  });

  it("records a part it cannot collect as .error.txt and still writes the bundle; defaults to coder-support-<time>.zip", async () => {
    const srv = await startTestServer();
    const { client } = await createFirstUser(srv);
    const cwd = tempConfigDir();
    const env = { ...process.env, CODER_URL: srv.url, CODER_SESSION_TOKEN: client.sessionToken!, CODER_CONFIG_DIR: tempConfigDir() };
    const before = Math.floor(Date.now() / 1000);
    const r = await new Promise<{ code: number | null; stderr: string }>((res) => {
      const child = spawn(process.execPath, [CODER_BIN, "support", "bundle", "nope", "-y"], { cwd, env, stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (d) => (stderr += d));
      child.on("close", (code) => res({ code, stderr }));
    });
    expect(r.code, r.stderr).toBe(0);
    const names = readdirSync(cwd);
    expect(names).toEqual([expect.stringMatching(/^coder-support-\d+\.zip$/)]);
    const time = Number(/\d+/.exec(names[0]!)![0]);
    expect(time).toBeGreaterThanOrEqual(before);
    expect(time).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000));
    expect(r.stderr).toContain(`Wrote ${join(cwd, names[0]!)} (`);
    const files = unzip(join(cwd, names[0]!));
    expect(Object.keys(files)).toEqual(expect.arrayContaining(["cli/info.json", "deployment/health.json", "deployment/replicas.json", "workspace/workspace.error.txt"]));
    expect(files["workspace/workspace.error.txt"]).toContain('No workspace "nope"');
    expect(Object.keys(files).some((n) => n.startsWith("workspace/") && !n.endsWith(".error.txt"))).toBe(false);
    expect(r.stderr).toMatch(/^ {2}workspace\/workspace\.error\.txt: No workspace "nope"/m);
    expect(r.stderr).toContain("1 part(s) could not be collected");
    for (const text of Object.values(files)) expect(text).not.toContain(client.sessionToken!);
  });

  it("refuses a user who is not an owner, clearly, and writes nothing", async () => {
    const srv = await startTestServer();
    const { client } = await createFirstUser(srv);
    const { client: member } = await createUserWithRoles(srv, client, "member");
    const dir = tempConfigDir();
    const r = await runCli(["support", "bundle", "-O", join(dir, "b.zip"), "-y"], { CODER_URL: srv.url, CODER_SESSION_TOKEN: member.sessionToken!, CODER_CONFIG_DIR: tempConfigDir() });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: coder support bundle needs the owner role: member is not an owner/);
    expect(existsSync(join(dir, "b.zip"))).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
  });

  it("coder support without a subcommand shows its help", async () => {
    const r = await runCli(["support"], { CODER_CONFIG_DIR: tempConfigDir() });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Usage: coder support/);
    expect(r.stdout).toMatch(/bundle \[options\] \[workspace\]/);
    const unknown = await runCli(["support", "bogus"], { CODER_CONFIG_DIR: tempConfigDir() });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^error: unknown command 'bogus'/);
  });
});
