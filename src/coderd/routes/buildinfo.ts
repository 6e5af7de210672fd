import { build } from "../../buildinfo/index.js";
import type { BuildInfo } from "../../codersdk/index.js";
import type { Ctx } from "../context.js";
import type { Router } from "../httpapi/route.js";

export function register(r: Router, ctx: Ctx): void {
  r.add({
    method: "GET",
    url: "/healthz",
    auth: "public",
    handler: async (_req, reply) => reply.type("text/plain").send("OK"),
  });
  r.add({
    method: "GET",
    url: "/api/v2/buildinfo",
    auth: "public",
    handler: async (): Promise<BuildInfo> => ({
      version: build.version,
      commit: build.commit,
      external_url: "",
      dashboard_url: ctx.accessUrl,
      deployment_id: ctx.deploymentId,
    }),
  });
}
