import type { Kysely } from "kysely";
import type { DB, WorkspaceAgent, WorkspaceApp, WorkspaceResource, WorkspaceTransition } from "../schema.js";

export interface NewResource {
  type: string;
  name: string;
  agents: Array<{
    id: string;
    name: string;
    authTokenHash: Buffer | null;
    directory: string;
    environment: Record<string, string>;
    startupScript: string;
    startupScriptBehavior: string;
    startupScriptTimeoutSeconds: number;
    shutdownScript: string;
    connectionTimeoutSeconds: number;
    metadata: unknown[];
    apps: Array<{ slug: string; displayName: string; url: string; command: string; subdomain: boolean; sharingLevel: string; healthcheck: { url: string; interval: number; threshold: number } | null }>;
  }>;
}

export async function insertJobResources(db: Kysely<DB>, jobId: string, transition: WorkspaceTransition, resources: NewResource[]): Promise<void> {
  for (const r of resources) {
    const resourceId = crypto.randomUUID();
    await db.insertInto("workspace_resources").values({ id: resourceId, job_id: jobId, transition, type: r.type, name: r.name }).execute();
    for (const a of r.agents) {
      await db
        .insertInto("workspace_agents")
        .values({
          id: a.id,
          resource_id: resourceId,
          name: a.name,
          auth_token_hash: a.authTokenHash,
          directory: a.directory,
          environment: JSON.stringify(a.environment),
          startup_script: a.startupScript,
          startup_script_behavior: a.startupScriptBehavior,
          startup_script_timeout_seconds: a.startupScriptTimeoutSeconds,
          shutdown_script: a.shutdownScript,
          connection_timeout_seconds: a.connectionTimeoutSeconds,
          metadata: JSON.stringify(a.metadata),
        })
        .execute();
      if (a.apps.length) {
        await db
          .insertInto("workspace_apps")
          .values(
            a.apps.map((app) => ({
              id: crypto.randomUUID(),
              agent_id: a.id,
              slug: app.slug,
              display_name: app.displayName,
              url: app.url,
              command: app.command,
              subdomain: app.subdomain,
              sharing_level: app.sharingLevel,
              healthcheck: JSON.stringify(app.healthcheck),
            })),
          )
          .execute();
      }
    }
  }
}

export interface ResourceWithAgents extends WorkspaceResource {
  agents: Array<WorkspaceAgent & { apps: WorkspaceApp[] }>;
}

export async function getJobResources(db: Kysely<DB>, jobIds: string[]): Promise<ResourceWithAgents[]> {
  if (jobIds.length === 0) return [];
  const resources = await db.selectFrom("workspace_resources").selectAll().where("job_id", "in", jobIds).orderBy("created_at").orderBy("name").execute();
  if (resources.length === 0) return [];
  const agents = await db.selectFrom("workspace_agents").selectAll().where("resource_id", "in", resources.map((r) => r.id)).orderBy("name").execute();
  const apps = agents.length
    ? await db.selectFrom("workspace_apps").selectAll().where("agent_id", "in", agents.map((a) => a.id)).orderBy("slug").execute()
    : [];
  return resources.map((r) => ({
    ...r,
    agents: agents.filter((a) => a.resource_id === r.id).map((a) => ({ ...a, apps: apps.filter((p) => p.agent_id === a.id) })),
  }));
}
