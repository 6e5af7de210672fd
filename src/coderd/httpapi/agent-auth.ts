// Workspace agents authenticate with their own token (Coder-Session-Token header); only its
// SHA-256 is stored. An agent token never passes as a user's, nor the other way round.
import type { FastifyRequest } from "fastify";
import { SESSION_TOKEN_HEADER } from "../../codersdk/index.js";
import type { WorkspaceAgent } from "../../database/index.js";
import { hashSecret } from "../auth/api-key.js";
import type { Ctx } from "../context.js";
import { UnauthorizedError } from "./errors.js";

export interface AgentContext {
  agent: WorkspaceAgent;
  workspaceId: string;
  ownerId: string;
  buildId: string;
}

declare module "fastify" {
  interface FastifyRequest {
    agentAuth?: AgentContext;
  }
}

export async function authenticateAgent(ctx: Ctx, req: FastifyRequest): Promise<void> {
  const token = req.headers[SESSION_TOKEN_HEADER.toLowerCase()];
  if (typeof token !== "string" || !token) throw new UnauthorizedError("Agent token required.", `Send it in the "${SESSION_TOKEN_HEADER}" header.`);
  const found = await ctx.store.getAgentByTokenHash(hashSecret(token));
  if (!found) throw new UnauthorizedError("Invalid agent token.", "The workspace may have been rebuilt or deleted.");
  req.agentAuth = found;
}

export function requireAgent(req: FastifyRequest): AgentContext {
  if (!req.agentAuth) throw new UnauthorizedError("Agent token required.");
  return req.agentAuth;
}
