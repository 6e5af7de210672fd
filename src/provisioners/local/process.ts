// Agent processes of local workspaces: started detached (they outlive the daemon that started
// them), stopped by pid from the workspace's state, after checking the pid is still that agent.
import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Whether pid is still the agent we started (not a recycled pid of something else). */
export function isOurAgent(pid: number, agentId: string): boolean {
  try {
    const environ = readFileSync(`/proc/${pid}/environ`, "utf8");
    return environ.split("\0").includes(`CODER_AGENT_ID=${agentId}`);
  } catch {
    return false;
  }
}

export function startDetached(cmd: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; logFile: string }): number {
  const fd = openSync(opts.logFile, "a", 0o600);
  try {
    const child = spawn(cmd[0]!, cmd.slice(1), { cwd: opts.cwd, env: opts.env, detached: true, stdio: ["ignore", fd, fd] });
    child.unref();
    if (child.pid === undefined) throw new Error(`could not start ${cmd[0]}`);
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

/**
 * Signals the agent's whole process group (it was started detached, as its leader): that reaches
 * an agent inside a bubblewrap sandbox, which does not forward signals, and whatever it started.
 */
function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    process.kill(pid, sig);
  }
}

/** SIGTERM, then SIGKILL after the grace period; resolves when the process is gone. */
export async function stopProcess(pid: number, graceMs: number, signal?: AbortSignal): Promise<"exited" | "killed"> {
  try {
    signalGroup(pid, "SIGTERM");
  } catch {
    return "exited";
  }
  const deadline = Date.now() + graceMs;
  while (alive(pid)) {
    if (Date.now() > deadline || signal?.aborted) {
      try {
        signalGroup(pid, "SIGKILL");
      } catch {
        // gone meanwhile
      }
      while (alive(pid)) await new Promise((r) => setTimeout(r, 20));
      return "killed";
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return "exited";
}
