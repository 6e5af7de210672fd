// A provisioner daemon: takes one job at a time from coderd, runs it with a driver, streams its
// logs (which also carry the heartbeat) and reports the result. Shutting down either lets the
// current job finish (SIGHUP/SIGTERM) or cancels it, failing the build (SIGINT).
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import { extractArchive } from "../archive/index.js";
import type { Driver } from "../provisioners/index.js";
import type { AcquiredJob, CompletedJob, JobLog, LogLevel, ProvisionerdClient } from "./proto.js";

export interface DaemonOptions {
  client: ProvisionerdClient;
  drivers: Record<string, Driver>;
  /** Scratch space: each job's template is extracted under it and removed afterwards. */
  workDir: string;
  logger: Logger;
  /** How often a running job reports (logs are sent at least this often; also the heartbeat). */
  updateIntervalMs?: number;
  /** Told when each job starts and how it ended (metrics). */
  observer?: JobObserver;
}

/** Called as a job is acquired; the returned function once it was reported as succeeded or failed. */
export interface JobObserver {
  jobStarted(job: AcquiredJob): (status: "success" | "failed") => void;
}

export type ShutdownMode = "graceful" | "cancel";

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((res) => {
    if (signal?.aborted) return res();
    const t = setTimeout(res, ms);
    signal?.addEventListener("abort", () => (clearTimeout(t), res()), { once: true });
  });

class JobCanceled extends Error {}

export class ProvisionerDaemon {
  private stopping = false;
  private acquiring: AbortController | undefined;
  private jobAbort: AbortController | undefined;
  private current: AcquiredJob | undefined;
  private loop: Promise<void> | undefined;
  private interruptReason = "";

  constructor(private readonly opts: DaemonOptions) {}

  get currentJobId(): string | undefined {
    return this.current?.job_id;
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Resolves when the daemon has stopped: after its job finished (graceful) or was canceled. */
  async shutdown(mode: ShutdownMode, reason = mode === "cancel" ? "the provisioner daemon was interrupted" : ""): Promise<void> {
    this.stopping = true;
    this.acquiring?.abort();
    if (mode === "cancel" && this.jobAbort) {
      this.interruptReason = reason;
      this.jobAbort.abort(new JobCanceled(reason));
    }
    await this.loop;
    await this.opts.client.close();
  }

  private async run(): Promise<void> {
    let backoff = 100;
    while (!this.stopping) {
      this.acquiring = new AbortController();
      let job: AcquiredJob | undefined;
      try {
        job = await this.opts.client.acquireJob(this.acquiring.signal);
        backoff = 100;
      } catch (err) {
        if (this.stopping) break;
        this.opts.logger.warn({ err: (err as Error).message }, "acquiring a job failed; retrying");
        await sleep(backoff * (0.5 + Math.random()), this.acquiring.signal);
        backoff = Math.min(backoff * 2, 10_000);
        continue;
      }
      if (!job) continue;
      this.current = job;
      try {
        await this.runJob(job);
      } finally {
        this.current = undefined;
      }
    }
  }

  private async runJob(job: AcquiredJob): Promise<void> {
    const { client, logger } = this.opts;
    const log = logger.child({ job_id: job.job_id, job_type: job.type });
    const abort = new AbortController();
    this.jobAbort = abort;
    const pending: JobLog[] = [];
    const push = (source: JobLog["source"], level: LogLevel, output: string, stage = "") =>
      pending.push({ created_at: new Date().toISOString(), source, level, stage, output });

    // One in-flight update at a time; each also serves as the heartbeat.
    let updating: Promise<void> = Promise.resolve();
    const flush = () =>
      (updating = updating.then(async () => {
        const batch = pending.splice(0, pending.length);
        try {
          const r = await client.updateJob(job.job_id, batch);
          if (r.canceled && !abort.signal.aborted) abort.abort(new JobCanceled("the job was canceled"));
        } catch (err) {
          pending.unshift(...batch); // coderd unreachable: keep the lines for the next try
          log.warn({ err: (err as Error).message }, "sending job update failed");
        }
      }));
    const timer = setInterval(() => void flush(), this.opts.updateIntervalMs ?? 1000);

    const dir = join(this.opts.workDir, job.job_id);
    log.info("running job");
    const ended = this.opts.observer?.jobStarted(job);
    let status: "success" | "failed" = "failed";
    try {
      push("provisioner_daemon", "info", `Acquired by provisioner daemon`, "Set up");
      const driver = this.opts.drivers[job.provisioner];
      if (!driver) throw new Error(`this daemon has no "${job.provisioner}" provisioner`);
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true });
      const archive = await client.fetchFile(job.file_id);
      await extractArchive(archive, join(dir, "template"));
      if (abort.signal.aborted) throw abort.signal.reason;
      const driverLog = (level: LogLevel, output: string, stage?: string) => push("provisioner", level, output, stage);
      const templateDir = join(dir, "template");
      let done: CompletedJob;
      if (job.type === "template_version_import") {
        const parsed = await driver.parse(templateDir, driverLog);
        done = {
          job_id: job.job_id,
          template_import: {
            parameters: parsed.parameters,
            readme: parsed.readme,
            start_resources: await driver.plan(templateDir, "start", driverLog),
            stop_resources: await driver.plan(templateDir, "stop", driverLog),
          },
        };
      } else {
        const build = job.workspace_build!;
        const result = await driver.apply({ templateDir, build }, abort.signal, driverLog);
        if (abort.signal.aborted) throw abort.signal.reason;
        done = { job_id: job.job_id, workspace_build: { state: result.state, resources: result.resources } };
      }
      push("provisioner_daemon", "info", "Job succeeded", "Cleaning up");
      clearInterval(timer);
      await flush();
      await updating;
      await client.completeJob(done);
      status = "success";
      log.info("job succeeded");
    } catch (err) {
      clearInterval(timer);
      const canceled = abort.signal.aborted;
      const message = canceled
        ? this.interruptReason || (abort.signal.reason as Error).message
        : err instanceof Error
          ? err.message
          : String(err);
      push("provisioner_daemon", "error", canceled ? `Canceled: ${message}` : `Job failed: ${message}`, "Cleaning up");
      await flush();
      await updating;
      await client.failJob({ job_id: job.job_id, error: message }).catch((e: unknown) => log.error({ err: (e as Error).message }, "reporting the failure failed"));
      log.warn({ error: message }, canceled ? "job canceled" : "job failed");
    } finally {
      clearInterval(timer);
      ended?.(status);
      this.jobAbort = undefined;
      await rm(dir, { recursive: true, force: true }).catch(() => {});
    }
  }
}
