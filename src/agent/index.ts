// The workspace agent: the daemon inside a workspace.
export { Agent, PING_INTERVAL_MS, type AgentOptions } from "./agent.js";
export { AgentServices, ReconnectingPtys, parseStreamHeader, runSpeedtest, type AgentServiceStats, type StreamHeader } from "./services/index.js";
