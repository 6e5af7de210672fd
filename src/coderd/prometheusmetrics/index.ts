// Prometheus metrics of coderd: the per-instance registry and its instruments, and the listener
// that serves them on CODER_PROMETHEUS_ADDRESS.
export { CoderdMetrics, UNMATCHED_ROUTE, formatTags, type DatabasePoolStats, type PrometheusOptions } from "./metrics.js";
export type { AgentLabel } from "./agents.js";
