// Debug routes (owners only): the deployment health report. Others get 404, as in Coder: the
// debug surface is not advertised to those who may not read it.
import { z } from "zod";
import type * as sdk from "../../codersdk/index.js";
import type { Ctx } from "../context.js";
import { can } from "../httpapi/authz.js";
import { NotFoundError } from "../httpapi/errors.js";
import type { Router } from "../httpapi/route.js";
import { parseInput } from "../httpapi/validate.js";

const healthQuery = z.object({ force: z.enum(["true", "false", "1", "0"]).optional() });

export function register(r: Router, ctx: Ctx): void {
  r.add({
    method: "GET",
    url: "/api/v2/debug/health",
    auth: "user",
    handler: async (req): Promise<sdk.HealthReport> => {
      if (!can(req, "read", { type: "debug_info" })) throw new NotFoundError();
      const q = parseInput(healthQuery, req.query, "query");
      return ctx.healthChecker.report(q.force === "true" || q.force === "1");
    },
  });
}
