// API objects that need more than one row: jobs (with queue position and why they wait),
// builds (with resources) and workspaces (with their latest build). Batched per request.
import type * as sdk from "../codersdk/index.js";
import type { ProvisionerJob, Replica, ResourceWithAgents, Template, TemplateVersion, Workspace, WorkspaceBuild } from "../database/index.js";
import { agentStatus } from "./agents/status.js";
import type { Ctx } from "./context.js";

/** A daemon that has not been seen for this long cannot be counted on to take a job. */
const DAEMON_FRESH_MS = 90_000;

export async function presentJob(ctx: Ctx, job: ProvisionerJob): Promise<sdk.ProvisionerJob> {
  let queue = { position: 0, size: 0 };
  let detail = "";
  if (job.job_status === "pending") {
    queue = await ctx.store.getJobQueuePosition(job);
    const matching = await ctx.store.countMatchingProvisionerDaemons({
      organizationId: job.organization_id,
      provisioner: job.provisioner,
      tags: job.tags,
      since: new Date(Date.now() - DAEMON_FRESH_MS),
    });
    if (matching === 0) {
      detail = `No provisioner daemon matches tags ${JSON.stringify(job.tags)} (provisioner "${job.provisioner}"): start one with these tags, e.g. coder provisioner start ${Object.entries(job.tags)
        .map(([k, v]) => `--tag ${k}=${v}`)
        .join(" ")}`.trim();
    } else if (queue.position > 0) {
      detail = `Waiting for a provisioner daemon: ${queue.position} job(s) ahead.`;
    }
  }
  return {
    id: job.id,
    type: job.type,
    status: job.job_status,
    created_at: job.created_at.toISOString(),
    started_at: job.started_at?.toISOString() ?? null,
    completed_at: job.completed_at?.toISOString() ?? null,
    canceled_at: job.canceled_at?.toISOString() ?? null,
    error: job.error,
    worker_id: job.worker_id,
    file_id: job.file_id,
    tags: job.tags,
    queue_position: queue.position,
    queue_size: queue.size,
    status_detail: detail,
  };
}

export function presentResources(resources: ResourceWithAgents[]): sdk.WorkspaceResource[] {
  return resources.map((r) => ({
    id: r.id,
    job_id: r.job_id,
    transition: r.transition,
    type: r.type,
    name: r.name,
    agents: r.agents.map((a) => ({
      id: a.id,
      name: a.name,
      directory: a.directory,
      environment: a.environment,
      startup_script: a.startup_script,
      startup_script_behavior: a.startup_script_behavior,
      connection_timeout_seconds: a.connection_timeout_seconds,
      status: agentStatus(a),
      lifecycle_state: a.lifecycle_state as sdk.WorkspaceAgentLifecycle,
      first_connected_at: a.first_connected_at?.toISOString() ?? null,
      last_connected_at: a.last_connected_at?.toISOString() ?? null,
      disconnected_at: a.disconnected_at?.toISOString() ?? null,
      last_connected_replica_id: a.last_connected_replica_id,
      started_at: a.started_at?.toISOString() ?? null,
      ready_at: a.ready_at?.toISOString() ?? null,
      version: a.version,
      operating_system: a.operating_system,
      ssh_host_public_key: a.ssh_host_public_key,
      metadata: (a.metadata as Array<{ key: string; display_name: string; interval: number; timeout: number }>).map((m) => {
        const v = a.metadata_values[m.key];
        return { key: m.key, display_name: m.display_name, interval: m.interval, timeout: m.timeout, value: v?.value ?? "", error: v?.error ?? "", collected_at: v?.collected_at ?? null };
      }),
      stats: a.stats && a.stats_updated_at ? { ...a.stats, collected_at: a.stats_updated_at.toISOString() } : null,
      apps: a.apps.map((p) => ({
        id: p.id,
        slug: p.slug,
        display_name: p.display_name,
        url: p.url,
        command: p.command,
        subdomain: p.subdomain,
        sharing_level: p.sharing_level,
        healthcheck: p.healthcheck,
        health: (p.healthcheck ? p.health : "disabled") as sdk.WorkspaceApp["health"],
      })),
    })),
  }));
}

export async function presentTemplateVersion(ctx: Ctx, v: TemplateVersion, job?: ProvisionerJob): Promise<sdk.TemplateVersion> {
  const j = job ?? (await ctx.store.getProvisionerJobById(v.job_id))!;
  return {
    id: v.id,
    template_id: v.template_id,
    organization_id: v.organization_id,
    name: v.name,
    message: v.message,
    readme: v.readme,
    created_at: v.created_at.toISOString(),
    created_by: v.created_by,
    job: await presentJob(ctx, j),
  };
}

export function presentTemplate(t: Template): sdk.Template {
  return {
    id: t.id,
    organization_id: t.organization_id,
    name: t.name,
    display_name: t.display_name,
    description: t.description,
    active_version_id: t.active_version_id,
    created_by: t.created_by,
    created_at: t.created_at.toISOString(),
    updated_at: t.updated_at.toISOString(),
  };
}

export function workspaceStatus(transition: sdk.WorkspaceTransition, job: sdk.ProvisionerJobStatus): sdk.WorkspaceStatus {
  switch (job) {
    case "pending":
      return "pending";
    case "running":
      return transition === "start" ? "starting" : transition === "stop" ? "stopping" : "deleting";
    case "succeeded":
      return transition === "start" ? "running" : transition === "stop" ? "stopped" : "deleted";
    default:
      return job;
  }
}

export async function presentBuilds(ctx: Ctx, builds: WorkspaceBuild[]): Promise<sdk.WorkspaceBuild[]> {
  if (builds.length === 0) return [];
  const jobs = new Map((await ctx.store.getProvisionerJobsByIds(builds.map((b) => b.job_id))).map((j) => [j.id, j]));
  const resources = await ctx.store.getJobResources(builds.map((b) => b.job_id));
  const out: sdk.WorkspaceBuild[] = [];
  const cache = new Map<string, unknown>();
  const memo = async <T>(key: string, load: () => Promise<T>): Promise<T> => {
    if (!cache.has(key)) cache.set(key, await load());
    return cache.get(key) as T;
  };
  for (const b of builds) {
    const job = jobs.get(b.job_id)!;
    const workspace = await memo(`w:${b.workspace_id}`, () => ctx.store.getWorkspaceById(b.workspace_id, true));
    const owner = await memo(`u:${workspace?.owner_id}`, () => ctx.store.getUserById(workspace!.owner_id));
    const initiator = await memo(`u:${b.initiator_id}`, () => ctx.store.getUserById(b.initiator_id));
    const version = await memo(`v:${b.template_version_id}`, () => ctx.store.getTemplateVersionById(b.template_version_id));
    const sjob = await presentJob(ctx, job);
    out.push({
      id: b.id,
      workspace_id: b.workspace_id,
      workspace_name: workspace?.name ?? "",
      workspace_owner_id: workspace?.owner_id ?? "",
      workspace_owner_name: owner?.username ?? "",
      template_version_id: b.template_version_id,
      template_version_name: version?.name ?? "",
      build_number: b.build_number,
      transition: b.transition,
      initiator_id: b.initiator_id,
      initiator_name: initiator?.username ?? "",
      reason: b.reason,
      created_at: b.created_at.toISOString(),
      status: workspaceStatus(b.transition, sjob.status),
      job: sjob,
      resources: presentResources(resources.filter((r) => r.job_id === b.job_id)),
    });
  }
  return out;
}

export async function presentWorkspaces(ctx: Ctx, workspaces: Workspace[]): Promise<sdk.Workspace[]> {
  const latest = new Map((await ctx.store.getLatestWorkspaceBuilds(workspaces.map((w) => w.id))).map((b) => [b.workspace_id, b]));
  const builds = new Map((await presentBuilds(ctx, [...latest.values()])).map((b) => [b.workspace_id, b]));
  const out: sdk.Workspace[] = [];
  for (const w of workspaces) {
    const template = await ctx.store.getTemplateById(w.template_id);
    const owner = await ctx.store.getUserById(w.owner_id);
    const build = builds.get(w.id)!;
    out.push({
      id: w.id,
      organization_id: w.organization_id,
      owner_id: w.owner_id,
      owner_name: owner?.username ?? "",
      template_id: w.template_id,
      template_name: template?.name ?? "",
      template_active_version_id: template?.active_version_id ?? "",
      name: w.name,
      created_at: w.created_at.toISOString(),
      updated_at: w.updated_at.toISOString(),
      last_used_at: w.last_used_at.toISOString(),
      latest_build: build,
      outdated: template ? template.active_version_id !== build.template_version_id : false,
    });
  }
  return out;
}

export function presentReplica(r: Replica): sdk.Replica {
  return {
    id: r.id,
    hostname: r.hostname,
    created_at: r.created_at.toISOString(),
    started_at: r.started_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
    relay_address: r.relay_address,
    region_id: r.region_id,
    version: r.version,
    error: r.error,
    database_latency: r.database_latency,
  };
}
