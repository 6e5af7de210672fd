// `coder ssh` and real OpenSSH (through `coder config-ssh`) reaching a real agent over the
// encrypted tunnel: relayed through the embedded relay, and direct.
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Client, Workspace } from "../../src/codersdk/index.js";
import { runCli } from "../helpers/binary.js";
import { createFirstUser, startTestServer, type TestServer } from "../helpers/coderd.js";
import { deleteWorkspace, loggedInConfigDir, removeDir, runningWorkspace } from "../helpers/workspaces.js";

const run = promisify(execFile);
let srv: TestServer;
let cfg: string;
let dir: string;
let sshConfig: string;
let workspace: Workspace;
let owner: Client;

beforeAll(async () => {
  srv = await startTestServer({ provisionerDaemons: 1, manualClose: true });
  const { client } = await createFirstUser(srv);
  owner = client;
  ({ workspace } = await runningWorkspace(client, "dev"));
  cfg = loggedInConfigDir(client);
  dir = mkdtempSync(join(tmpdir(), "coder-ssh-e2e-"));
  sshConfig = join(dir, "ssh_config");
});

afterAll(async () => {
  if (workspace) await deleteWorkspace(owner, workspace);
  await srv?.close();
  removeDir(cfg);
  removeDir(dir);
});

const cli = (args: string[], env: Record<string, string> = {}) => runCli(["--config-dir", cfg, ...args], env, 60_000);
const ssh = (args: string[], opts: { maxBuffer?: number } = {}) => run("ssh", ["-F", sshConfig, ...args], { maxBuffer: opts.maxBuffer ?? 1024 * 1024, timeout: 60_000 });

describe("coder ssh", () => {
  it("runs a command and returns its exit status, relayed and direct", async () => {
    const direct = await cli(["ssh", "dev", "--", "echo", "hello-from-$(hostname)-$((6*7))"]);
    expect(direct.stderr).toBe("");
    expect(direct.stdout).toMatch(/hello-from-.*-42/);
    expect(direct.code).toBe(0);
    const relayed = await cli(["ssh", "dev", "--", "exit", "3"], { CODER_BLOCK_DIRECT: "1" });
    expect(relayed.code).toBe(3);
  });

  it("says clearly when the workspace does not exist", async () => {
    const r = await cli(["ssh", "nope", "--", "true"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('No workspace "nope"');
  });
});

describe("OpenSSH through coder config-ssh", () => {
  beforeAll(async () => {
    const r = await cli(["config-ssh", "--ssh-config-file", sshConfig, "-y"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
  });

  it("writes a managed block that is idempotent and removable", async () => {
    const text = readFileSync(sshConfig, "utf8");
    expect(text).toContain("Host coder.dev\n");
    expect(text).toContain("Host coder.dev.main\n");
    expect(text).toMatch(/ProxyCommand .* ssh --stdio owner\/dev\n/);
    const again = await cli(["config-ssh", "--ssh-config-file", sshConfig, "-y"]);
    expect(again.stdout).toContain("No changes");
    const other = join(dir, "other_config");
    writeFileSync(other, "Host keep\n  Port 2222\n");
    await cli(["config-ssh", "--ssh-config-file", other, "-y"]);
    const dry = await cli(["config-ssh", "--ssh-config-file", other, "--remove", "--dry-run"]);
    expect(dry.stdout).toContain("Host keep");
    await cli(["config-ssh", "--ssh-config-file", other, "--remove", "-y"]);
    expect(readFileSync(other, "utf8")).toBe("Host keep\n  Port 2222\n");
  });

  it("ssh runs commands with their exit codes", async () => {
    expect((await ssh(["coder.dev", "echo", "ok"])).stdout).toBe("ok\n");
    await expect(ssh(["coder.dev", "exit 7"])).rejects.toMatchObject({ code: 7 });
  });

  it("scp copies both ways, and 100 MiB arrives intact", async () => {
    const src = join(dir, "big.bin");
    const data = randomBytes(100 * 1024 * 1024);
    writeFileSync(src, data);
    const sum = createHash("sha256").update(data).digest("hex");
    await run("scp", ["-F", sshConfig, "-q", src, "coder.dev:big.bin"], { timeout: 120_000 });
    const remote = await ssh(["coder.dev", "sha256sum big.bin"]);
    expect(remote.stdout.split(" ")[0]).toBe(sum);
    const back = join(dir, "back.bin");
    await run("scp", ["-F", sshConfig, "-q", "coder.dev:big.bin", back], { timeout: 120_000 });
    expect(createHash("sha256").update(readFileSync(back)).digest("hex")).toBe(sum);
    await ssh(["coder.dev", "rm big.bin"]);
  });
});
