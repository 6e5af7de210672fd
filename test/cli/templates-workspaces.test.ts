// `coder templates ...` and the workspace commands (create, list, show, start, stop, delete) as a
// user runs them: the real binary against a server with a built-in provisioner daemon.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { LogPrinter, streamJobLogs } from "../../src/cli/build-logs.js";
import type { Client, Template, TemplateVersion, Workspace } from "../../src/codersdk/index.js";
import { EXAMPLE_TEMPLATE } from "../../src/provisioners/index.js";
import { runCli, tempConfigDir } from "../helpers/binary.js";
import { createFirstUser, createUserWithRoles, startTestServer } from "../helpers/coderd.js";
import { waitForBuild, writeTemplateDir } from "../helpers/templates.js";

/** A server with one built-in daemon, its owner, and the environment the CLI runs with. */
async function setup() {
  const srv = await startTestServer({ provisionerDaemons: 1 });
  const { client } = await createFirstUser(srv);
  // Registered after the server's own close hook, so it runs first (hooks run in reverse).
  onTestFinished(() => deleteAllWorkspaces(client));
  const env = { CODER_URL: srv.url, CODER_SESSION_TOKEN: client.sessionToken!, CODER_CONFIG_DIR: tempConfigDir() };
  const cli = (...args: string[]) => runCli(args, env);
  return { srv, client, env, cli };
}

/** No agent process outlives a test: whatever a test left behind is deleted through the API. */
async function deleteAllWorkspaces(client: Client): Promise<void> {
  const { workspaces } = await client.workspaces("");
  for (const w of workspaces) {
    let latest = w.latest_build;
    if (["pending", "starting", "stopping", "deleting", "canceling"].includes(latest.status)) latest = await waitForBuild(client, latest.id);
    if (latest.status === "deleted") continue;
    const del = await client.createWorkspaceBuild(w.id, { transition: "delete" });
    await waitForBuild(client, del.id);
  }
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "coder-cli-templates-"));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const json = <T>(r: { stdout: string }): T => JSON.parse(r.stdout) as T;

describe("log streaming", () => {
  it("prints a header when the stage changes and marks warnings and errors", () => {
    let out = "";
    const p = new LogPrinter({ write: (s: string) => (out += s) });
    p.queued({ status: "pending", status_detail: "Waiting for a provisioner daemon: 1 job(s) ahead." } as never);
    p.line({ stage: "Set up", level: "info", output: "Acquired" });
    p.line({ stage: "Set up", level: "warn", output: "slow" });
    p.line({ stage: "", level: "info", output: "no stage\n" });
    p.line({ stage: "Cleaning up", level: "error", output: "Job failed: boom" });
    expect(out).toBe(
      "==> Queued\nWaiting for a provisioner daemon: 1 job(s) ahead.\n==> Set up\nAcquired\nWARN: slow\nno stage\n==> Cleaning up\nERROR: Job failed: boom\n",
    );
  });

  it("resumes a dropped stream after the last line seen, without repeating lines", async () => {
    const log = (id: number) => ({ id, created_at: "", source: "provisioner", level: "info", stage: "S", output: `line ${id}` });
    const job = { status: "running" } as never;
    const afters: number[] = [];
    let calls = 0;
    const follow = async function* (after: number) {
      afters.push(after);
      if (calls++ === 0) {
        yield* [1, 2].map(log);
        throw new Error("connection to coderd lost");
      }
      // The server may send from the start again: lines already printed are skipped.
      yield* [1, 2, 3].map(log);
    };
    let out = "";
    await streamJobLogs(follow, job, { out: { write: (t: string) => (out += t) } });
    expect(afters).toEqual([0, 2]);
    expect(out).toBe("==> S\nline 1\nline 2\nline 3\n");
  });
});

describe("coder templates and workspaces", () => {
  it("inits and pushes a template, then creates, lists, shows, stops, starts and deletes a workspace", async () => {
    const { cli } = await setup();
    const dir = join(tempDir(), "local");

    const init = await cli("templates", "init", dir);
    expect(init.code).toBe(0);
    expect(init.stdout).toContain(`coder templates push local -d ${dir}`);
    expect(readFileSync(join(dir, "template.yaml"), "utf8")).toBe(EXAMPLE_TEMPLATE["template.yaml"]);
    expect(existsSync(join(dir, "README.md"))).toBe(true);
    const again = await cli("templates", "init", dir);
    expect(again.code).toBe(1);
    expect(again.stderr).toBe(`error: ${dir} is not empty: pass --force to write the example template into it anyway\n`);
    expect((await cli("templates", "init", dir, "--force")).code).toBe(0);

    const pushed = await cli("templates", "push", "-d", dir, "-y");
    expect(pushed.stderr).toBe("");
    expect(pushed.code).toBe(0);
    const out = pushed.stdout;
    // The import's log lines come out in order, before the result.
    const parsed = out.indexOf("Parsed template.yaml: 2 parameter(s), 1 agent(s)");
    expect(out.indexOf("==> Parse template")).toBeGreaterThan(-1);
    expect(parsed).toBeGreaterThan(out.indexOf("==> Parse template"));
    expect(out.indexOf("Job succeeded")).toBeGreaterThan(parsed);
    expect(out).toMatch(/Template "local" created at version v-[0-9a-f]{8}\.\n$/);

    const templates = json<Template[]>(await cli("templates", "list", "-o", "json"));
    expect(templates.map((t) => t.name)).toEqual(["local"]);
    const table = await cli("templates", "ls");
    expect(table.stdout.split("\n")[0]).toMatch(/^NAME\s+DISPLAY NAME\s+ACTIVE VERSION\s+CREATED AT\s+UPDATED AT$/);
    expect(table.stdout.split("\n")[1]).toMatch(/^local\s+v-[0-9a-f]{8}\s/);

    const created = await cli("create", "dev", "--template", "local", "--parameter", "greeting=hi there", "-y");
    expect(created.stderr).toBe("");
    expect(created.code).toBe(0);
    expect(created.stdout).toContain("==> Start workspace\n");
    expect(created.stdout).toMatch(/Started agent "main" \(pid \d+\)/);
    expect(created.stdout).toMatch(/Workspace "owner\/dev" has been created and is running\.\n$/);

    const listed = json<Workspace[]>(await cli("list", "-o", "json"));
    expect(listed.map((w) => [w.owner_name, w.name, w.template_name, w.latest_build.status])).toEqual([["owner", "dev", "local", "running"]]);
    const listTable = (await cli("ls")).stdout.split("\n");
    expect(listTable[0]).toMatch(/^WORKSPACE\s+TEMPLATE\s+STATUS\s+LAST BUILT\s+OUTDATED$/);
    expect(listTable[1]).toMatch(/^owner\/dev\s+local\s+running\s+\S+ \S+\s+false$/);

    const show = await cli("show", "dev");
    expect(show.code).toBe(0);
    expect(show.stdout).toContain("Workspace:  owner/dev\n");
    expect(show.stdout).toContain("Status:     running\n");
    expect(show.stdout).toMatch(/\n {4}agent main {2}(connecting|connected), [a-z ]+ {2}\(\/.+\)\n/);
    expect(show.stdout).toContain('app web "Web server"  http://127.0.0.1:8080  [shared with: owner]');
    const shown = json<Workspace>(await cli("show", "owner/dev", "-o", "json"));
    expect(shown.latest_build.resources[0]!.agents[0]!.environment).toEqual({ GREETING: "hi there" });

    const stopped = await cli("stop", "dev", "-y");
    expect(stopped.code).toBe(0);
    expect(stopped.stdout).toContain("==> Stop workspace\n");
    expect(stopped.stdout).toMatch(/Agent "main" \(pid \d+\) stopped/);
    expect(stopped.stdout).toMatch(/Workspace "owner\/dev" is stopped\.\n$/);
    expect(json<Workspace[]>(await cli("list", "-o", "json"))[0]!.latest_build.status).toBe("stopped");
    expect((await cli("stop", "dev")).stdout).toBe('Workspace "owner/dev" is already stopped.\n');

    const started = await cli("start", "owner/dev");
    expect(started.code).toBe(0);
    expect(started.stdout).toMatch(/Started agent "main"/);
    expect(started.stdout).toMatch(/Workspace "owner\/dev" is running\.\n$/);
    expect((await cli("start", "dev")).stdout).toBe('Workspace "owner/dev" is already running.\n');

    const unconfirmed = await cli("delete", "dev");
    expect(unconfirmed.code).toBe(1);
    expect(unconfirmed.stderr).toBe("error: Deleting a workspace needs confirmation: pass -y (--yes) to go ahead without a terminal\n");

    const deleted = await cli("delete", "dev", "-y");
    expect(deleted.code).toBe(0);
    expect(deleted.stdout).toMatch(/Removing \//);
    expect(deleted.stdout).toMatch(/Workspace "owner\/dev" has been deleted\.\n$/);
    expect(json<Workspace[]>(await cli("list", "-o", "json"))).toEqual([]);
    const empty = await cli("list");
    expect(empty.stdout).toBe("");
    expect(empty.stderr).toContain("No workspaces found!");
    const gone = await cli("show", "dev");
    expect(gone.code).toBe(1);
    expect(gone.stderr).toBe('error: No workspace "dev". List yours with: coder list\n');
  });

  it("pushes new versions, lists them, and refuses to delete a template that has workspaces", async () => {
    const { client, cli } = await setup();
    const dir = writeTemplateDir(EXAMPLE_TEMPLATE);
    expect((await cli("templates", "push", "local", "-d", dir)).code).toBe(0);
    expect((await cli("create", "dev", "-t", "local", "-y")).code).toBe(0);

    writeFileSync(join(dir, "README.md"), "# Second version\n");
    // Left out of the archive: were they packed, the absolute symlink would be refused.
    mkdirSync(join(dir, ".git"));
    writeFileSync(join(dir, ".git", "HEAD"), "ref: refs/heads/main\n");
    mkdirSync(join(dir, "node_modules"));
    symlinkSync("/etc/passwd", join(dir, "node_modules", "escape"));
    const second = await cli("templates", "push", "local", "-d", dir, "--name", "v2", "-m", "new readme", "--provisioner-tag", `host=${hostname()}`);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain("Parsed template.yaml");
    expect(second.stdout).toMatch(/Updated version of "local": v2 is now active\.\n$/);
    const template = await client.templateByName("default", "local");
    const v2 = await client.templateVersion(template.active_version_id);
    expect([v2.name, v2.message, v2.job.tags]).toEqual(["v2", "new readme", { host: hostname() }]);
    expect(json<Workspace[]>(await cli("list", "-o", "json"))[0]!.outdated).toBe(true);

    const third = await cli("templates", "push", "local", "-d", dir, "--name", "v3", "--no-activate");
    expect(third.code).toBe(0);
    expect(third.stdout).toContain("Created version v3 of \"local\"; the active version is unchanged (--no-activate).");
    expect((await client.template(template.id)).active_version_id).toBe(v2.id);
    const dup = await cli("templates", "push", "local", "-d", dir, "--name", "v3");
    expect(dup.code).toBe(1);
    expect(dup.stderr).toBe("error: A version with this name already exists for the template. (name: is already in use)\n");

    const versions = json<TemplateVersion[]>(await cli("templates", "versions", "list", "local", "-o", "json"));
    expect(versions.map((v) => v.name).sort()).toEqual(expect.arrayContaining(["v2", "v3"]));
    expect(versions).toHaveLength(3);
    const versionTable = (await cli("templates", "versions", "ls", "local")).stdout.split("\n");
    expect(versionTable[0]).toMatch(/^NAME\s+CREATED AT\s+STATUS\s+ACTIVE\s+MESSAGE$/);
    expect(versionTable.find((l) => l.startsWith("v2 "))).toMatch(/^v2\s+\S+ \S+\s+succeeded\s+Active\s+new readme$/);
    expect(versionTable.find((l) => l.startsWith("v3 "))).toMatch(/^v3\s+\S+ \S+\s+succeeded$/);

    const unconfirmed = await cli("templates", "delete", "local");
    expect(unconfirmed.code).toBe(1);
    expect(unconfirmed.stderr).toContain("pass -y");
    const inUse = await cli("templates", "delete", "local", "-y");
    expect(inUse.code).toBe(1);
    expect(inUse.stderr).toBe('error: Cannot delete template "local": The template has 1 workspace: delete them first.\n');
    const missing = await cli("templates", "delete", "nope", "-y");
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe('error: No template named "nope" in organization "default".\n');

    expect((await cli("delete", "dev", "-y")).code).toBe(0);
    const removed = await cli("templates", "rm", "local", "-y");
    expect(removed.code).toBe(0);
    expect(removed.stdout).toBe('Deleted template "local".\n');
    expect(json<Template[]>(await cli("templates", "list", "-o", "json"))).toEqual([]);
  });

  it("fails clearly on missing or invalid parameters and failed imports; creates for other users", async () => {
    const { srv, client, cli } = await setup();
    await createUserWithRoles(srv, client, "alice");
    expect((await cli("templates", "push", "local", "-d", writeTemplateDir(EXAMPLE_TEMPLATE))).code).toBe(0);

    const tooMany = await cli("create", "dev", "-t", "local", "--parameter", "cpus=99", "-y");
    expect(tooMany.code).toBe(1);
    expect(tooMany.stderr).toBe("error: Invalid parameter values. (rich_parameter_values.cpus: must be at most 8)\n");
    const malformed = await cli("create", "dev", "-t", "local", "--parameter", "cpus");
    expect(malformed.code).toBe(1);
    expect(malformed.stderr).toBe('error: --parameter must look like name=value, not "cpus"\n');
    const noTemplate = await cli("create", "dev");
    expect(noTemplate.code).toBe(1);
    expect(noTemplate.stderr).toBe("error: --template is required when not running interactively\n");

    const required = writeTemplateDir({
      "template.yaml": [
        "parameters:",
        "  - name: region",
        "    description: Where to run.",
        "    options:",
        "      - { name: Europe, value: eu }",
        "      - { name: America, value: us }",
        "  - name: size",
        "    type: number",
        "agents:",
        "  - name: main",
        "",
      ].join("\n"),
    });
    expect((await cli("templates", "push", "regional", "-d", required)).code).toBe(0);
    const missing = await cli("create", "dev", "-t", "regional", "--parameter", "size=1");
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe('error: Parameter "region" is required: pass --parameter region=<value>\n');
    const bothMissing = await cli("create", "dev", "-t", "regional");
    expect(bothMissing.stderr).toBe('error: Parameters "region", "size" are required: pass --parameter region=<value> --parameter size=<value>\n');
    const badOption = await cli("create", "dev", "-t", "regional", "--parameter", "region=mars", "--parameter", "size=1");
    expect(badOption.code).toBe(1);
    expect(badOption.stderr).toContain('rich_parameter_values.region: "mars" is not one of the options (eu, us)');
    expect(json<Workspace[]>(await cli("list", "--all", "-o", "json"))).toEqual([]);

    // For another user: listed with --all, not among the caller's own.
    const forAlice = await cli("create", "alice/dev", "-t", "regional", "--parameter", "region=eu", "--parameter", "size=1", "-y");
    expect(forAlice.code).toBe(0);
    expect(forAlice.stdout).toMatch(/Workspace "alice\/dev" has been created and is running\.\n$/);
    expect(json<Workspace[]>(await cli("list", "-o", "json"))).toEqual([]);
    expect(json<Workspace[]>(await cli("list", "-a", "-o", "json")).map((w) => `${w.owner_name}/${w.name}`)).toEqual(["alice/dev"]);
    expect(json<Workspace[]>(await cli("list", "--search", "owner:alice", "-o", "json"))).toHaveLength(1);
    expect((await cli("delete", "alice/dev", "-y")).code).toBe(0);

    // An import that fails: the job's error, non-zero exit, and no template.
    const broken = writeTemplateDir({ "template.yaml": "parameters: 5\n" });
    const failed = await cli("templates", "push", "broken", "-d", broken);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(/ERROR: Job failed: template\.yaml: parameters: /);
    expect(failed.stderr).toMatch(/^error: Template import failed: template\.yaml: parameters: .+\n$/);
    const notYaml = await cli("templates", "push", "broken", "-d", writeTemplateDir({ "template.yaml": "agents: [\n" }));
    expect(notYaml.code).toBe(1);
    expect(notYaml.stderr).toMatch(/^error: Template import failed: template\.yaml: not valid YAML: /);
    expect(json<Template[]>(await cli("templates", "list", "-o", "json")).map((t) => t.name).sort()).toEqual(["local", "regional"]);

    symlinkSync("/etc/passwd", join(broken, "escape"));
    const unpackable = await cli("templates", "push", "broken", "-d", broken);
    expect(unpackable.code).toBe(1);
    expect(unpackable.stderr).toBe('error: cannot pack "escape": symlink target "/etc/passwd" is an absolute path\n');

    const badName = await cli("templates", "push", "Not_Valid", "-d", broken);
    expect(badName.code).toBe(1);
    expect(badName.stderr).toContain('"Not_Valid" is not a valid template name');
  });
});
