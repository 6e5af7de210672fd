// The local driver: a workspace is a directory on the daemon's host, and each of its agents is
// a `coder agent` process there, optionally inside a bubblewrap sandbox. The state records the
// directory and the agents' pids, so any later build (from any daemon on this host, also after
// a daemon restart) knows what to stop.
import { randomBytes, randomUUID } from "node:crypto";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, rm } from "node:fs/promises";
import { hostname } from "node:os";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import type { AgentSpec, ResourceSpec, Transition, WorkspaceBuildInput } from "../../provisionerd/proto.js";
import { TemplateError, type ApplyRequest, type ApplyResult, type Driver, type DriverLog, type ParseResult } from "../types.js";
import { parameterSpecs, readManifest, type AgentManifest, type Manifest } from "./manifest.js";
import { alive, isOurAgent, startDetached, stopProcess } from "./process.js";

export interface LocalDriverOptions {
  /** Where workspace directories are created. */
  workspacesDir: string;
  /** The command that runs an agent, e.g. [node, bin/coder.js, "agent"]. */
  agentCommand: string[];
  /** Directories the agent command needs, kept visible (read-only) inside a bwrap sandbox. */
  agentReadOnlyPaths?: string[];
  /** How long an agent gets to run its shutdown script before SIGKILL. */
  stopGraceMs?: number;
}

interface LocalState {
  version: 1;
  host: string;
  dir: string;
  agents: Array<{ id: string; name: string; pid: number }>;
}

const RESOURCE_TYPE = "local_workspace";

function decodeState(state: string | null): LocalState | undefined {
  if (!state) return undefined;
  const s = JSON.parse(Buffer.from(state, "base64").toString("utf8")) as LocalState;
  return s.version === 1 ? s : undefined;
}

const encodeState = (s: LocalState) => Buffer.from(JSON.stringify(s)).toString("base64");

/** {{param.x}}, {{workspace.name}}, {{workspace.owner}}, {{workspace.dir}} in agent settings. */
function interpolate(text: string, vars: Record<string, string>): string {
  return text.replace(/\{\{\s*([a-z_.][a-z0-9_.-]*)\s*\}\}/gi, (whole, key: string) => vars[key] ?? whole);
}

function agentSpec(a: AgentManifest, vars: Record<string, string>, workspaceDir: string | undefined): AgentSpec {
  const dir = interpolate(a.dir, vars);
  return {
    id: randomUUID(),
    name: a.name,
    directory: workspaceDir ? (dir ? (isAbsolute(dir) ? dir : join(workspaceDir, dir)) : workspaceDir) : dir,
    env: Object.fromEntries(Object.entries(a.env).map(([k, v]) => [k, interpolate(v, vars)])),
    startup_script: interpolate(a.startup_script, vars),
    startup_script_behavior: a.startup_script_behavior,
    startup_script_timeout_seconds: a.startup_script_timeout,
    shutdown_script: interpolate(a.shutdown_script, vars),
    connection_timeout_seconds: a.connection_timeout,
    metadata: a.metadata,
    apps: a.apps.map((p) => ({
      slug: p.slug,
      display_name: p.display_name,
      url: interpolate(p.url, vars),
      command: interpolate(p.command, vars),
      subdomain: p.subdomain,
      share: p.share,
      healthcheck: p.healthcheck ?? null,
    })),
  };
}

function hasBwrap(): boolean {
  try {
    execFileSync("bwrap", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

export class LocalDriver implements Driver {
  readonly name = "local";
  private readonly workspacesDir: string;

  constructor(private readonly opts: LocalDriverOptions) {
    this.workspacesDir = resolve(opts.workspacesDir);
  }

  async parse(templateDir: string, log: DriverLog): Promise<ParseResult> {
    const m = await readManifest(templateDir);
    const parameters = parameterSpecs(m);
    log("info", `Parsed template.yaml: ${parameters.length} parameter(s), ${m.agents.length} agent(s)`, "Parse template");
    const readmePath = join(templateDir, "README.md");
    const readme = existsSync(readmePath) ? await readFile(readmePath, "utf8") : "";
    return { parameters, readme };
  }

  async plan(templateDir: string, transition: Transition): Promise<ResourceSpec[]> {
    const m = await readManifest(templateDir);
    if (transition !== "start") return transition === "stop" ? [{ type: RESOURCE_TYPE, name: "workspace", agents: [] }] : [];
    return [{ type: RESOURCE_TYPE, name: "workspace", agents: m.agents.map((a) => agentSpec(a, {}, undefined)) }];
  }

  async apply(req: ApplyRequest, signal: AbortSignal, log: DriverLog): Promise<ApplyResult> {
    const m = await readManifest(req.templateDir);
    const b = req.build;
    const previous = decodeState(b.state);
    const host = hostname();
    if (previous && previous.host !== host) {
      throw new TemplateError(`this workspace lives on host "${previous.host}", but this provisioner daemon runs on "${host}"`);
    }
    const dir = previous?.dir ?? join(this.workspacesDir, b.owner_name, `${b.workspace_name}-${b.workspace_id.slice(0, 8)}`);
    // Any daemon on this host may manage the workspace (each may have its own cache dir), but only a
    // directory that is this workspace's: …/workspaces/<owner>/<name>-<id>. State is never trusted
    // to point the driver at anything else, which it would stop processes in and delete.
    if (!isAbsolute(dir) || !basename(dir).endsWith(`-${b.workspace_id.slice(0, 8)}`) || basename(dirname(dirname(dir))) !== "workspaces") {
      throw new TemplateError(`refusing to manage ${dir}: it is not this workspace's directory`);
    }

    if (previous?.agents.length) await this.stopAgents(previous, signal, log);
    if (b.transition === "stop") {
      return { state: encodeState({ version: 1, host, dir, agents: [] }), resources: [{ type: RESOURCE_TYPE, name: b.workspace_name, agents: [] }] };
    }
    if (b.transition === "delete") {
      log("info", `Removing ${dir}`, "Delete workspace");
      await rm(dir, { recursive: true, force: true });
      return { state: null, resources: [] };
    }
    return this.start(m, b, host, dir, signal, log);
  }

  private async start(m: Manifest, b: WorkspaceBuildInput, host: string, dir: string, signal: AbortSignal, log: DriverLog): Promise<ApplyResult> {
    if (m.isolation === "bwrap" && !hasBwrap()) {
      throw new TemplateError(`template.yaml asks for isolation: bwrap, but bubblewrap (bwrap) is not installed on ${host}`);
    }
    await mkdir(dir, { recursive: true, mode: 0o755 });
    await mkdir(join(dir, ".coder"), { recursive: true, mode: 0o700 });
    log("info", `Workspace directory ${dir}`, "Start workspace");
    const vars: Record<string, string> = {
      "workspace.name": b.workspace_name,
      "workspace.owner": b.owner_name,
      "workspace.dir": dir,
      ...Object.fromEntries(b.parameters.map((p) => [`param.${p.name}`, p.value])),
    };
    const agents: AgentSpec[] = [];
    const running: LocalState["agents"] = [];
    for (const a of m.agents) {
      if (signal.aborted) throw new Error("canceled");
      const spec = agentSpec(a, vars, dir);
      spec.token = randomBytes(24).toString("base64url");
      const env: NodeJS.ProcessEnv = {
        PATH: process.env.PATH,
        HOME: dir,
        LANG: process.env.LANG ?? "C.UTF-8",
        CODER_AGENT_URL: b.access_url,
        CODER_AGENT_TOKEN: spec.token,
        CODER_AGENT_ID: spec.id,
      };
      let cmd = this.opts.agentCommand;
      if (m.isolation === "bwrap") {
        // Later mounts cover earlier ones: the private /tmp first, so that the agent's own files and the
        // workspace stay visible when they live under /tmp.
        const readOnly = (this.opts.agentReadOnlyPaths ?? []).flatMap((p) => ["--ro-bind", p, p]);
        cmd = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", ...readOnly, "--bind", dir, dir, "--unshare-pid", "--chdir", dir, ...cmd];
      }
      const pid = startDetached(cmd, { cwd: dir, env, logFile: join(dir, ".coder", `agent-${a.name}.log`) });
      log("info", `Started agent "${a.name}" (pid ${pid})`, "Start workspace");
      agents.push(spec);
      running.push({ id: spec.id, name: a.name, pid });
    }
    return {
      state: encodeState({ version: 1, host, dir, agents: running }),
      resources: [{ type: RESOURCE_TYPE, name: b.workspace_name, agents }],
    };
  }

  private async stopAgents(state: LocalState, signal: AbortSignal, log: DriverLog): Promise<void> {
    for (const a of state.agents) {
      if (!alive(a.pid) || !isOurAgent(a.pid, a.id)) {
        log("info", `Agent "${a.name}" is not running`, "Stop workspace");
        continue;
      }
      const how = await stopProcess(a.pid, this.opts.stopGraceMs ?? 30_000, signal);
      log(how === "exited" ? "info" : "warn", `Agent "${a.name}" (pid ${a.pid}) ${how === "exited" ? "stopped" : "did not stop in time and was killed"}`, "Stop workspace");
    }
  }
}
