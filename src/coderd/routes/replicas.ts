// HA: the alive replicas of the deployment. Owners only; others get 404, as for the debug routes,
// because replica addresses describe the deployment's insides.
import type * as sdk from "../../codersdk/index.js";
import type { Ctx } from "../context.js";
import { can } from "../httpapi/authz.js";
import { NotFoundError } from "../httpapi/errors.js";
import type { Router } from "../httpapi/route.js";
import { presentReplica } from "../present.js";

export function register(r: Router, ctx: Ctx): void {
  r.add({
    method: "GET",
    url: "/api/v2/replicas",
    auth: "user",
    handler: async (req): Promise<sdk.Replica[]> => {
      if (!can(req, "read", { type: "replicas" })) throw new NotFoundError();
      return (await ctx.replicaSync.fetchAll()).map(presentReplica);
    },
  });
}
