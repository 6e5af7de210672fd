// coderd's side of the daemon protocol: hands out jobs (oldest first, tags a subset of the
// daemon's, SKIP LOCKED so daemons on every replica share one queue), records logs and
// heartbeats, stores results, and reaps jobs whose daemon went silent.
import { randomUUID } from "node:crypto";
import type { ProvisionerDaemon as DaemonRow, ProvisionerJob, ResourceWithAgents, Store } from "../../database/index.js";
import type { NewResource } from "../../database/index.js";
import type { AcquiredJob, CompletedJob, FailedJob, JobLog, ResourceSpec } from "../../provisionerd/index.js";
import { hashSecret } from "../auth/api-key.js";
import type { Ctx } from "../context.js";
import { ConflictError } from "../httpapi/errors.js";
import { CHANNEL_JOB_POSTED, JOB_ENDED, jobLogsChannel, workspaceChannel } from "../pubsub-channels.js";

export interface ProvisionerdServerOptions {
  /** A running job whose daemon has not reported for this long is failed. */
  hangTimeoutMs: number;
  /** A pending job nobody took for this long is failed. */
  pendingTimeoutMs: number;
  /** Waiting daemons re-check the queue this often even without a notification. */
  backupPollMs?: number;
}

export interface DaemonRegistration {
  organizationId: string;
  name: string;
  tags: Record<string, string>;
  provisioners: string[];
  version: string;
  /** For built-in daemons: the replica they run in. */
  replicaId?: string;
}

export const HOST_TAG = "host";

export function resourcesToRows(resources: ResourceSpec[]): NewResource[] {
  return resources.map((r) => ({
    type: r.type,
    name: r.name,
    agents: r.agents.map((a) => ({
      id: a.id ?? randomUUID(),
      name: a.name,
      authTokenHash: a.token ? hashSecret(a.token) : null,
      directory: a.directory,
      environment: a.env,
      startupScript: a.startup_script,
      startupScriptBehavior: a.startup_script_behavior,
      startupScriptTimeoutSeconds: a.startup_script_timeout_seconds,
      shutdownScript: a.shutdown_script,
      connectionTimeoutSeconds: a.connection_timeout_seconds,
      metadata: a.metadata,
      apps: a.apps.map((p) => ({
        slug: p.slug,
        displayName: p.display_name,
        url: p.url,
        command: p.command,
        subdomain: p.subdomain,
        sharingLevel: p.share,
        healthcheck: p.healthcheck,
      })),
    })),
  }));
}

export class ProvisionerdServer {
  private readonly waiters = new Set<() => void>();
  /** Counts notifications, so a waiter can tell one arrived while it was querying. */
  private wakeups = 0;
  private unsubscribe: (() => void) | undefined;
  private reaper: NodeJS.Timeout | undefined;
  private readonly backupPollMs: number;

  constructor(
    private readonly ctx: Ctx,
    private readonly opts: ProvisionerdServerOptions,
  ) {
    this.backupPollMs = opts.backupPollMs ?? 30_000;
  }

  private get store(): Store {
    return this.ctx.store;
  }

  async start(): Promise<void> {
    const wakeAll = () => {
      this.wakeups++;
      for (const w of this.waiters) w();
    };
    this.unsubscribe = await this.ctx.pubsub.subscribe(CHANNEL_JOB_POSTED, { onMessage: wakeAll, onDrop: wakeAll });
    const interval = Math.max(250, Math.min(30_000, Math.min(this.opts.hangTimeoutMs, this.opts.pendingTimeoutMs) / 4));
    const tick = () => {
      this.reaper = setTimeout(() => {
        this.reap()
          .catch((err: unknown) => this.ctx.logger.error({ err }, "reaping provisioner jobs failed"))
          .finally(() => this.reaper && tick());
      }, interval * (0.75 + Math.random() / 2));
    };
    tick();
  }

  stop(): void {
    this.unsubscribe?.();
    clearTimeout(this.reaper);
    this.reaper = undefined;
    for (const w of this.waiters) w();
  }

  /** Tells waiting daemons on every replica that a job was queued. */
  async jobPosted(jobId: string): Promise<void> {
    await this.ctx.pubsub.publish(CHANNEL_JOB_POSTED, jobId);
  }

  async register(r: DaemonRegistration): Promise<DaemonRow> {
    return this.store.upsertProvisionerDaemon({
      id: randomUUID(),
      organization_id: r.organizationId,
      name: r.name,
      tags: r.tags,
      provisioners: r.provisioners,
      version: r.version,
      replica_id: r.replicaId ?? null,
    });
  }

  async disconnect(daemon: DaemonRow): Promise<void> {
    await this.store.disconnectProvisionerDaemon(daemon.id);
  }

  private wait(signal: AbortSignal): Promise<void> {
    // An abort that came while the caller was querying has already fired: no listener would see it.
    if (signal.aborted) return Promise.resolve();
    return new Promise((res) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        signal.removeEventListener("abort", done);
        res();
      };
      const timer = setTimeout(done, this.backupPollMs * (0.75 + Math.random() / 2));
      this.waiters.add(done);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  async acquireJob(daemon: DaemonRow, signal: AbortSignal): Promise<AcquiredJob | undefined> {
    while (!signal.aborted) {
      const seen = this.wakeups;
      const job = await this.store.acquireProvisionerJob({
        workerId: daemon.id,
        organizationId: daemon.organization_id,
        provisioners: daemon.provisioners,
        tags: daemon.tags,
      });
      await this.store.touchProvisionerDaemon(daemon.id, job?.id ?? null);
      if (job) {
        try {
          return await this.payload(job);
        } catch (err) {
          await this.store.completeProvisionerJob(job.id, daemon.id, `coderd could not prepare the job: ${(err as Error).message}`);
          await this.ended(job);
          continue;
        }
      }
      // A job posted while the query ran would otherwise wait for the backup poll.
      if (seen === this.wakeups) await this.wait(signal);
    }
    return undefined;
  }

  /** Puts back a job acquired for a daemon that no longer wanted it (it was shutting down). */
  async releaseJob(daemon: DaemonRow, jobId: string): Promise<void> {
    await this.store.releaseProvisionerJob(jobId, daemon.id);
    await this.store.touchProvisionerDaemon(daemon.id, null);
    await this.jobPosted(jobId);
  }

  private async payload(job: ProvisionerJob): Promise<AcquiredJob> {
    const file = await this.store.getFileMeta(job.file_id);
    if (!file) throw new Error("the template archive is missing");
    const base: AcquiredJob = { job_id: job.id, type: job.type, provisioner: job.provisioner, file_id: file.id, file_hash: file.hash, tags: job.tags };
    if (job.type === "template_version_import") return base;
    const build = await this.store.getWorkspaceBuildByJobId(job.id);
    if (!build) throw new Error("the workspace build is missing");
    const workspace = await this.store.getWorkspaceById(build.workspace_id, true);
    const owner = workspace && (await this.store.getUserById(workspace.owner_id));
    const template = workspace && (await this.store.getTemplateById(workspace.template_id));
    const version = await this.store.getTemplateVersionById(build.template_version_id);
    if (!workspace || !owner || !template || !version) throw new Error("the workspace, its owner or its template is missing");
    const state = await this.store.getPreviousBuildState(workspace.id, build.build_number);
    return {
      ...base,
      workspace_build: {
        transition: build.transition,
        workspace_id: workspace.id,
        workspace_name: workspace.name,
        owner_id: owner.id,
        owner_name: owner.username,
        owner_email: owner.email,
        template_name: template.name,
        template_version_name: version.name,
        build_number: build.build_number,
        parameters: await this.store.getWorkspaceBuildParameters(build.id),
        state: state ? state.toString("base64") : null,
        access_url: this.ctx.accessUrl,
      },
    };
  }

  async updateJob(daemon: DaemonRow, jobId: string, logs: JobLog[]): Promise<{ canceled: boolean }> {
    const beat = await this.store.heartbeatProvisionerJob(jobId, daemon.id);
    if (!beat) throw new ConflictError("The job is not running on this daemon (it ended or was reaped).");
    if (logs.length) {
      await this.store.insertProvisionerJobLogs(
        jobId,
        logs.map((l) => ({ created_at: new Date(l.created_at), source: l.source, level: l.level, stage: l.stage, output: l.output })),
      );
      await this.ctx.pubsub.publish(jobLogsChannel(jobId), "");
    }
    await this.store.touchProvisionerDaemon(daemon.id, jobId);
    return beat;
  }

  async completeJob(daemon: DaemonRow, done: CompletedJob): Promise<void> {
    const job = await this.store.inTx(async (tx) => {
      const job = await tx.completeProvisionerJob(done.job_id, daemon.id, null);
      if (!job) throw new ConflictError("The job is not running on this daemon (it ended or was reaped).");
      if (job.type === "template_version_import") {
        const imp = done.template_import;
        if (!imp) throw new ConflictError("A template import must report its parameters and resources.");
        const version = await tx.getTemplateVersionByJobId(job.id);
        if (version) {
          await tx.insertTemplateVersionParameters(
            imp.parameters.map((p) => ({ template_version_id: version.id, ...p, options: JSON.stringify(p.options) })),
          );
          await tx.updateTemplateVersionReadme(version.id, imp.readme);
        }
        await tx.insertJobResources(job.id, "start", resourcesToRows(imp.start_resources));
        await tx.insertJobResources(job.id, "stop", resourcesToRows(imp.stop_resources));
      } else {
        const result = done.workspace_build;
        if (!result) throw new ConflictError("A workspace build must report its state and resources.");
        const build = await tx.getWorkspaceBuildByJobId(job.id);
        if (build) {
          await tx.updateWorkspaceBuildState(build.id, result.state === null ? null : Buffer.from(result.state, "base64"));
          await tx.insertJobResources(job.id, build.transition, resourcesToRows(result.resources));
          if (build.transition === "delete") await tx.markWorkspaceDeleted(build.workspace_id);
        }
      }
      return job;
    });
    await this.store.touchProvisionerDaemon(daemon.id, null);
    await this.ended(job);
  }

  async failJob(daemon: DaemonRow, failed: FailedJob): Promise<void> {
    const job = await this.store.completeProvisionerJob(failed.job_id, daemon.id, failed.error || "the job failed");
    if (!job) throw new ConflictError("The job is not running on this daemon (it ended or was reaped).");
    if (failed.state !== undefined && job.type === "workspace_build") {
      const build = await this.store.getWorkspaceBuildByJobId(job.id);
      if (build) await this.store.updateWorkspaceBuildState(build.id, failed.state === null ? null : Buffer.from(failed.state, "base64"));
    }
    await this.store.touchProvisionerDaemon(daemon.id, null);
    await this.ended(job);
  }

  /** Followers of the job's logs drain and close; watchers of its workspace refresh. */
  async ended(job: Pick<ProvisionerJob, "id" | "type">): Promise<void> {
    await this.ctx.pubsub.publish(jobLogsChannel(job.id), JOB_ENDED);
    if (job.type === "workspace_build") {
      const build = await this.store.getWorkspaceBuildByJobId(job.id);
      if (build) await this.ctx.pubsub.publish(workspaceChannel(build.workspace_id), build.id);
    }
  }

  async reap(): Promise<void> {
    const now = Date.now();
    const reaped = await this.store.reapProvisionerJobs({
      heartbeatBefore: new Date(now - this.opts.hangTimeoutMs),
      pendingBefore: new Date(now - this.opts.pendingTimeoutMs),
      replicaGoneAfterMs: 3 * this.ctx.replicaSync.updateIntervalMs,
    });
    for (const r of reaped) {
      const output =
        r.reason === "replica_gone"
          ? `The replica ${r.replica?.hostname || "(unknown host)"} (${r.replica?.id}) whose built-in provisioner daemon ran this job stopped (shut down, crashed or lost the database): the job was marked failed by replica ${this.ctx.replicaSync.id}. Start the build again.`
          : r.reason === "hung"
          ? `The provisioner daemon running this job stopped sending heartbeats for ${Math.round(this.opts.hangTimeoutMs / 1000)}s (it crashed, was killed or lost its connection): the job was marked failed.`
          : `No provisioner daemon took this job within ${Math.round(this.opts.pendingTimeoutMs / 1000)}s: the job was marked failed. Check that a daemon with matching tags is running.`;
      await this.store.insertProvisionerJobLogs(r.id, [{ source: "provisioner_daemon", level: "error", stage: "Cleaning up", output }]);
      const job = await this.store.getProvisionerJobById(r.id);
      this.ctx.logger.warn({ job_id: r.id, reason: r.reason, replica_id: r.replica?.id }, "provisioner job reaped: %s", output);
      if (job) await this.ended(job);
    }
  }
}

export type { ResourceWithAgents };
