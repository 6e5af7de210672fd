// The deployment's settings: one table of options, each with its flag, CODER_* variable and
// default, so `coder server --help`, the environment and validation all come from one place.
import { homedir } from "node:os";
import { join } from "node:path";
import { parseDuration } from "./duration.js";

export interface DeploymentValues {
  httpAddress: string;
  accessUrl: string;
  wildcardAccessUrl: string;
  dangerousAllowPathAppSharing: boolean;
  dangerousAllowPathAppSiteOwnerAccess: boolean;
  pgConnectionUrl: string;
  configDir: string;
  logHuman: string;
  logJson: string;
  verbose: boolean;
  sessionDurationMs: number;
  maxTokenLifetimeMs: number;
  secureAuthCookie: boolean;
  maxRequestBodyBytes: number;
  maxFileBytes: number;
  cacheDir: string;
  provisionerDaemons: number;
  provisionerDaemonPsk: string;
  provisionerJobHangTimeoutMs: number;
  provisionerJobPendingTimeoutMs: number;
  healthCheckThresholdDatabaseMs: number;
  derpServerEnable: boolean;
  derpServerRegionId: number;
  derpServerRegionCode: string;
  derpServerRegionName: string;
  derpConfigPath: string;
  derpConfigUrl: string;
  blockDirect: boolean;
  derpServerRelayUrl: string;
  replicaUpdateIntervalMs: number;
  replicaLatencyThresholdMs: number;
  prometheusEnable: boolean;
  prometheusAddress: string;
  prometheusCollectDbMetrics: boolean;
  prometheusCollectAgentStats: boolean;
  prometheusAggregateAgentStatsBy: string[];
}

type Kind = "string" | "hostport" | "url" | "bool" | "duration" | "bytes" | "count" | "list";

export interface OptionSpec {
  key: keyof DeploymentValues;
  flag: string;
  env: string;
  kind: Kind;
  description: string;
  default: string;
  /** For flags like --log-json that may be given bare: the value they then take. */
  bareValue?: string;
  /** For "list" options: the values an item may take. */
  choices?: readonly string[];
}

/** What CODER_PROMETHEUS_AGGREGATE_AGENT_STATS_BY may name. */
export const AGENT_STATS_LABELS = ["agent_name", "template_name", "username", "workspace_name"] as const;

export function defaultCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(base, "coder");
}

export function defaultConfigDir(): string {
  const base = process.env.XDG_CONFIG_HOME || join(homedir(), ".config");
  return join(base, "coderv2");
}

export const serverOptions: OptionSpec[] = [
  { key: "httpAddress", flag: "http-address", env: "CODER_HTTP_ADDRESS", kind: "hostport", default: "127.0.0.1:3000", description: "HTTP bind address of the server." },
  { key: "accessUrl", flag: "access-url", env: "CODER_ACCESS_URL", kind: "url", default: "", description: "The URL that users and workspaces use to reach this server; derived from --http-address when unset." },
  {
    key: "wildcardAccessUrl",
    flag: "wildcard-access-url",
    env: "CODER_WILDCARD_ACCESS_URL",
    kind: "string",
    default: "",
    description: "Host pattern for subdomain workspace apps, e.g. *.coder.example.com (optionally with a :port); its DNS must point at this server. Empty: only path-based apps.",
  },
  {
    key: "dangerousAllowPathAppSharing",
    flag: "dangerous-allow-path-app-sharing",
    env: "CODER_DANGEROUS_ALLOW_PATH_APP_SHARING",
    kind: "bool",
    default: "false",
    description: "Honor the sharing level of path-based apps. Dangerous: they run on the dashboard's origin, so an app's scripts act with the visitor's session.",
  },
  {
    key: "dangerousAllowPathAppSiteOwnerAccess",
    flag: "dangerous-allow-path-app-site-owner-access",
    env: "CODER_DANGEROUS_ALLOW_PATH_APP_SITE_OWNER_ACCESS",
    kind: "bool",
    default: "false",
    description: "Let site owners open other users' path-based apps. Dangerous for the same reason.",
  },
  { key: "pgConnectionUrl", flag: "postgres-url", env: "CODER_PG_CONNECTION_URL", kind: "string", default: "", description: "URL of a PostgreSQL database. When empty, a built-in PostgreSQL is started under the config dir." },
  { key: "configDir", flag: "config-dir", env: "CODER_CONFIG_DIR", kind: "string", default: defaultConfigDir(), description: "Directory for the session, built-in PostgreSQL and other state." },
  { key: "logHuman", flag: "log-human", env: "CODER_LOGGING_HUMAN", kind: "string", default: "/dev/stderr", bareValue: "/dev/stderr", description: "Output human-readable logs to a given file." },
  { key: "logJson", flag: "log-json", env: "CODER_LOGGING_JSON", kind: "string", default: "", bareValue: "/dev/stderr", description: "Output JSON logs to a given file (bare: standard error); replaces the human log on the same file." },
  { key: "verbose", flag: "verbose", env: "CODER_VERBOSE", kind: "bool", default: "false", description: "Output debug-level logs." },
  { key: "sessionDurationMs", flag: "session-duration", env: "CODER_SESSION_DURATION", kind: "duration", default: "24h", description: "Lifetime of a browser/CLI login session; renewed while in use." },
  { key: "maxTokenLifetimeMs", flag: "max-token-lifetime", env: "CODER_MAX_TOKEN_LIFETIME", kind: "duration", default: "720h", description: "The longest lifetime a user may give an API token." },
  { key: "secureAuthCookie", flag: "secure-auth-cookie", env: "CODER_SECURE_AUTH_COOKIE", kind: "bool", default: "false", description: "Set the Secure attribute on the session cookie (implied by an https access URL)." },
  { key: "maxRequestBodyBytes", flag: "max-request-body", env: "CODER_MAX_REQUEST_BODY", kind: "bytes", default: "1MiB", description: "Largest JSON request body the API accepts." },
  { key: "maxFileBytes", flag: "max-file-size", env: "CODER_MAX_FILE_SIZE", kind: "bytes", default: "10MiB", description: "Largest template archive that can be uploaded." },
  { key: "cacheDir", flag: "cache-dir", env: "CODER_CACHE_DIRECTORY", kind: "string", default: defaultCacheDir(), description: "Work directories of the built-in provisioner daemons, and local workspaces." },
  { key: "provisionerDaemons", flag: "provisioner-daemons", env: "CODER_PROVISIONER_DAEMONS", kind: "count", default: "3", description: "Number of provisioner daemons to run inside the server (0 disables them)." },
  { key: "provisionerDaemonPsk", flag: "provisioner-daemon-psk", env: "CODER_PROVISIONER_DAEMON_PSK", kind: "string", default: "", description: "Pre-shared key that external provisioner daemons authenticate with (empty: only users' tokens)." },
  { key: "provisionerJobHangTimeoutMs", flag: "provisioner-job-hang-timeout", env: "CODER_PROVISIONER_JOB_HANG_TIMEOUT", kind: "duration", default: "5m", description: "A running job whose daemon stopped heartbeating for this long is failed." },
  { key: "derpServerEnable", flag: "derp-server-enable", env: "CODER_DERP_SERVER_ENABLE", kind: "bool", default: "true", description: "Run the embedded relay (/derp) in this server; with it off, peers use only the relays of --derp-config-path/--derp-config-url." },
  { key: "derpServerRegionId", flag: "derp-server-region-id", env: "CODER_DERP_SERVER_REGION_ID", kind: "count", default: "999", description: "Region ID of the embedded relay." },
  { key: "derpServerRegionCode", flag: "derp-server-region-code", env: "CODER_DERP_SERVER_REGION_CODE", kind: "string", default: "coder", description: "Region code of the embedded relay." },
  { key: "derpServerRegionName", flag: "derp-server-region-name", env: "CODER_DERP_SERVER_REGION_NAME", kind: "string", default: "Coder Embedded Relay", description: "Region name of the embedded relay." },
  { key: "derpConfigPath", flag: "derp-config-path", env: "CODER_DERP_CONFIG_PATH", kind: "string", default: "", description: "Path to a relay map (JSON: Regions → Nodes) of custom relays, added to the embedded one." },
  { key: "derpConfigUrl", flag: "derp-config-url", env: "CODER_DERP_CONFIG_URL", kind: "url", default: "", description: "URL to fetch a relay map (JSON) of custom relays from, at start." },
  { key: "blockDirect", flag: "block-direct-connections", env: "CODER_BLOCK_DIRECT", kind: "bool", default: "false", description: "Never use direct paths between peers: every tunnel goes through a relay." },
  {
    key: "derpServerRelayUrl",
    flag: "derp-server-relay-url",
    env: "CODER_DERP_SERVER_RELAY_URL",
    kind: "url",
    default: "",
    description:
      "HA: the URL at which the other replicas reach this replica's embedded relay (e.g. http://10.0.0.1:8080). Never the access URL, which is a load balancer in front of all replicas. Not needed with custom relays only.",
  },
  {
    key: "replicaUpdateIntervalMs",
    flag: "replica-update-interval",
    env: "CODER_REPLICA_UPDATE_INTERVAL",
    kind: "duration",
    default: "5s",
    description: "HA: how often a replica heartbeats and measures its peers; a replica silent for three intervals is gone.",
  },
  {
    key: "replicaLatencyThresholdMs",
    flag: "replica-latency-threshold",
    env: "CODER_REPLICA_LATENCY_THRESHOLD",
    kind: "duration",
    default: "10ms",
    description: "HA: a replica warns (log, health check, replica error) when another replica's relay or the database is further away than this.",
  },
  { key: "prometheusEnable", flag: "prometheus-enable", env: "CODER_PROMETHEUS_ENABLE", kind: "bool", default: "false", description: "Serve Prometheus metrics at /metrics on --prometheus-address." },
  { key: "prometheusAddress", flag: "prometheus-address", env: "CODER_PROMETHEUS_ADDRESS", kind: "hostport", default: "127.0.0.1:2112", description: "The address the Prometheus metrics endpoint listens on (separate from the API)." },
  {
    key: "prometheusCollectDbMetrics",
    flag: "prometheus-collect-db-metrics",
    env: "CODER_PROMETHEUS_COLLECT_DB_METRICS",
    kind: "bool",
    default: "false",
    description: "Collect database query latencies (coderd_db_query_latencies_seconds); adds a little overhead to every query.",
  },
  {
    key: "prometheusCollectAgentStats",
    flag: "prometheus-collect-agent-stats",
    env: "CODER_PROMETHEUS_COLLECT_AGENT_STATS",
    kind: "bool",
    default: "true",
    description: "Export the agents' stats (coderd_agentstats_*); turn off for very large deployments.",
  },
  {
    key: "prometheusAggregateAgentStatsBy",
    flag: "prometheus-aggregate-agent-stats-by",
    env: "CODER_PROMETHEUS_AGGREGATE_AGENT_STATS_BY",
    kind: "list",
    choices: AGENT_STATS_LABELS,
    default: AGENT_STATS_LABELS.join(","),
    description: `Labels agent metrics keep (comma-separated: ${AGENT_STATS_LABELS.join(", ")}); fewer labels, fewer series.`,
  },
  { key: "provisionerJobPendingTimeoutMs", flag: "provisioner-job-pending-timeout", env: "CODER_PROVISIONER_JOB_PENDING_TIMEOUT", kind: "duration", default: "30m", description: "A job no daemon picked up for this long is failed." },
  {
    key: "healthCheckThresholdDatabaseMs",
    flag: "health-check-threshold-database",
    env: "CODER_HEALTH_CHECK_THRESHOLD_DATABASE",
    kind: "duration",
    default: "15ms",
    description: "The health check's database section warns when the median ping latency is above this.",
  },
];

export interface OptionError {
  option: OptionSpec;
  message: string;
}

/** "--http-address / CODER_HTTP_ADDRESS": how errors name a setting. */
export function optionName(o: OptionSpec): string {
  return `--${o.flag} / ${o.env}`;
}

const BYTE_UNITS: Record<string, number> = { "": 1, b: 1, kb: 1000, kib: 1024, mb: 1e6, mib: 1024 ** 2, gb: 1e9, gib: 1024 ** 3 };

export function parseBytes(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  if (!m) return undefined;
  const unit = BYTE_UNITS[m[2]!.toLowerCase()];
  return unit === undefined ? undefined : Math.floor(Number.parseFloat(m[1]!) * unit);
}

function parseValue(o: OptionSpec, raw: string): { value?: unknown; error?: string } {
  switch (o.kind) {
    case "string":
      return { value: raw };
    case "bool": {
      const v = raw.toLowerCase();
      if (["true", "1", "yes", "on"].includes(v)) return { value: true };
      if (["false", "0", "no", "off", ""].includes(v)) return { value: false };
      return { error: `"${raw}" is not a boolean (use true or false)` };
    }
    case "duration": {
      const ms = parseDuration(raw);
      return ms === undefined || ms <= 0 ? { error: `"${raw}" is not a duration (e.g. 30m, 24h, 7d)` } : { value: ms };
    }
    case "bytes": {
      const n = parseBytes(raw);
      return n === undefined || n <= 0 ? { error: `"${raw}" is not a size (e.g. 512KiB, 1MiB)` } : { value: n };
    }
    case "count": {
      const n = Number(raw);
      return /^\d+$/.test(raw.trim()) && n <= 1000 ? { value: n } : { error: `"${raw}" is not a whole number between 0 and 1000` };
    }
    case "url": {
      if (!raw) return { value: "" };
      try {
        const u = new URL(raw);
        if (u.protocol !== "http:" && u.protocol !== "https:") return { error: `"${raw}" must be an http:// or https:// URL` };
        return { value: u.toString().replace(/\/$/, "") };
      } catch {
        return { error: `"${raw}" is not a valid URL` };
      }
    }
    case "list": {
      const items = raw.split(",").map((s) => s.trim()).filter(Boolean);
      const bad = o.choices ? items.filter((i) => !o.choices!.includes(i)) : [];
      if (bad.length) return { error: `unknown value${bad.length > 1 ? "s" : ""} ${bad.map((b) => `"${b}"`).join(", ")}: use a comma-separated list of ${o.choices!.join(", ")}` };
      return { value: [...new Set(items)] };
    }
    case "hostport": {
      const m = /^(\[[0-9a-fA-F:]+\]|[^:\s]*):(\d{1,5})$/.exec(raw);
      const port = m ? Number(m[2]) : NaN;
      if (!m || port > 65535) return { error: `"${raw}" is not a host:port address (e.g. 127.0.0.1:3000)` };
      return { value: raw };
    }
  }
}

/**
 * Builds the values from flags (highest precedence), then CODER_* variables, then defaults.
 * Flags are keyed by their long name; a bare boolean `true` for a string option means it was
 * given without a value.
 */
export function resolveDeploymentValues(
  flags: Record<string, string | boolean | undefined>,
  env: NodeJS.ProcessEnv,
  options = serverOptions,
): { values: DeploymentValues; errors: OptionError[] } {
  const values = {} as Record<string, unknown>;
  const errors: OptionError[] = [];
  for (const o of options) {
    const flag = flags[o.flag];
    let raw: string;
    if (flag !== undefined) raw = flag === true ? (o.bareValue ?? "true") : flag === false ? "false" : flag;
    else if (env[o.env] !== undefined) raw = env[o.env]!;
    else raw = o.default;
    const { value, error } = parseValue(o, raw);
    if (error) errors.push({ option: o, message: `${optionName(o)}: ${error}` });
    else values[o.key] = value;
  }
  return { values: values as unknown as DeploymentValues, errors };
}
