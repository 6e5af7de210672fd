// Job logs: a JSON list, or with ?follow a WebSocket that sends every line written so far and
// then each new one as it is written (by any replica: the writer notifies through pubsub), and
// closes when the job has ended and every line was sent.
import type { FastifyRequest } from "fastify";
import type { WebSocket } from "ws";
import { z } from "zod";
import type { ProvisionerJobLog as SdkLog } from "../../codersdk/index.js";
import type { ProvisionerJobLog } from "../../database/index.js";
import type { Ctx } from "../context.js";
import { BadRequestError } from "../httpapi/errors.js";
import { parseInput } from "../httpapi/validate.js";
import { JOB_ENDED, jobLogsChannel } from "../pubsub-channels.js";

export const logsQuery = z.object({
  follow: z.union([z.literal(""), z.literal("true"), z.literal("false")]).optional(),
  after: z.coerce.number().int("must be an integer").min(0, "must not be negative").optional(),
});

export const presentLog = (l: ProvisionerJobLog): SdkLog => ({
  id: l.id,
  created_at: l.created_at.toISOString(),
  source: l.source,
  level: l.level,
  stage: l.stage,
  output: l.output,
});

/** The job a WebSocket log request follows, settled (with permissions) before the upgrade. */
export const followedJobs = new WeakMap<FastifyRequest, string>();

export async function listLogs(ctx: Ctx, req: FastifyRequest, jobId: string): Promise<SdkLog[]> {
  const q = parseInput(logsQuery, req.query, "query");
  if (q.follow === "" || q.follow === "true") throw new BadRequestError("Following logs needs a WebSocket upgrade.", "Connect with a WebSocket client, or leave out ?follow.");
  return (await ctx.store.getProvisionerJobLogsAfter(jobId, q.after ?? 0)).map(presentLog);
}

export async function followLogs(ctx: Ctx, socket: WebSocket, jobId: string, after: number): Promise<void> {
  let last = after;
  let ended = false;
  let running = false;
  let rerun = false;
  let closed = false;
  socket.on("close", () => (closed = true));

  // Assigned once the subscription exists; a notification can arrive before that.
  let unsubscribe = () => {};
  const pump = async (): Promise<void> => {
    if (running) {
      rerun = true;
      return;
    }
    running = true;
    try {
      do {
        rerun = false;
        // Whether the job had ended is read before the logs, so no line written before the end is missed.
        const job = await ctx.store.getProvisionerJobById(jobId);
        if (!job || job.completed_at) ended = true;
        for (;;) {
          const batch = await ctx.store.getProvisionerJobLogsAfter(jobId, last, 1000);
          for (const l of batch) {
            if (closed) return;
            socket.send(JSON.stringify(presentLog(l)));
            last = l.id;
          }
          if (batch.length < 1000) break;
        }
      } while (rerun && !closed);
      if (ended && !closed) {
        unsubscribe();
        socket.close(1000, "job ended");
      }
    } finally {
      running = false;
    }
  };

  unsubscribe = await ctx.pubsub.subscribe(jobLogsChannel(jobId), {
    onMessage: (payload) => {
      if (payload === JOB_ENDED) ended = true;
      void pump().catch(() => socket.close(1011, "reading logs failed"));
    },
    onDrop: () => void pump().catch(() => socket.close(1011, "reading logs failed")),
  });
  socket.on("close", () => unsubscribe());
  if (closed) unsubscribe();
  await pump();
}
