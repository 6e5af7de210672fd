// What every route handler can reach: the store, the settings and the logger.
import type { Logger } from "pino";
import type { Pubsub, Store } from "../database/index.js";
import type { ReplicaSync } from "../replicasync/index.js";
import type { RelayMap, RelayMesh, RelayServer } from "../tailnet/index.js";
import type { AgentWrites } from "./agents/writes.js";
import type { ApiKeyCache } from "./auth/api-key-cache.js";
import type { Coordinator } from "./tailnet/coordinator.js";
import type { ProvisionerdServer } from "./provisionerdserver/server.js";
import type { AgentConns } from "./workspaceapps/agent-conns.js";
import type { HealthChecker } from "./healthcheck/index.js";
import type { CoderdMetrics, DatabasePoolStats, PrometheusOptions } from "./prometheusmetrics/index.js";

export interface CoderdOptions {
  store: Store;
  pubsub: Pubsub;
  logger: Logger;
  accessUrl: string;
  deploymentId: string;
  sessionDurationMs: number;
  maxTokenLifetimeMs: number;
  secureAuthCookie: boolean;
  maxRequestBodyBytes: number;
  /** Largest uploaded template archive. */
  maxFileBytes: number;
  /** Pre-shared key for external provisioner daemons ("" disables it). */
  provisionerDaemonPsk: string;
  /** How many provisioner daemons run inside coderd (0: none). */
  provisionerDaemons: number;
  /** Where built-in daemons keep work directories and local workspaces. */
  cacheDir: string;
  provisionerJobHangTimeoutMs: number;
  provisionerJobPendingTimeoutMs: number;
  relay: RelayOptions;
  /** CODER_WILDCARD_ACCESS_URL: host pattern of subdomain apps, e.g. "*.apps.example.com" ("" or unset: none). */
  wildcardAccessUrl?: string;
  /** CODER_DANGEROUS_ALLOW_PATH_APP_SHARING: path-based apps honor their sharing level. */
  dangerousAllowPathAppSharing?: boolean;
  /** CODER_DANGEROUS_ALLOW_PATH_APP_SITE_OWNER_ACCESS: site owners may open others' path-based apps. */
  dangerousAllowPathAppSiteOwnerAccess?: boolean;
  /** CODER_PROMETHEUS_ENABLE and its settings (undefined: no metrics are recorded). */
  prometheus?: PrometheusOptions;
  /** The database pool's connections now (Database.poolStats), for coderd_db_pool_* metrics. */
  databasePoolStats?: () => DatabasePoolStats;
  /** HA settings; the defaults suit one replica and several alike. */
  replica?: ReplicaOptions;
  /** CODER_HEALTH_CHECK_THRESHOLD_DATABASE: median ping latency above which the database section warns (default 15 ms). */
  healthCheckThresholdDatabaseMs?: number;
}

export interface ReplicaOptions {
  /** CODER_DERP_SERVER_RELAY_URL ("" or unset: the other replicas' relays cannot reach this one). */
  relayAddress?: string;
  /** CODER_REPLICA_UPDATE_INTERVAL. */
  updateIntervalMs?: number;
  /** CODER_REPLICA_LATENCY_THRESHOLD. */
  latencyThresholdMs?: number;
}

/** The relays peers use: this server's embedded one and any from a custom relay map. */
export interface RelayOptions {
  /** Serve /derp here and put this server's region in the map. */
  embedded: boolean;
  regionId: number;
  regionCode: string;
  regionName: string;
  /** From --derp-config-path / --derp-config-url. */
  custom?: RelayMap;
  /** Peers never use direct paths. */
  blockDirect: boolean;
}

export type Ctx = CoderdOptions & {
  /** Token lookups; call invalidateUser after changing anything it caches. */
  authCache: ApiKeyCache;
  provisionerd: ProvisionerdServer;
  agentWrites: AgentWrites;
  coordinator: Coordinator;
  /** The embedded relay (undefined when --derp-server-enable=false). */
  relayServer: RelayServer | undefined;
  /** This replica in the registry, and its view of the others. */
  replicaSync: ReplicaSync;
  /** The embedded relay's links to the other replicas' relays (undefined without the embedded relay). */
  relayMesh: RelayMesh | undefined;
  /** coderd's own connections to agents (app proxy, web terminal). */
  agentConns: AgentConns;
  /** The Prometheus registry and instruments, when enabled. */
  metrics: CoderdMetrics | undefined;
  /** The cached deployment health report (GET /api/v2/debug/health). */
  healthChecker: HealthChecker;
};
