// An agent's connection status, derived from what the database records of it.
import type { WorkspaceAgent } from "../../database/index.js";

/** The agent pings this often; three missed pings mean it is gone. */
export const AGENT_PING_INTERVAL_MS = 5_000;
const MISSED_PINGS = 3;

export type AgentStatus = "connecting" | "connected" | "disconnected" | "timeout";

export function agentStatus(a: Pick<WorkspaceAgent, "first_connected_at" | "last_connected_at" | "disconnected_at" | "created_at" | "connection_timeout_seconds">, now = Date.now()): AgentStatus {
  if (!a.first_connected_at) {
    const waited = now - a.created_at.getTime();
    return a.connection_timeout_seconds > 0 && waited > a.connection_timeout_seconds * 1000 ? "timeout" : "connecting";
  }
  if (a.disconnected_at && (!a.last_connected_at || a.disconnected_at >= a.last_connected_at)) return "disconnected";
  if (a.last_connected_at && now - a.last_connected_at.getTime() > MISSED_PINGS * AGENT_PING_INTERVAL_MS) return "disconnected";
  return "connected";
}
