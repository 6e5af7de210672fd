// What `coder ssh`, `coder port-forward`, `coder speedtest` and `coder ping` share: resolve
// "<workspace>[.<agent>]", wait for its agent, and open the tunnel to it.
import { agentDialer, type AgentConn, type Workspace, type WorkspaceAgent } from "../codersdk/index.js";
import { CliError } from "./errors.js";
import { authenticatedClient, type GlobalOptions } from "./session.js";
import { agentByRef, waitForAgent } from "./workspace-target.js";

export interface DialedAgent {
  workspace: Workspace;
  agent: WorkspaceAgent;
  conn: AgentConn;
}

export interface DialTargetOptions {
  /**
   * "ready": wait for the agent to connect and (when its startup script blocks logins) finish
   * starting, as waitForAgent does; "connected": a round trip needs no more than a connected
   * agent, so only a connecting one is waited for, and any other is dialed at once; "none": dial
   * whatever the agent's state.
   */
  wait: "ready" | "connected" | "none";
  /** Say nothing while waiting (stderr belongs to OpenSSH under --stdio). */
  quiet?: boolean;
  timeoutMs?: number;
}

export async function dialTarget(globals: GlobalOptions, target: string, opts: DialTargetOptions): Promise<DialedAgent> {
  const client = authenticatedClient(globals);
  // Started first: it does not need the agent, so it overlaps with finding it (start-up time is
  // what OpenSSH users wait for on every `ssh coder.<workspace>`).
  const dial = agentDialer(client);
  const { workspace, agent: found } = await agentByRef(client, target);
  let agent = found;
  // A disconnected agent may be back already (its status lags): the dial says for sure.
  const lagging = found.status === "disconnected" || found.status === "timeout";
  if (opts.wait === "ready" || (opts.wait === "connected" && found.status === "connecting")) agent = await waitForAgent(client, workspace, found, opts.quiet);
  try {
    const conn = await dial(agent.id, { timeoutMs: opts.timeoutMs ?? 30_000 });
    return { workspace, agent, conn };
  } catch (err) {
    const status = lagging ? ` (it is ${found.status}; check the workspace with coder show ${workspace.name})` : "";
    throw new CliError(`Cannot reach the agent of "${target}"${status}: ${(err as Error).message}`);
  }
}

/** Resolves on the first SIGINT or SIGTERM (and stops listening for them). */
export function untilSignal(): { promise: Promise<NodeJS.Signals>; cancel(): void } {
  let cancel = () => {};
  const promise = new Promise<NodeJS.Signals>((resolve) => {
    const onSignal = (sig: NodeJS.Signals) => {
      cancel();
      resolve(sig);
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    cancel = () => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    };
  });
  return { promise, cancel };
}

/** Milliseconds as people read them: "29ms", "3.2ms", "0.41ms". */
export function formatMs(ms: number): string {
  if (ms >= 10) return `${Math.round(ms)}ms`;
  if (ms >= 1) return `${ms.toFixed(1)}ms`;
  return `${ms.toFixed(2)}ms`;
}

/**
 * Gives the direct path a moment to come up (it is tried right after the relayed session), so a
 * measurement shows what the user will get. Resolves at once when direct paths are blocked.
 */
export function settlePath(conn: AgentConn, ms = 2_000): Promise<void> {
  if (conn.path === "direct" || /^(1|true|yes)$/i.test(process.env.CODER_BLOCK_DIRECT ?? "")) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      conn.off("path", onPath);
      resolve();
    };
    const onPath = (p: string) => p === "direct" && done();
    const timer = setTimeout(done, ms);
    conn.on("path", onPath);
  });
}
