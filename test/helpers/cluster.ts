// An HA deployment on loopback: N real `coder server` processes on one Postgres, each with its
// own CODER_DERP_SERVER_RELAY_URL, behind real nginx running deploy/nginx/coder.conf.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServerProcess, tempConfigDir, type ServerProcess } from "./binary.js";
import { createTestDatabase } from "./database.js";
import { closedPort } from "./net.js";
import { startNginx, type Nginx } from "./nginx.js";

export interface ClusterReplica {
  name: string;
  /** The replica's own address (also its relay URL), bypassing the load balancer. */
  url: string;
  /** "127.0.0.1:port", as nginx's upstream names it. */
  upstream: string;
  process: ServerProcess;
  /** Its Prometheus endpoint, with `prometheus: true`. */
  metricsUrl?: string;
}

export interface Cluster {
  /** The load balancer: every replica's CODER_ACCESS_URL. */
  url: string;
  nginx: Nginx;
  databaseUrl: string;
  replicas: ClusterReplica[];
  /** Points nginx at these replicas only (existing connections stay where they are). */
  route(replicas: ClusterReplica[]): Promise<void>;
}

export interface ClusterOptions {
  /** Defaults to a fresh migrated test database; `empty` gives an unmigrated one. */
  databaseUrl?: string;
  empty?: boolean;
  /** Extra environment per replica (by index), e.g. CODER_PROVISIONER_DAEMONS. */
  env?: (index: number) => Record<string, string>;
  /** CODER_PROMETHEUS_ENABLE on every replica (each on its own port). */
  prometheus?: boolean;
}

/**
 * Starts `count` replicas at the same moment. Heartbeats every second (so a dead replica is
 * gone in 3 s) and direct paths are blocked, so every tunnel crosses the relays and their mesh.
 */
export async function startCluster(count: number, opts: ClusterOptions = {}): Promise<Cluster> {
  const databaseUrl = opts.databaseUrl ?? (await createTestDatabase({ empty: opts.empty }));
  const ports = await Promise.all(Array.from({ length: count }, () => closedPort()));
  const metricsPorts = opts.prometheus ? await Promise.all(ports.map(() => closedPort())) : [];
  const upstreams = ports.map((p) => `127.0.0.1:${p}`);
  const nginx = await startNginx(upstreams);
  const cacheRoot = process.env.CODER_TEST_RUN_DIR ?? tmpdir();
  const processes = await Promise.all(
    ports.map((port, i) =>
      startServerProcess(["--config-dir", tempConfigDir(), "--http-address", `127.0.0.1:${port}`], {
        CODER_PG_CONNECTION_URL: databaseUrl,
        CODER_ACCESS_URL: nginx.url,
        CODER_DERP_SERVER_RELAY_URL: `http://127.0.0.1:${port}`,
        CODER_REPLICA_UPDATE_INTERVAL: "1s",
        // Latency warnings are unit-tested; a loaded CI machine must not trip them here.
        CODER_REPLICA_LATENCY_THRESHOLD: "1s",
        CODER_BLOCK_DIRECT: "true",
        CODER_CACHE_DIRECTORY: mkdtempSync(join(cacheRoot, "coder-cache-")),
        CODER_PROVISIONER_DAEMONS: "0",
        ...(opts.prometheus ? { CODER_PROMETHEUS_ENABLE: "true", CODER_PROMETHEUS_ADDRESS: `127.0.0.1:${metricsPorts[i]}` } : {}),
        ...opts.env?.(i),
      }),
    ),
  );
  const replicas = processes.map((process, i) => ({
    name: `replica-${i + 1}`,
    url: `http://127.0.0.1:${ports[i]}`,
    upstream: upstreams[i]!,
    process,
    metricsUrl: opts.prometheus ? `http://127.0.0.1:${metricsPorts[i]}/metrics` : undefined,
  }));
  return { url: nginx.url, nginx, databaseUrl, replicas, route: (rs) => nginx.reload(rs.map((r) => r.upstream)) };
}
