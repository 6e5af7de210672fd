// provisionerd: the job runner. It talks to coderd only through a ProvisionerdClient (a
// WebSocket for external daemons, an in-process link for the built-in ones), never to Postgres.
export { ProvisionerDaemon, type DaemonOptions, type JobObserver, type ShutdownMode } from "./daemon.js";
export { ProvisionerdMetrics } from "./metrics.js";
export { serveMetrics, type MetricsEndpoint } from "../promhttp/index.js";
export { WebSocketProvisionerdClient, PSK_HEADER, type WebSocketClientOptions } from "./ws-client.js";
export type * from "./proto.js";
