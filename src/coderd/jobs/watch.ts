// Server-sent events for a workspace: its current state at once, then again after every change
// published from any replica, with a keep-alive comment so proxies keep the stream open.
import type { FastifyReply } from "fastify";
import type { Ctx } from "../context.js";
import { workspaceChannel } from "../pubsub-channels.js";

const KEEPALIVE_MS = 15_000;

export async function watchWorkspace(ctx: Ctx, reply: FastifyReply, workspaceId: string, render: () => Promise<unknown>): Promise<void> {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    connection: "keep-alive",
    "x-accel-buffering": "no",
    "x-request-id": String(reply.request.id),
  });
  let sending = Promise.resolve();
  const send = () =>
    (sending = sending.then(async () => {
      if (res.destroyed) return;
      const data = await render().catch(() => undefined);
      if (data === undefined) {
        res.write(`event: error\ndata: ${JSON.stringify({ message: "The workspace is gone." })}\n\n`);
        return;
      }
      res.write(`event: data\ndata: ${JSON.stringify(data)}\n\n`);
    }));
  const unsubscribe = await ctx.pubsub.subscribe(workspaceChannel(workspaceId), { onMessage: send, onDrop: send });
  const keepalive = setInterval(() => res.write(": keep-alive\n\n"), KEEPALIVE_MS);
  res.on("close", () => {
    clearInterval(keepalive);
    unsubscribe();
  });
  await send();
}
