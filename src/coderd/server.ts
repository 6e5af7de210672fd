// What `coder server` runs: validate settings, bring up the database (embedded or external),
// migrate, serve, and shut down in order.
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { type DeploymentValues, type OptionError, serverOptions, optionName } from "../codersdk/index.js";
import {
  DatabaseConnectError,
  SchemaTooNewError,
  embeddedDir,
  openDatabase,
  redactConnectionString,
  startEmbedded,
  validateConnectionString,
  type Database,
  type EmbeddedInstance,
} from "../database/index.js";
import type { Logger } from "../logging/index.js";
import type { RelayMap } from "../tailnet/index.js";
import { parseRelayMap } from "./relay-map.js";
import { createCoderd, type Coderd } from "./coderd.js";
import { serveMetrics, type MetricsEndpoint } from "../promhttp/index.js";
import type { AgentLabel } from "./prometheusmetrics/index.js";
import { parseWildcardAccessUrl } from "./workspaceapps/hosts.js";

/** A setting that cannot work; the message names the flag and the variable. */
export class ConfigError extends Error {}

export interface RunningServer {
  /** Where the server listens, as a URL. */
  listenUrl: string;
  accessUrl: string;
  coderd: Coderd;
  /** The Prometheus endpoint (CODER_PROMETHEUS_ENABLE), e.g. http://127.0.0.1:2112/metrics. */
  metricsUrl?: string;
  /** Graceful stop: no new requests, in-flight ones finish, database closed, embedded Postgres stopped. */
  close(): Promise<void>;
}

const opt = (key: keyof DeploymentValues) => optionName(serverOptions.find((o) => o.key === key)!);

export function configErrors(errors: OptionError[]): ConfigError | undefined {
  return errors.length ? new ConfigError(errors.map((e) => e.message).join("; ")) : undefined;
}

function splitHostPort(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(":");
  return { host: addr.slice(0, i).replace(/^\[|\]$/g, "") || "0.0.0.0", port: Number(addr.slice(i + 1)) };
}

/** Fails fast, before Postgres starts, when the listen address is taken or not ours. */
function checkBindable(host: string, port: number, key: keyof DeploymentValues = "httpAddress"): Promise<void> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once("error", (err: NodeJS.ErrnoException) => {
      const why =
        err.code === "EADDRINUSE" ? "the address is already in use" : err.code === "EADDRNOTAVAIL" ? "no interface has this address" : err.code === "EACCES" ? "permission denied" : err.message;
      rej(new ConfigError(`${opt(key)}: cannot listen on ${host}:${port}: ${why}`));
    });
    srv.listen(port, host, () => srv.close(() => res()));
  });
}

export async function runServer(values: DeploymentValues, logger: Logger): Promise<RunningServer> {
  try {
    parseWildcardAccessUrl(values.wildcardAccessUrl);
  } catch (err) {
    throw new ConfigError(`${opt("wildcardAccessUrl")}: ${(err as Error).message}`);
  }
  if (values.derpServerRelayUrl && values.accessUrl && sameUrl(values.derpServerRelayUrl, values.accessUrl)) {
    throw new ConfigError(
      `${opt("derpServerRelayUrl")}: must not equal ${opt("accessUrl")} (${values.accessUrl}): the access URL is a load balancer to all replicas, while the relay URL must reach this replica alone. Set it to this replica's own address, e.g. http://10.0.0.1:8080.`,
    );
  }
  const { host, port } = splitHostPort(values.httpAddress);
  if (port !== 0) await checkBindable(host, port);
  const prom = values.prometheusEnable ? splitHostPort(values.prometheusAddress) : undefined;
  if (prom && prom.port !== 0) await checkBindable(prom.host, prom.port, "prometheusAddress");

  let embedded: EmbeddedInstance | undefined;
  // Checked before anything starts: a bad relay map is a configuration error like any other.
  const customRelayMap = await loadCustomRelayMap(values);
  let db: Database | undefined;
  const cleanup = async () => {
    await db?.close().catch(() => {});
    await embedded?.stop().catch(() => {});
  };
  try {
    let url = values.pgConnectionUrl;
    if (url) {
      const problem = validateConnectionString(url);
      if (problem) throw new ConfigError(`${opt("pgConnectionUrl")}: ${problem}`);
    } else {
      const dir = embeddedDir(values.configDir);
      logger.info({ path: dir }, `Using built-in PostgreSQL (${dir})`);
      embedded = await startEmbedded({ dir, onLog: (line) => logger.debug({ component: "postgres" }, line) });
      url = embedded.url;
      logger.info({ port: embedded.port }, `Built-in PostgreSQL listening on 127.0.0.1:${embedded.port}`);
    }
    try {
      db = await openDatabase(url);
    } catch (err) {
      if (err instanceof DatabaseConnectError) {
        throw new ConfigError(`${opt("pgConnectionUrl")}: cannot connect to ${redactConnectionString(url)}: ${err.message}`);
      }
      if (err instanceof SchemaTooNewError) throw new ConfigError(`database: ${err.message}`);
      throw err;
    }
    if (db.migrations.applied.length) logger.info({ applied: db.migrations.applied }, "database migrated");

    const listenUrl = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
    let accessUrl = values.accessUrl;
    if (!accessUrl) {
      const shownHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
      accessUrl = `http://${shownHost.includes(":") ? `[${shownHost}]` : shownHost}:${port}`;
      logger.warn(
        `${opt("accessUrl")} is not set; using ${accessUrl}. Workspaces and remote users need a URL that reaches this server: set ${opt("accessUrl")}.`,
      );
    }

    const coderd = await createCoderd({
      store: db.store,
      pubsub: db.pubsub,
      databasePoolStats: db.poolStats,
      logger,
      accessUrl,
      deploymentId: await db.store.ensureDeploymentId(),
      sessionDurationMs: values.sessionDurationMs,
      maxTokenLifetimeMs: values.maxTokenLifetimeMs,
      secureAuthCookie: values.secureAuthCookie,
      maxRequestBodyBytes: values.maxRequestBodyBytes,
      maxFileBytes: values.maxFileBytes,
      cacheDir: values.cacheDir,
      provisionerDaemons: values.provisionerDaemons,
      provisionerDaemonPsk: values.provisionerDaemonPsk,
      provisionerJobHangTimeoutMs: values.provisionerJobHangTimeoutMs,
      provisionerJobPendingTimeoutMs: values.provisionerJobPendingTimeoutMs,
      healthCheckThresholdDatabaseMs: values.healthCheckThresholdDatabaseMs,
      replica: {
        relayAddress: values.derpServerRelayUrl,
        updateIntervalMs: values.replicaUpdateIntervalMs,
        latencyThresholdMs: values.replicaLatencyThresholdMs,
      },
      wildcardAccessUrl: values.wildcardAccessUrl,
      dangerousAllowPathAppSharing: values.dangerousAllowPathAppSharing,
      dangerousAllowPathAppSiteOwnerAccess: values.dangerousAllowPathAppSiteOwnerAccess,
      relay: {
        embedded: values.derpServerEnable,
        regionId: values.derpServerRegionId,
        regionCode: values.derpServerRegionCode,
        regionName: values.derpServerRegionName,
        custom: customRelayMap,
        blockDirect: values.blockDirect,
      },
      prometheus: values.prometheusEnable
        ? {
            collectDbMetrics: values.prometheusCollectDbMetrics,
            collectAgentStats: values.prometheusCollectAgentStats,
            aggregateAgentStatsBy: values.prometheusAggregateAgentStatsBy as AgentLabel[],
          }
        : undefined,
    });
    let bound: { host: string; port: number };
    try {
      bound = await coderd.listen(host, port);
    } catch (err) {
      await coderd.close().catch(() => {});
      throw new ConfigError(`${opt("httpAddress")}: cannot listen on ${values.httpAddress}: ${(err as Error).message}`);
    }
    const actualListen = `http://${bound.host.includes(":") ? `[${bound.host}]` : bound.host}:${bound.port}`;
    if (port === 0 && !values.accessUrl) {
      accessUrl = actualListen;
      coderd.setAccessUrl(accessUrl);
    }
    logger.info({ address: actualListen }, `Started HTTP listener at ${actualListen}`);
    let metricsListener: MetricsEndpoint | undefined;
    if (prom && coderd.metrics) {
      try {
        metricsListener = await serveMetrics(coderd.metrics, prom.host, prom.port);
      } catch (err) {
        await coderd.close().catch(() => {});
        throw new ConfigError(`${opt("prometheusAddress")}: cannot listen on ${values.prometheusAddress}: ${(err as Error).message}`);
      }
      logger.info({ address: metricsListener.url }, `Prometheus metrics at ${metricsListener.url}`);
    }
    logger.info({ access_url: accessUrl }, `View the Web UI: ${accessUrl}`);

    let closing: Promise<void> | undefined;
    return {
      listenUrl: port === 0 ? actualListen : listenUrl,
      accessUrl,
      coderd,
      metricsUrl: metricsListener?.url,
      close: () =>
        (closing ??= (async () => {
          logger.info("shutting down: waiting for in-flight requests");
          await metricsListener?.close();
          await coderd.close();
          await cleanup();
          logger.info("shutdown complete");
        })()),
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** Same scheme, host, port and path (a trailing slash and default ports aside). */
function sameUrl(a: string, b: string): boolean {
  const norm = (s: string) => {
    const u = new URL(s);
    return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, "")}`;
  };
  return norm(a) === norm(b);
}

/** The relay map of --derp-config-path or --derp-config-url, checked before anything starts. */
async function loadCustomRelayMap(values: DeploymentValues): Promise<RelayMap | undefined> {
  let map: RelayMap | undefined;
  if (values.derpConfigPath) {
    let text: string;
    try {
      text = readFileSync(values.derpConfigPath, "utf8");
    } catch (err) {
      throw new ConfigError(`${opt("derpConfigPath")}: cannot read ${values.derpConfigPath}: ${(err as Error).message}`);
    }
    try {
      map = parseRelayMap(text, values.derpConfigPath);
    } catch (err) {
      throw new ConfigError(`${opt("derpConfigPath")}: ${(err as Error).message}`);
    }
  } else if (values.derpConfigUrl) {
    try {
      const res = await fetch(values.derpConfigUrl, { signal: AbortSignal.timeout(10_000) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      map = parseRelayMap(await res.text(), values.derpConfigUrl);
    } catch (err) {
      throw new ConfigError(`${opt("derpConfigUrl")}: cannot load the relay map: ${(err as Error).message}`);
    }
  }
  if (!values.derpServerEnable && !map) {
    throw new ConfigError(`${opt("derpServerEnable")}: with the embedded relay disabled, a relay map is needed (${opt("derpConfigPath")} or ${opt("derpConfigUrl")})`);
  }
  if (map && values.derpServerEnable && map.Regions[String(values.derpServerRegionId)]) {
    throw new ConfigError(`${opt("derpServerRegionId")}: region ${values.derpServerRegionId} is also in the custom relay map; give the embedded relay another region ID`);
  }
  return map;
}
