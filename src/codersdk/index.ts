export { Client, SESSION_TOKEN_COOKIE, SESSION_TOKEN_HEADER, type UsersQuery } from "./client.js";
export { CoderSDKError, isCoderSDKError } from "./errors.js";
export * from "./deployment.js";
export * from "./duration.js";
export type * from "./types.js";
export type { AgentConn, AgentConnOptions, AgentPath } from "../tailnet/index.js";

/** Connects to a workspace agent; the networking code loads only when a command needs it. */
export async function dialAgent(...args: Parameters<typeof import("./agent-conn.js").dialAgent>): Promise<import("../tailnet/index.js").AgentConn> {
  return (await import("./agent-conn.js")).dialAgent(...args);
}
