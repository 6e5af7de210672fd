// Runs a startup or shutdown script with the workspace's environment, each output line logged.
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

export type ScriptResult = "ok" | "error" | "timeout";

export function runScript(
  script: string,
  opts: {
    cwd: string;
    env: Record<string, string>;
    timeoutSeconds: number;
    onLine: (line: string, stream: "stdout" | "stderr") => void;
    signal?: AbortSignal;
    /** The script's process group (its pid), which its background processes share. */
    onSpawn?: (pgid: number) => void;
  },
): Promise<{ result: ScriptResult; code: number | null }> {
  return new Promise((resolve) => {
    // Its own process group, so a timeout stops whatever the script started too.
    const child = spawn("/bin/sh", ["-c", script], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ["ignore", "pipe", "pipe"], detached: true });
    if (child.pid !== undefined) opts.onSpawn?.(child.pid);
    createInterface({ input: child.stdout! }).on("line", (l) => opts.onLine(l, "stdout"));
    createInterface({ input: child.stderr! }).on("line", (l) => opts.onLine(l, "stderr"));
    let timedOut = false;
    const kill = () => {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // already gone
      }
    };
    const timer = opts.timeoutSeconds > 0 ? setTimeout(() => ((timedOut = true), kill()), opts.timeoutSeconds * 1000) : undefined;
    opts.signal?.addEventListener("abort", kill, { once: true });
    child.on("error", (err) => {
      opts.onLine(`could not run the script: ${err.message}`, "stderr");
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ result: timedOut ? "timeout" : code === 0 ? "ok" : "error", code });
    });
  });
}
