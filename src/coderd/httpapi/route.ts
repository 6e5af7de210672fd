// Route declaration: each route says who may call it (anyone, a logged-in user, or a
// provisioner daemon with the pre-shared key or a user's token); the declarations are recorded
// so a test can prove every route is covered by the RBAC table.
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from "fastify";
import type { WebSocket } from "ws";
import type { Ctx } from "../context.js";
import { authenticateAgent } from "./agent-auth.js";
import { authenticate } from "./authenticate.js";
import { BadRequestError } from "./errors.js";
import { authenticateProvisioner } from "./provisioner-auth.js";

export type RouteAuth = "public" | "user" | "provisioner" | "agent";

export interface RouteDef {
  method: HTTPMethods;
  url: string;
  auth: RouteAuth;
  bodyLimit?: number;
  handler?: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
  /** Runs after authentication and before the handler (or the WebSocket upgrade). */
  preHandler?: (req: FastifyRequest) => Promise<void>;
  /** For WebSocket routes: runs after authentication, once the upgrade is done. */
  websocket?: (socket: WebSocket, req: FastifyRequest) => void;
}

export interface RouteInfo {
  method: string;
  url: string;
  auth: RouteAuth;
}

const needsUpgrade = async () => {
  throw new BadRequestError("This endpoint needs a WebSocket upgrade.", "Connect with a WebSocket client.");
};

export class Router {
  constructor(
    private readonly app: FastifyInstance,
    private readonly ctx: Ctx,
    readonly routes: RouteInfo[] = [],
  ) {}

  /** The same route list on an encapsulated Fastify scope (its own content-type parsers). */
  scoped(scope: FastifyInstance): Router {
    return new Router(scope, this.ctx, this.routes);
  }

  add(def: RouteDef): void {
    this.routes.push({ method: def.method as string, url: def.url, auth: def.auth });
    const ctx = this.ctx;
    const hooks: Array<(req: FastifyRequest) => Promise<void>> = [];
    if (def.auth === "user") {
      hooks.push(async (req) => {
        req.auth = await authenticate(ctx, req);
      });
    } else if (def.auth === "provisioner") {
      hooks.push((req) => authenticateProvisioner(ctx, req));
    } else if (def.auth === "agent") {
      hooks.push((req) => authenticateAgent(ctx, req));
    }
    if (def.preHandler) hooks.push(def.preHandler);
    this.app.route({
      method: def.method,
      url: def.url,
      bodyLimit: def.bodyLimit,
      preHandler: hooks,
      handler: def.handler ?? needsUpgrade,
      ...(def.websocket ? { wsHandler: def.websocket } : {}),
    });
  }
}
