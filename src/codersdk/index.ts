export { Client, SESSION_TOKEN_COOKIE, SESSION_TOKEN_HEADER, type UsersQuery } from "./client.js";
export { CoderSDKError, isCoderSDKError } from "./errors.js";
export * from "./deployment.js";
export * from "./duration.js";
export type * from "./types.js";
export type { AgentConn, AgentConnOptions, AgentPath } from "../tailnet/index.js";

// Types only: erased, so the networking code still loads only on a dial.
import type { AgentConn, AgentConnOptions } from "../tailnet/index.js";
import type { Client } from "./client.js";

/**
 * Starts what every dial needs and that does not depend on the agent, the deployment's connection
 * info and the networking code (loaded only when a command needs it), so that both overlap with
 * finding the agent; a dial waits for them.
 */
export function agentDialer(client: Client): (agentId: string, opts?: AgentConnOptions) => Promise<AgentConn> {
  const ready = Promise.all([import("./agent-conn.js"), client.agentConnectionInfo()]);
  ready.catch(() => {}); // reported by the dial that waits for it, if one comes
  return async (agentId, opts) => {
    const [{ dialAgentWith }, info] = await ready;
    return dialAgentWith(client, info, agentId, opts);
  };
}

/** Connects to a workspace agent; see AgentConn. */
export function dialAgent(client: Client, agentId: string, opts?: AgentConnOptions): Promise<AgentConn> {
  return agentDialer(client)(agentId, opts);
}
