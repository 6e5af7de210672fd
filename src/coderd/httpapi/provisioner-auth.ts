// Provisioner daemons authenticate with the deployment's pre-shared key (compared in constant
// time) or, like any API client, with a user's token (whose rights the route then checks).
import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyRequest } from "fastify";
import type { Ctx } from "../context.js";
import { authenticate } from "./authenticate.js";
import { UnauthorizedError } from "./errors.js";

export const PSK_HEADER = "coder-provisioner-daemon-psk";

declare module "fastify" {
  interface FastifyRequest {
    /** Set when a provisioner daemon authenticated with the pre-shared key. */
    provisionerPsk?: boolean;
  }
}

const digest = (s: string) => createHash("sha256").update(s).digest();

export async function authenticateProvisioner(ctx: Ctx, req: FastifyRequest): Promise<void> {
  const presented = req.headers[PSK_HEADER];
  if (typeof presented === "string" && presented) {
    if (!ctx.provisionerDaemonPsk) {
      throw new UnauthorizedError("Provisioner daemon pre-shared keys are not enabled on this deployment.", "Set CODER_PROVISIONER_DAEMON_PSK on the server, or use a user's token.");
    }
    // Hashing first makes the comparison constant-time whatever the lengths.
    if (!timingSafeEqual(digest(presented), digest(ctx.provisionerDaemonPsk))) {
      throw new UnauthorizedError("Invalid provisioner daemon pre-shared key.");
    }
    req.provisionerPsk = true;
    return;
  }
  req.auth = await authenticate(ctx, req);
}
