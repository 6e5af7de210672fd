// The daemons that run inside `coder server` (CODER_PROVISIONER_DAEMONS): the same daemon as
// `coder provisioner start`, linked to ProvisionerdServer in-process instead of over a socket.
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { join } from "node:path";
import { build, coderCommand, coderInstallRoot } from "../../buildinfo/index.js";
import type { ProvisionerDaemon as DaemonRow } from "../../database/index.js";
import { ProvisionerDaemon, type ProvisionerdClient } from "../../provisionerd/index.js";
import { LocalDriver } from "../../provisioners/index.js";
import type { Ctx } from "../context.js";
import { NotFoundError } from "../httpapi/errors.js";
import { HOST_TAG, type ProvisionerdServer } from "./server.js";

function inProcessClient(ctx: Ctx, server: ProvisionerdServer, daemon: DaemonRow): ProvisionerdClient {
  return {
    acquireJob: (signal) => server.acquireJob(daemon, signal),
    updateJob: (jobId, logs) => server.updateJob(daemon, jobId, logs),
    completeJob: (job) => server.completeJob(daemon, job),
    failJob: (job) => server.failJob(daemon, job),
    fetchFile: async (fileId) => {
      const file = await ctx.store.getFileById(fileId);
      if (!file) throw new NotFoundError("Template archive not found.");
      return file.data;
    },
    close: () => server.disconnect(daemon),
  };
}

export interface BuiltinDaemons {
  daemons: ProvisionerDaemon[];
  /** Lets running jobs finish, then stops. */
  shutdown(): Promise<void>;
}

export async function startBuiltinDaemons(ctx: Ctx, server: ProvisionerdServer, count: number): Promise<BuiltinDaemons> {
  const org = await ctx.store.getDefaultOrganization();
  if (!org) throw new Error("the default organization is missing");
  const daemons: ProvisionerDaemon[] = [];
  const start = async (organizationId: string) => {
    // Unique per process: replicas on one host must not share a daemon identity.
    const suffix = randomBytes(3).toString("hex");
    const driver = new LocalDriver({ workspacesDir: join(ctx.cacheDir, "workspaces"), agentCommand: [...coderCommand, "agent"], agentReadOnlyPaths: [coderInstallRoot] });
    for (let i = 0; i < count; i++) {
      const row = await server.register({
        organizationId,
        name: `${hostname()}-${suffix}-built-in-${i}`,
        tags: { [HOST_TAG]: hostname() },
        provisioners: ["local"],
        version: build.version,
        replicaId: ctx.replicaSync.id,
      });
      const d = new ProvisionerDaemon({
        client: inProcessClient(ctx, server, row),
        drivers: { local: driver },
        workDir: join(ctx.cacheDir, "provisionerd", `${suffix}-${i}`),
        logger: ctx.logger.child({ component: "provisionerd", daemon: row.name }),
      });
      d.start();
      daemons.push(d);
    }
  };
  if (count > 0) await start(org.id);
  return {
    daemons,
    shutdown: async () => {
      await Promise.all(daemons.map((d) => d.shutdown("graceful")));
    },
  };
}
