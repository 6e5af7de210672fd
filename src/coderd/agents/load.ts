// The agent a user's route names, with its workspace, if the caller may act on that workspace:
// 404 when the caller may not even read it (ids of others' agents reveal nothing), 403 when it
// may read but not do the action.
import type { FastifyRequest } from "fastify";
import type { Workspace, WorkspaceAgent } from "../../database/index.js";
import type { Ctx } from "../context.js";
import { authorizeObject } from "../httpapi/authz.js";
import { NotFoundError } from "../httpapi/errors.js";
import type { Action } from "../rbac/index.js";
import { UUID_RE } from "../routes/schemas.js";

export async function loadAgent(ctx: Ctx, req: FastifyRequest, id: string, action: Action = "read"): Promise<{ agent: WorkspaceAgent; workspace: Workspace }> {
  const agent = UUID_RE.test(id) ? await ctx.store.getWorkspaceAgentById(id) : undefined;
  const workspaceId = agent && (await ctx.store.getWorkspaceIdByAgent(agent.id));
  // What an agent of a deleted workspace said stays readable; nobody connects to it any more.
  const workspace = workspaceId && (await ctx.store.getWorkspaceById(workspaceId, action === "read"));
  if (!agent || !workspace) throw new NotFoundError();
  authorizeObject(req, action, { type: "workspace", id: workspace.id, ownerId: workspace.owner_id, orgId: workspace.organization_id });
  return { agent, workspace };
}
