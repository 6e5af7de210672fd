// Logs (of jobs and of agents): a JSON list, or with ?follow a WebSocket that sends every line
// written so far and then each new one as it is written (by any replica: the writer notifies
// through pubsub), and closes once the source has ended and every line was sent.
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

/** The job or agent a WebSocket log request follows, settled (with permissions) before the upgrade. */
export const followedJobs = new WeakMap<FastifyRequest, string>();

/** ?after for a plain list; ?follow belongs on a WebSocket. */
export function listAfter(req: FastifyRequest): number {
  const q = parseInput(logsQuery, req.query, "query");
  if (q.follow === "" || q.follow === "true") throw new BadRequestError("Following logs needs a WebSocket upgrade.", "Connect with a WebSocket client, or leave out ?follow.");
  return q.after ?? 0;
}

export async function listLogs(ctx: Ctx, req: FastifyRequest, jobId: string): Promise<SdkLog[]> {
  return (await ctx.store.getProvisionerJobLogsAfter(jobId, listAfter(req))).map(presentLog);
}

export interface RowSource<R extends { id: number }> {
  /** The pubsub channel its writers notify (payload END_OF_LOGS when it has ended). */
  channel: string;
  fetchAfter(afterId: number, limit: number): Promise<R[]>;
  /** Whether no more rows will come (read before the rows, so none written before the end is missed). */
  ended(): Promise<boolean>;
  present(row: R): unknown;
}

export async function followRows<R extends { id: number }>(ctx: Ctx, socket: WebSocket, source: RowSource<R>, after: number): Promise<void> {
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
        if (await source.ended()) ended = true;
        for (;;) {
          const batch = await source.fetchAfter(last, 1000);
          for (const row of batch) {
            if (closed) return;
            socket.send(JSON.stringify(source.present(row)));
            last = row.id;
          }
          if (batch.length < 1000) break;
        }
      } while (rerun && !closed);
      if (ended && !closed) {
        unsubscribe();
        socket.close(1000, "ended");
      }
    } finally {
      running = false;
    }
  };

  const onError = () => socket.close(1011, "reading logs failed");
  unsubscribe = await ctx.pubsub.subscribe(source.channel, {
    onMessage: (payload) => {
      if (payload === JOB_ENDED) ended = true;
      void pump().catch(onError);
    },
    onDrop: () => void pump().catch(onError),
  });
  socket.on("close", () => unsubscribe());
  if (closed) unsubscribe();
  await pump();
}

export function followLogs(ctx: Ctx, socket: WebSocket, jobId: string, after: number): Promise<void> {
  return followRows(
    ctx,
    socket,
    {
      channel: jobLogsChannel(jobId),
      fetchAfter: (id, limit) => ctx.store.getProvisionerJobLogsAfter(jobId, id, limit),
      ended: async () => {
        const job = await ctx.store.getProvisionerJobById(jobId);
        return !job || job.completed_at !== null;
      },
      present: presentLog,
    },
    after,
  );
}
