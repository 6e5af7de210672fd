// Waiting on a workspace's agent through the live watch (no polling).
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
