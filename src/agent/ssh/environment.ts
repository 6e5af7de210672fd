// The environment every program the agent starts for the user sees (SSH sessions, web terminals):
// the agent's own, minus its secrets, plus what a login would set, plus the workspace's.
import { homedir, userInfo } from "node:os";

/** Variables of the agent itself that must not leak into the user's sessions. */
const AGENT_ONLY_ENV = ["CODER_AGENT_TOKEN"];

export function sessionEnvironment(shell: string, workspaceEnv: Record<string, string> = {}): Record<string, string> {
  const user = userInfo();
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !AGENT_ONLY_ENV.includes(k)) env[k] = v;
  return { ...env, USER: user.username, LOGNAME: user.username, HOME: homedir(), SHELL: shell, ...workspaceEnv };
}
