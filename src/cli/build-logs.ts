// Live provisioner job logs for template imports and workspace builds: every line as it arrives,
// a header whenever the stage changes, and the job's end state once the stream closes.
import { isCoderSDKError, type Client, type ProvisionerJob, type ProvisionerJobLog, type TemplateVersion, type WorkspaceBuild } from "../codersdk/index.js";

export interface LogSink {
  write(text: string): unknown;
}

export interface FollowOptions {
  /** Where the lines go (default: stdout). */
  out?: LogSink;
  /** Called on the first Ctrl-C while following; a second Ctrl-C exits at once. */
  cancel?: () => Promise<unknown>;
}

/** Formats log lines: "==> Stage" when the stage changes, "ERROR: "/"WARN: " before such lines. */
export class LogPrinter {
  private stage: string | undefined;

  constructor(private readonly out: LogSink = process.stdout) {}

  header(stage: string): void {
    if (stage === this.stage) return;
    this.stage = stage;
    this.out.write(`==> ${stage}\n`);
  }

  line(log: Pick<ProvisionerJobLog, "stage" | "level" | "output">): void {
    if (log.stage) this.header(log.stage);
    const prefix = log.level === "error" ? "ERROR: " : log.level === "warn" ? "WARN: " : "";
    this.out.write(`${prefix}${log.output.replace(/\n$/, "")}\n`);
  }

  /** Before the first line: say so when the job still waits for a daemon, and why. */
  queued(job: ProvisionerJob): void {
    if (job.status !== "pending") return;
    this.header("Queued");
    if (job.status_detail) this.out.write(`${job.status_detail}\n`);
  }
}

/** A dropped connection (not a refusal by the server) is worth reconnecting after. */
const transient = (err: unknown) => !isCoderSDKError(err) || err.status === 0 || err.status >= 500;

/**
 * Prints a job's logs until the job ends. A dropped stream is resumed after the last line seen.
 * While it runs, Ctrl-C asks the server to cancel the job (then keeps following to the end).
 */
export async function streamJobLogs(
  follow: (after: number) => AsyncIterable<ProvisionerJobLog>,
  job: ProvisionerJob,
  opts: FollowOptions = {},
): Promise<void> {
  const out = opts.out ?? process.stdout;
  const printer = new LogPrinter(out);
  printer.queued(job);
  let canceling = false;
  const onInterrupt = () => {
    if (canceling || !opts.cancel) {
      out.write("Interrupted.\n");
      process.exit(130);
    }
    canceling = true;
    out.write("Canceling... (press Ctrl-C again to stop following)\n");
    opts.cancel().catch((err: unknown) => out.write(`WARN: canceling failed: ${(err as Error).message}\n`));
  };
  let after = 0;
  process.on("SIGINT", onInterrupt);
  let retries = 0;
  try {
    for (;;) {
      try {
        for await (const log of follow(after)) {
          if (log.id <= after) continue;
          after = log.id;
          retries = 0;
          printer.line(log);
        }
        return;
      } catch (err) {
        if (!transient(err) || ++retries > 5) throw err;
        await new Promise((r) => setTimeout(r, 500 * retries));
      }
    }
  } finally {
    process.off("SIGINT", onInterrupt);
  }
}

/** Follows a template version's import to its end and returns the version as it ended. */
export async function followTemplateVersion(client: Client, version: TemplateVersion, opts: Omit<FollowOptions, "cancel"> = {}): Promise<TemplateVersion> {
  await streamJobLogs((after) => client.followTemplateVersionLogs(version.id, after), version.job, {
    ...opts,
    cancel: () => client.cancelTemplateVersion(version.id),
  });
  return client.templateVersion(version.id);
}

/** Follows a workspace build to its end and returns the build as it ended. */
export async function followWorkspaceBuild(client: Client, build: WorkspaceBuild, opts: Omit<FollowOptions, "cancel"> = {}): Promise<WorkspaceBuild> {
  await streamJobLogs((after) => client.followWorkspaceBuildLogs(build.id, after), build.job, {
    ...opts,
    cancel: () => client.cancelWorkspaceBuild(build.id),
  });
  return client.workspaceBuild(build.id);
}

/** Did the job end well? Failed and canceled jobs are failures. */
export const jobSucceeded = (job: ProvisionerJob) => job.status === "succeeded";
