// The Prometheus metrics of an external provisioner daemon (`coder provisioner start
// --prometheus-enable`), named as Coder's external provisioner names them: the jobs it runs now,
// how long each took and how it ended, plus the process's own metrics. Served on their own
// address at /metrics (promhttp's serveMetrics).
import { performance } from "node:perf_hooks";
import { collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { JobObserver } from "./daemon.js";
import type { AcquiredJob } from "./proto.js";

const JOB_BUCKETS = [1, 10, 30, 60, 300, 600, 1800, 3600];

export class ProvisionerdMetrics implements JobObserver {
  readonly registry = new Registry();
  private readonly current: Gauge<"provisioner">;
  private readonly timings: Histogram<"provisioner" | "status">;

  /** `provisioners`: the drivers this daemon has (their series exist from the start, at 0). */
  constructor(provisioners: string[], opts: { collectProcessMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.current = new Gauge({
      name: "coderd_provisionerd_jobs_current",
      help: "The number of provisioner jobs this daemon runs now, by provisioner.",
      labelNames: ["provisioner"],
      registers,
    });
    for (const p of provisioners) this.current.labels(p).set(0);
    this.timings = new Histogram({
      name: "coderd_provisionerd_job_timings_seconds",
      help: "The provisioner job time duration in seconds, from acquisition until it was reported, by provisioner and final status.",
      labelNames: ["provisioner", "status"],
      buckets: JOB_BUCKETS,
      registers,
    });
    new Gauge({ name: "coderd_provisionerd_num_daemons", help: "The number of provisioner daemons in this process.", registers }).set(1);
    if (opts.collectProcessMetrics !== false) {
      collectDefaultMetrics({ register: this.registry });
      // Gauges named *_total, which `promtool check metrics` rejects; their per-type versions remain.
      for (const name of ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"]) this.registry.removeSingleMetric(name);
    }
  }

  jobStarted(job: AcquiredJob): (status: "success" | "failed") => void {
    const start = performance.now();
    const current = this.current.labels(job.provisioner);
    current.inc();
    let ended = false;
    return (status) => {
      if (ended) return;
      ended = true;
      current.dec();
      this.timings.labels(job.provisioner, status).observe((performance.now() - start) / 1000);
    };
  }

  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
