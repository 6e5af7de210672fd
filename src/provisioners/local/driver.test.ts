import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { WorkspaceBuildInput } from "../../provisionerd/proto.js";
import { LocalDriver } from "./driver.js";
import { EXAMPLE_TEMPLATE } from "./example.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const temp = () => {
  const d = mkdtempSync(join(tmpdir(), "local-driver-"));
  dirs.push(d);
  return d;
};

function build(transition: WorkspaceBuildInput["transition"], state: object | null): WorkspaceBuildInput {
  return {
    transition,
    workspace_id: "12345678-aaaa-bbbb-cccc-123456789012",
    workspace_name: "dev",
    owner_id: "u",
    owner_name: "alice",
    owner_email: "a@example.com",
    template_name: "t",
    template_version_name: "v",
    build_number: 2,
    parameters: [],
    state: state ? Buffer.from(JSON.stringify(state)).toString("base64") : null,
    access_url: "http://127.0.0.1:1",
  };
}

describe("LocalDriver", () => {
  it("refuses state that points anywhere but this workspace's directory", async () => {
    const templateDir = temp();
    writeFileSync(join(templateDir, "template.yaml"), EXAMPLE_TEMPLATE["template.yaml"]!);
    const driver = new LocalDriver({ workspacesDir: join(temp(), "workspaces"), agentCommand: ["true"] });
    const victim = temp();
    writeFileSync(join(victim, "precious"), "x");
    const otherWorkspace = join(temp(), "workspaces", "bob", "prod-87654321");
    mkdirSync(otherWorkspace, { recursive: true });
    for (const dir of [victim, "/etc", otherWorkspace, "relative/workspaces/alice/dev-12345678"]) {
      const req = { templateDir, build: build("delete", { version: 1, host: hostname(), dir, agents: [] }) };
      await expect(driver.apply(req, new AbortController().signal, () => {})).rejects.toThrow(/not this workspace's directory/);
    }
    expect(existsSync(join(victim, "precious"))).toBe(true);
    expect(existsSync(otherWorkspace)).toBe(true);
  });

  it("manages this workspace's directory even under another daemon's cache dir", async () => {
    const templateDir = temp();
    writeFileSync(join(templateDir, "template.yaml"), EXAMPLE_TEMPLATE["template.yaml"]!);
    const otherDaemons = join(temp(), "workspaces", "alice", "dev-12345678");
    mkdirSync(otherDaemons, { recursive: true });
    const driver = new LocalDriver({ workspacesDir: join(temp(), "workspaces"), agentCommand: ["true"] });
    const req = { templateDir, build: build("delete", { version: 1, host: hostname(), dir: otherDaemons, agents: [] }) };
    expect(await driver.apply(req, new AbortController().signal, () => {})).toEqual({ state: null, resources: [] });
    expect(existsSync(otherDaemons)).toBe(false);
  });
});
