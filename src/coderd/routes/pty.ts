// The web terminal: a browser's WebSocket joined to a reconnecting PTY on the agent, through
// coderd's own tunnel. Browser → agent: JSON messages {"data"?, "width"?, "height"?}, passed on
// as newline-delimited JSON. Agent → browser: the PTY's output bytes, as binary frames. The same
// `reconnect` id attaches to the same shell again, with its recent output replayed.
import type { Duplex } from "node:stream";
import type { FastifyBaseLogger, FastifyRequest } from "fastify";
import type { WebSocket } from "ws";
import { z } from "zod";
import { agentStatus } from "../agents/status.js";
import { loadAgent } from "../agents/load.js";
import type { Ctx } from "../context.js";
import type { Router } from "../httpapi/route.js";
import { parseInput } from "../httpapi/validate.js";

const dimension = (fallback: number) => z.coerce.number().int("must be a whole number").min(1, "must be at least 1").max(1000, "must be at most 1000").default(fallback);
const ptyQuery = z.object({
  reconnect: z.string({ error: "is required (an id for the session, e.g. a UUID)" }).regex(/^[A-Za-z0-9-]{1,64}$/, "must be 1 to 64 letters, digits or dashes (e.g. a UUID)"),
  width: dimension(80),
  height: dimension(24),
  command: z.string().min(1, "must not be empty").max(4096, "must be at most 4096 characters").optional(),
});

const inputMessage = z.object({
  data: z.string().optional(),
  width: z.number().int().min(1).max(1000).optional(),
  height: z.number().int().min(1).max(1000).optional(),
});

/** The agent reads input lines of at most 1 MiB. */
const MAX_INPUT_BYTES = 1024 * 1024 - 64;
/** Output queued on the WebSocket beyond which the PTY stream is paused. */
const HIGH_WATER = 1024 * 1024;
const LOW_WATER = 256 * 1024;

interface Target {
  agentId: string;
  status: string;
  header: { service: "pty"; id: string; width: number; height: number; command?: string };
}

const targets = new WeakMap<FastifyRequest, Target>();

export function register(r: Router, ctx: Ctx): void {
  r.add({
    method: "GET",
    url: "/api/v2/workspaceagents/:id/pty",
    auth: "user",
    preHandler: async (req) => {
      const { agent } = await loadAgent(ctx, req, (req.params as { id: string }).id, "ssh");
      const q = parseInput(ptyQuery, req.query, "query");
      targets.set(req, {
        agentId: agent.id,
        status: agentStatus(agent),
        header: { service: "pty", id: q.reconnect, width: q.width, height: q.height, ...(q.command ? { command: q.command } : {}) },
      });
    },
    websocket: (socket, req) => serveTerminal(ctx, socket, targets.get(req)!, req.log),
  });
}

/** WebSocket close reasons are at most 123 bytes. */
function close(ws: WebSocket, code: number, reason: string): void {
  let r = reason;
  while (Buffer.byteLength(r) > 123) r = r.slice(0, -1);
  // A paused socket would not read the peer's close frame.
  ws.resume();
  ws.close(code, r);
}

function serveTerminal(ctx: Ctx, ws: WebSocket, target: Target, log: FastifyBaseLogger): void {
  if (target.status !== "connected") return close(ws, 1011, `the workspace agent is not connected (${target.status})`);
  // Input waits (buffered by ws) until the PTY's stream is open.
  ws.pause();
  let stream: Duplex | undefined;
  let gone = false;
  ws.on("close", () => {
    gone = true;
    // The PTY lives on without us, for the next attach with the same id.
    stream?.destroy();
  });
  ctx.agentConns.openStream(target.agentId, target.header).then(
    (st) => {
      if (gone) return void st.destroy();
      stream = st;
      st.on("error", (err) => log.debug({ err: err.message }, "web terminal stream failed"));
      st.on("data", (chunk: Buffer) => {
        ws.send(chunk, { binary: true }, () => {
          if (st.isPaused() && ws.bufferedAmount < LOW_WATER) st.resume();
        });
        if (ws.bufferedAmount > HIGH_WATER) st.pause();
      });
      st.on("close", () => {
        if (!gone) close(ws, 1000, "the terminal session ended");
      });
      ws.on("message", (data, isBinary) => {
        const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
        if (buf.length > MAX_INPUT_BYTES) return close(ws, 1009, "input message too large (at most 1 MiB)");
        let msg: z.infer<typeof inputMessage>;
        try {
          const parsed = inputMessage.safeParse(JSON.parse(buf.toString("utf8")));
          if (!parsed.success) {
            const issue = parsed.error.issues[0]!;
            throw new Error(`${issue.path.join(".") || "message"}: ${issue.message}`);
          }
          msg = parsed.data;
        } catch (err) {
          return close(ws, 1007, `invalid message${isBinary ? " (binary)" : ""}: ${(err as Error).message}`);
        }
        if (!st.write(`${JSON.stringify(msg)}\n`)) {
          ws.pause();
          st.once("drain", () => ws.resume());
        }
      });
      ws.resume();
    },
    (err: Error) => {
      log.info({ agent_id: target.agentId, err: err.message }, "web terminal: agent unreachable");
      if (!gone) close(ws, 1011, `could not reach the workspace agent: ${err.message}`);
    },
  );
}
