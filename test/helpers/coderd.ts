// An in-process coderd on its own database and a loopback port, plus users in each role.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { onTestFinished } from "vitest";
import { Client } from "../../src/codersdk/index.js";
import { AUTH_INVALIDATE_CHANNEL, createCoderd, type Coderd, type RelayOptions } from "../../src/coderd/index.js";
import type { PrometheusOptions } from "../../src/coderd/prometheusmetrics/index.js";
import { openDatabase, type Database } from "../../src/database/index.js";
import { createTestDatabase } from "./database.js";

export interface TestServer {
  url: string;
  databaseUrl: string;
  close(): Promise<void>;
  coderd: Coderd;
  db: Database;
  /** A client without a token. */
  anonymous(): Client;
}

export const DEFAULT_PASSWORD = "SomeSecurePassword!1";

export interface TestServerOptions {
  maxRequestBodyBytes?: number;
  maxTokenLifetimeMs?: number;
  /** Built-in provisioner daemons (default 0: tests that build start what they need). */
  provisionerDaemons?: number;
  provisionerDaemonPsk?: string;
  provisionerJobHangTimeoutMs?: number;
  provisionerJobPendingTimeoutMs?: number;
  cacheDir?: string;
  /** Set when starting from beforeAll: the caller then calls close() itself. */
  manualClose?: boolean;
  /** Another server's database, to run a second replica on it. */
  databaseUrl?: string;
  /** A fixed port (to restart a server where its agents expect it). */
  port?: number;
  relay?: Partial<RelayOptions>;
  /** CODER_WILDCARD_ACCESS_URL, e.g. "*.apps.coder.test". */
  wildcardAccessUrl?: string;
  dangerousAllowPathAppSharing?: boolean;
  dangerousAllowPathAppSiteOwnerAccess?: boolean;
  /** Record Prometheus metrics (serve coderd.metrics with serveMetrics). */
  prometheus?: PrometheusOptions;
  /** CODER_HEALTH_CHECK_THRESHOLD_DATABASE in milliseconds (fractions allowed, e.g. 0.001). */
  healthCheckThresholdDatabaseMs?: number;
}

export async function startTestServer(opts: TestServerOptions = {}): Promise<TestServer> {
  const databaseUrl = opts.databaseUrl ?? (await createTestDatabase({ keep: opts.manualClose }));
  const db = await openDatabase(databaseUrl);
  const coderd = await createCoderd({
    store: db.store,
    pubsub: db.pubsub,
    databasePoolStats: db.poolStats,
    logger: pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }),
    accessUrl: "http://127.0.0.1",
    deploymentId: await db.store.ensureDeploymentId(),
    sessionDurationMs: 24 * 3600_000,
    maxTokenLifetimeMs: opts.maxTokenLifetimeMs ?? 30 * 24 * 3600_000,
    secureAuthCookie: false,
    maxRequestBodyBytes: opts.maxRequestBodyBytes ?? 1024 * 1024,
    maxFileBytes: 10 * 1024 * 1024,
    cacheDir: opts.cacheDir ?? mkdtempSync(join(process.env.CODER_TEST_RUN_DIR ?? tmpdir(), "coder-cache-")),
    provisionerDaemons: opts.provisionerDaemons ?? 0,
    provisionerDaemonPsk: opts.provisionerDaemonPsk ?? "",
    provisionerJobHangTimeoutMs: opts.provisionerJobHangTimeoutMs ?? 5 * 60_000,
    provisionerJobPendingTimeoutMs: opts.provisionerJobPendingTimeoutMs ?? 30 * 60_000,
    wildcardAccessUrl: opts.wildcardAccessUrl,
    dangerousAllowPathAppSharing: opts.dangerousAllowPathAppSharing,
    dangerousAllowPathAppSiteOwnerAccess: opts.dangerousAllowPathAppSiteOwnerAccess,
    prometheus: opts.prometheus,
    healthCheckThresholdDatabaseMs: opts.healthCheckThresholdDatabaseMs,
    relay: { embedded: true, regionId: 999, regionCode: "coder", regionName: "Coder Embedded Relay", blockDirect: false, ...opts.relay },
  });
  const { port } = await coderd.listen("127.0.0.1", opts.port ?? 0);
  const url = `http://127.0.0.1:${port}`;
  coderd.setAccessUrl(url);
  const close = async () => {
    await coderd.close();
    await db.close();
  };
  if (!opts.manualClose) onTestFinished(close);
  return { url, databaseUrl, coderd, db, close, anonymous: () => new Client(url) };
}

export interface FirstUser {
  client: Client;
  userId: string;
  organizationId: string;
}

export async function createFirstUser(srv: TestServer): Promise<FirstUser> {
  const client = srv.anonymous();
  const res = await client.createFirstUser({ email: "owner@example.com", username: "owner", password: DEFAULT_PASSWORD });
  client.sessionToken = (await client.loginWithPassword("owner@example.com", DEFAULT_PASSWORD)).session_token;
  return { client, userId: res.user_id, organizationId: res.organization_id };
}

/** Creates a user with the given site roles and returns a client logged in as them. */
export async function createUserWithRoles(
  srv: TestServer,
  owner: Client,
  username: string,
  roles: string[] = [],
): Promise<{ client: Client; userId: string }> {
  const email = `${username}@example.com`;
  const user = await owner.createUser({ email, username, password: DEFAULT_PASSWORD });
  if (roles.length) await owner.updateUserRoles(user.id, roles);
  const client = srv.anonymous();
  client.sessionToken = (await client.loginWithPassword(email, DEFAULT_PASSWORD)).session_token;
  return { client, userId: user.id };
}

/**
 * After a test edits api_keys or users directly in SQL: tells every server process, as another
 * replica would, to drop what it cached for the user, and waits until the message was delivered.
 */
export async function invalidateAuthCache(srv: TestServer, userId: string): Promise<void> {
  let delivered!: () => void;
  const got = new Promise<void>((res) => (delivered = res));
  const unsubscribe = await srv.db.pubsub.subscribe(AUTH_INVALIDATE_CHANNEL, { onMessage: (p) => p === userId && delivered() });
  await srv.db.pubsub.publish(AUTH_INVALIDATE_CHANNEL, userId);
  await got;
  unsubscribe();
}
