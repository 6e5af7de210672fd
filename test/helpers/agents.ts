// Waiting on a workspace's agent through the live watch (no polling), and its process.
import { spawn } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import type { Client, WorkspaceAgent } from "../../src/codersdk/index.js";

/** Resolves with the workspace's first agent once it satisfies the predicate. */
export async function agentWhen(client: Client, workspaceId: string, ok: (a: WorkspaceAgent) => boolean): Promise<WorkspaceAgent> {
  const abort = new AbortController();
  try {
    for await (const w of client.watchWorkspace(workspaceId, abort.signal)) {
      const a = w.latest_build.resources.flatMap((r) => r.agents)[0];
      if (a && ok(a)) return a;
    }
  } finally {
    abort.abort();
  }
  throw new Error("the watch ended before the agent got there");
}

export interface AgentProcess {
  pid: number;
  argv: string[];
  env: Record<string, string>;
  cwd: string;
}

/** The running process of an agent (found by the CODER_AGENT_ID the driver gave it). */
export function agentProcess(agentId: string): AgentProcess {
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const env = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").filter(Boolean);
      if (!env.includes(`CODER_AGENT_ID=${agentId}`)) continue;
      const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
      // The agent itself, not a shell or script it started (those inherit its environment).
      if (!argv.includes("agent")) continue;
      return { pid: Number(pid), argv, env: Object.fromEntries(env.map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)])), cwd: readlinkSync(`/proc/${pid}/cwd`) };
    } catch {
      // gone, or not ours to read
    }
  }
  throw new Error(`no process for agent ${agentId}`);
}

/** Starts the agent again as its supervisor would: same command, environment and directory. */
export function restartAgentProcess(p: AgentProcess): number {
  const child = spawn(p.argv[0]!, p.argv.slice(1), { cwd: p.cwd, env: p.env, detached: true, stdio: "ignore" });
  child.unref();
  return child.pid!;
}
