// Route declaration: each route says whether it is public or needs a logged-in user; the
// declarations are recorded so a test can prove every route is covered by the RBAC table.
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from "fastify";
import type { Ctx } from "../context.js";
import { authenticate } from "./authenticate.js";

export type RouteAuth = "public" | "user";

export interface RouteDef {
  method: HTTPMethods;
  url: string;
  auth: RouteAuth;
  bodyLimit?: number;
  handler: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
}

export interface RouteInfo {
  method: string;
  url: string;
  auth: RouteAuth;
}

export class Router {
  readonly routes: RouteInfo[] = [];

  constructor(
    private readonly app: FastifyInstance,
    private readonly ctx: Ctx,
  ) {}

  add(def: RouteDef): void {
    this.routes.push({ method: def.method as string, url: def.url, auth: def.auth });
    const ctx = this.ctx;
    this.app.route({
      method: def.method,
      url: def.url,
      bodyLimit: def.bodyLimit,
      preHandler:
        def.auth === "user"
          ? async (req) => {
              req.auth = await authenticate(ctx, req);
            }
          : undefined,
      handler: def.handler,
    });
  }
}
