// Assembles the HTTP API: framework settings, request ids and logging, the one error mapper,
// JSON 404s, and every route module.
import { randomUUID } from "node:crypto";
import websocket from "@fastify/websocket";
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from "fastify";
import { ApiKeyCache } from "./auth/api-key-cache.js";
import { AgentWrites } from "./agents/writes.js";
import type { CoderdOptions, Ctx } from "./context.js";
import { errorResponse, NotFoundError } from "./httpapi/errors.js";
import { Router, type RouteInfo } from "./httpapi/route.js";
import * as agents from "./routes/agents.js";
import * as apps from "./routes/apps.js";
import * as authentication from "./routes/authentication.js";
import { startBuiltinDaemons, type BuiltinDaemons } from "./provisionerdserver/builtin.js";
import { ProvisionerdServer } from "./provisionerdserver/server.js";
import { hostname } from "node:os";
import { sql } from "kysely";
import { build } from "../buildinfo/index.js";
import { DEFAULT_UPDATE_INTERVAL_MS, ReplicaSync } from "../replicasync/index.js";
import { RelayMesh, RelayServer } from "../tailnet/index.js";
import { Coordinator } from "./tailnet/coordinator.js";
import { AgentConns } from "./workspaceapps/agent-conns.js";
import { CoderdMetrics } from "./prometheusmetrics/index.js";
import { parseWildcardAccessUrl } from "./workspaceapps/hosts.js";
import * as buildinfo from "./routes/buildinfo.js";
import * as debug from "./routes/debug.js";
import { HealthChecker } from "./healthcheck/index.js";
import * as files from "./routes/files.js";
import * as organizations from "./routes/organizations.js";
import * as provisionerdaemons from "./routes/provisionerdaemons.js";
import * as pty from "./routes/pty.js";
import * as replicas from "./routes/replicas.js";
import * as tailnet from "./routes/tailnet.js";
import * as templates from "./routes/templates.js";
import * as tokens from "./routes/tokens.js";
import * as users from "./routes/users.js";
import * as workspaces from "./routes/workspaces.js";

export interface Coderd {
  app: FastifyInstance;
  routes: RouteInfo[];
  provisionerd: ProvisionerdServer;
  builtinDaemons: BuiltinDaemons;
  /** The embedded relay, when enabled. */
  relayServer: RelayServer | undefined;
  /** This replica in the registry (HA). */
  replicaSync: ReplicaSync;
  /** The embedded relay's mesh with the other replicas' relays. */
  relayMesh: RelayMesh | undefined;
  /** The Prometheus registry (serve it with serveMetrics from promhttp), when enabled. */
  metrics: CoderdMetrics | undefined;
  /** Listens on host:port; resolves with the bound address. */
  listen(host: string, port: number): Promise<{ host: string; port: number }>;
  /** Stops accepting, lets in-flight requests finish, then resolves. */
  close(): Promise<void>;
  /** For a server that learns its address only once it listens (port 0). */
  setAccessUrl(url: string): void;
  /** Likewise for CODER_DERP_SERVER_RELAY_URL (tests of several in-process replicas). */
  setRelayAddress(url: string): void;
}

export const REQUEST_ID_HEADER = "x-request-id";
const SHUTDOWN_GRACE_MS = 25_000;

export async function createCoderd(opts: CoderdOptions): Promise<Coderd> {
  const app = Fastify({
    loggerInstance: opts.logger as FastifyBaseLogger,
    // One line per request, written by the onResponse hook below.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: "request_id" }),
    genReqId: () => randomUUID(),
    bodyLimit: opts.maxRequestBodyBytes,
    return503OnClosing: true,
    forceCloseConnections: "idle",
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 256 },
    // Malformed URLs fail before routing; they get the same error shape as everything else.
    frameworkErrors: (err, req, reply) => {
      reply.header(REQUEST_ID_HEADER, req.id);
      const { status, body } = errorResponse(err);
      void (reply as FastifyReply).code(status).type("application/json").send(body);
    },
  });
  // The API speaks JSON only; anything else is a 415, not a string handed to a JSON schema.
  app.removeContentTypeParser("text/plain");

  const metrics = opts.prometheus ? new CoderdMetrics(opts.prometheus) : undefined;
  metrics?.instrumentApi(app);

  let closing = false;
  app.addHook("onRequest", async (req, reply) => {
    reply.header(REQUEST_ID_HEADER, req.id);
    // Once shutdown begins, a keep-alive connection ends with the response in flight on it.
    if (closing) reply.header("connection", "close");
  });

  // Postgres cannot store U+0000 in text; a path naming such a thing names nothing.
  app.addHook("preValidation", async (req) => {
    const params = req.params as Record<string, string> | undefined;
    if (params && Object.values(params).some((v) => typeof v === "string" && v.includes("\0"))) throw new NotFoundError();
  });

  app.addHook("onResponse", async (req, reply) => {
    const status = reply.statusCode;
    const fields = {
      method: req.method,
      route: req.routeOptions.url ?? "<unmatched>",
      status,
      duration_ms: Math.round(reply.elapsedTime * 100) / 100,
      user_id: req.auth?.user.id,
    };
    if (status >= 500) req.log.error(fields, "request failed");
    else req.log.info(fields, "request");
  });

  app.setErrorHandler((err, req, reply) => {
    const { status, body, internal } = errorResponse(err);
    if (internal) req.log.error({ err }, "internal error");
    if (internal) body.detail = `request id ${req.id}`;
    return reply.code(status).type("application/json").send(body);
  });

  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split("?")[0];
    return reply.code(404).send({ message: `Route not found: ${req.method} ${path}` });
  });

  await app.register(websocket, { options: { maxPayload: 64 * 1024 * 1024 } });
  metrics?.instrumentWebsockets(app);
  if (metrics) metrics.instrumentPubsub(opts.pubsub);
  if (opts.databasePoolStats) metrics?.instrumentDatabasePool(opts.databasePoolStats);
  const store = metrics && opts.prometheus?.collectDbMetrics ? metrics.instrumentStore(opts.store) : opts.store;

  const authCache = new ApiKeyCache(opts.pubsub);
  await authCache.start();
  const ctx = { ...opts, store, metrics, authCache, agentWrites: new AgentWrites(store, opts.pubsub) } as Ctx;
  ctx.provisionerd = new ProvisionerdServer(ctx, {
    hangTimeoutMs: opts.provisionerJobHangTimeoutMs,
    pendingTimeoutMs: opts.provisionerJobPendingTimeoutMs,
  });
  metrics?.instrumentProvisionerd(ctx.provisionerd, opts.store);
  await ctx.provisionerd.start();
  ctx.coordinator = new Coordinator(
    opts.store,
    opts.pubsub,
    opts.logger.child({ component: "coordinator" }),
    opts.replica?.updateIntervalMs ?? DEFAULT_UPDATE_INTERVAL_MS,
  );
  await ctx.coordinator.start();
  ctx.relayServer = opts.relay.embedded ? new RelayServer({ logger: opts.logger.child({ component: "relay" }) }) : undefined;
  // Created once by whichever replica comes first; every replica's relay proves it to the others.
  ctx.relayMesh = ctx.relayServer
    ? new RelayMesh(ctx.relayServer, { meshKey: await opts.store.ensureRelayMeshKey(), logger: opts.logger.child({ component: "relaymesh" }) })
    : undefined;
  ctx.replicaSync = new ReplicaSync({
    store: opts.store,
    pubsub: opts.pubsub,
    logger: opts.logger.child({ component: "replicasync" }),
    pingDatabase: () => sql`SELECT 1`.execute(opts.store.kysely),
    hostname: hostname(),
    regionId: opts.relay.regionId,
    relayAddress: opts.replica?.relayAddress ?? "",
    version: build.version,
    meshRequired: opts.relay.embedded,
    updateIntervalMs: opts.replica?.updateIntervalMs,
    latencyThresholdMs: opts.replica?.latencyThresholdMs,
  });
  ctx.replicaSync.on("peers", (peers) => {
    // With custom relays only, Postgres is the sole rendezvous: nothing to mesh.
    ctx.relayMesh?.setPeers(peers.map((p) => p.relay_address).filter(Boolean));
    // A replica that left may have been running jobs: fail them now, not at the next reap.
    ctx.provisionerd.reap().catch((err: unknown) => opts.logger.warn({ err }, "reaping after a replica left failed"));
  });
  await ctx.replicaSync.start();
  ctx.relayMesh?.setPeers(ctx.replicaSync.peers().map((p) => p.relay_address).filter(Boolean));
  if (metrics) {
    metrics.instrumentAgents(opts.store, () => tailnet.relayMap(ctx));
    if (ctx.relayServer) metrics.instrumentRelay(ctx.relayServer);
    metrics.instrumentReplicas(ctx.replicaSync, ctx.relayMesh);
  }

  ctx.agentConns = new AgentConns(ctx, opts.logger.child({ component: "agentconns" }));
  const wildcard = parseWildcardAccessUrl(opts.wildcardAccessUrl ?? "");

  ctx.healthChecker = new HealthChecker(ctx);
  const router = new Router(app, ctx);
  for (const mod of [buildinfo, debug, authentication, users, tokens, organizations, templates, workspaces, provisionerdaemons, agents, tailnet, pty, replicas]) mod.register(router, ctx);
  await apps.register(app, router, ctx, wildcard);
  // Archives are the only non-JSON bodies, accepted on the upload route alone.
  await app.register(async (scope) => {
    scope.addContentTypeParser(files.ARCHIVE_CONTENT_TYPES, { parseAs: "buffer", bodyLimit: opts.maxFileBytes }, (_req, body, done) => done(null, body));
    files.register(router.scoped(scope), ctx);
  });
  await app.ready();
  const builtin: BuiltinDaemons = await startBuiltinDaemons(ctx, ctx.provisionerd, opts.provisionerDaemons);
  ctx.healthChecker.start();

  return {
    app,
    routes: router.routes,
    async listen(host, port) {
      await app.listen({ host, port });
      const addr = app.server.address() as { address: string; port: number };
      return { host: addr.address, port: addr.port };
    },
    provisionerd: ctx.provisionerd,
    builtinDaemons: builtin,
    relayServer: ctx.relayServer,
    replicaSync: ctx.replicaSync,
    relayMesh: ctx.relayMesh,
    metrics,
    setAccessUrl: (url) => {
      ctx.accessUrl = url;
    },
    setRelayAddress: (url) => ctx.replicaSync.setRelayAddress(url),
    async close() {
      closing = true;
      ctx.healthChecker.stop();
      // Built-in daemons finish their jobs while the API still serves (they report through it).
      await builtin.shutdown();
      // Only then stopped: the others fail the jobs of a stopped replica's daemons. They stop
      // routing to this replica's relay at once.
      await ctx.replicaSync.stop();
      ctx.provisionerd.stop();
      // Connections that go idle after their in-flight response are closed as they do; those
      // still busy after the grace period are cut.
      const sweep = setInterval(() => app.server.closeIdleConnections(), 50);
      const force = setTimeout(() => app.server.closeAllConnections(), SHUTDOWN_GRACE_MS);
      try {
        await app.close();
      } finally {
        clearInterval(sweep);
        clearTimeout(force);
        authCache.stop();
        ctx.agentConns.close();
        ctx.relayMesh?.close();
        ctx.relayServer?.close();
        await ctx.coordinator.stop();
        metrics?.close();
      }
    },
  };
}
