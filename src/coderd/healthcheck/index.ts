// The deployment health report behind GET /api/v2/debug/health: all checks run together, the
// result is cached and refreshed in the background; a forced request recomputes (concurrent
// requests share one run).
import { sql } from "kysely";
import type * as sdk from "../../codersdk/index.js";
import { build } from "../../buildinfo/index.js";
import type { Ctx } from "../context.js";
import { presentReplica } from "../present.js";
import { relayMap } from "../routes/tailnet.js";
import {
  checkAccessUrl,
  checkDatabase,
  checkDerp,
  checkProvisionerDaemons,
  checkReplicas,
  checkWebsocket,
  DEFAULT_CHECK_TIMEOUT_MS,
  failedSection,
  withTimeout,
  worst,
  type DaemonInfo,
} from "./checks.js";

export * from "./checks.js";

/** Default CODER_HEALTH_CHECK_THRESHOLD_DATABASE, as in Coder. */
export const DEFAULT_DATABASE_THRESHOLD_MS = 15;
export const REFRESH_INTERVAL_MS = 10 * 60_000;

export interface HealthCheckerOptions {
  /** Per-check timeout (the whole report takes at most a little more). */
  timeoutMs?: number;
  refreshIntervalMs?: number;
}

export class HealthChecker {
  private cached: sdk.HealthReport | undefined;
  private running: Promise<sdk.HealthReport> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly timeoutMs: number;
  private readonly refreshMs: number;

  constructor(
    private readonly ctx: Ctx,
    opts: HealthCheckerOptions = {},
  ) {
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS;
    this.refreshMs = opts.refreshIntervalMs ?? REFRESH_INTERVAL_MS;
  }

  /** The cached report (computed now when there is none yet, it is too old, or force is set). */
  async report(force = false): Promise<sdk.HealthReport> {
    const fresh = this.cached && Date.now() - Date.parse(this.cached.time) < this.refreshMs;
    if (this.cached && fresh && !force) return this.cached;
    return this.refresh();
  }

  /** Runs every check now; a run already in progress is joined, not duplicated. */
  refresh(): Promise<sdk.HealthReport> {
    this.running ??= this.run().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Refreshes in the background every interval (jittered) until stop(). */
  start(): void {
    if (this.stopped || this.timer) return;
    const schedule = () => {
      const delay = this.refreshMs * (0.9 + Math.random() * 0.2);
      this.timer = setTimeout(() => {
        void this.refresh()
          .catch((err: unknown) => this.ctx.logger.warn({ err }, "health check failed"))
          .finally(() => {
            if (!this.stopped) schedule();
          });
      }, delay);
      this.timer.unref();
    };
    schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async run(): Promise<sdk.HealthReport> {
    const ctx = this.ctx;
    const t = this.timeoutMs;
    // Each check bounds itself; the outer timeout is the backstop for anything that does not.
    const guard = <T extends sdk.HealthSectionBase>(name: string, p: () => Promise<T>): Promise<T> =>
      withTimeout(p(), t + 2_000, `the ${name} check`).catch((err: unknown) => failedSection(err) as T);
    const time = new Date().toISOString();
    const [access_url, database, derp, websocket, provisioner_daemons] = await Promise.all([
      guard("access URL", () => checkAccessUrl(ctx.accessUrl, t)),
      guard("database", () =>
        checkDatabase(() => sql`SELECT 1`.execute(ctx.store.kysely), ctx.healthCheckThresholdDatabaseMs ?? DEFAULT_DATABASE_THRESHOLD_MS, { timeoutMs: t }),
      ),
      guard("relay", () => checkDerp(relayMap(ctx), t)),
      guard("websocket", () => checkWebsocket(ctx.accessUrl, !!ctx.relayServer, t)),
      guard("provisioner daemons", async () => {
        const [daemons, pending] = await Promise.all([listDaemons(ctx), countPendingJobs(ctx)]);
        return checkProvisionerDaemons(daemons, pending, build.version);
      }),
    ]);
    const sync = ctx.replicaSync;
    const links = new Map(ctx.relayMesh?.status().map((l) => [l.url, l]));
    const replicas = checkReplicas({
      self: presentReplica(sync.self()),
      conditions: sync.conditions(),
      peers: sync.peers().map((r) => {
        const l = sync.peerLatency(r.id);
        const link = r.relay_address ? links.get(r.relay_address) : undefined;
        const mesh = link ? { connected: link.connected, ...(link.error ? { error: link.error } : {}) } : undefined;
        return { replica: presentReplica(r), latency_ms: l?.latencyMs, error: l?.error, mesh };
      }),
      latencyThresholdMs: sync.latencyThresholdMs,
    });
    const sections = { access_url, database, derp, websocket, provisioner_daemons, replicas };
    const severity = worst(...Object.values(sections).map((s) => s.severity));
    const report: sdk.HealthReport = { healthy: severity !== "error", severity, time, sections };
    this.cached = report;
    const log = severity === "ok" ? undefined : severity === "warning" ? ctx.logger.warn.bind(ctx.logger) : ctx.logger.error.bind(ctx.logger);
    log?.({ codes: Object.values(sections).flatMap((s) => s.warnings.map((w) => w.code)) }, "deployment health check: %s", severity);
    return report;
  }
}

/** Daemons that did not disconnect cleanly, of every organization. */
async function listDaemons(ctx: Ctx): Promise<DaemonInfo[]> {
  const { rows } = await sql<DaemonInfo>`
    SELECT id, name, organization_id, version, last_seen_at, disconnected_at
      FROM provisioner_daemons
     WHERE disconnected_at IS NULL
     ORDER BY created_at, name
     LIMIT 1000`.execute(ctx.store.kysely);
  return rows;
}

async function countPendingJobs(ctx: Ctx): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM provisioner_jobs
     WHERE started_at IS NULL AND canceled_at IS NULL AND completed_at IS NULL`.execute(ctx.store.kysely);
  return rows[0]?.n ?? 0;
}
