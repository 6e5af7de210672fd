// Dialing a workspace agent as a user: the deployment's relays and the coordinator come from the
// API; the connection itself is tailnet's AgentConn.
import { AgentConn, CoordinationClient, type AgentConnOptions } from "../tailnet/index.js";
import type { Client } from "./client.js";
import type { AgentConnectionInfo } from "./types.js";

/** Connects to the agent through the deployment's coordinator, with the deployment's connection info; see AgentConn. */
export async function dialAgentWith(client: Client, info: AgentConnectionInfo, agentId: string, opts: AgentConnOptions = {}): Promise<AgentConn> {
  const url = new URL(`/api/v2/workspaceagents/${encodeURIComponent(agentId)}/coordinate`, client.url).toString();
  const coordination = new CoordinationClient({ url, token: client.sessionToken ?? "" });
  coordination.start();
  const conn = new AgentConn(coordination, info.relay_map, { ...opts, blockDirect: opts.blockDirect || info.disable_direct_connections });
  try {
    await conn.connect();
  } catch (err) {
    conn.close();
    throw err;
  }
  return conn;
}
