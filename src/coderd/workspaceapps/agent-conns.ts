// coderd as a peer of its workspaces' agents: one AgentConn per agent, shared by every app request
// and web terminal this replica serves for it, coordinated in-process (no WebSocket to itself),
// closed once nothing used it for a while and when coderd stops.
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import { AgentConn } from "../../tailnet/index.js";
import type { Ctx } from "../context.js";
import { relayMap } from "../routes/tailnet.js";
import type { LocalCoordination } from "../tailnet/coordinator.js";

const IDLE_MS = 5 * 60_000;
const CONNECT_TIMEOUT_MS = 15_000;

interface Entry {
  conn: AgentConn;
  coordination: LocalCoordination;
  ready: Promise<void>;
  /** Streams open now; the entry is idle at 0. */
  active: number;
  idleTimer: NodeJS.Timeout | undefined;
  dropped: boolean;
}

export interface AgentConnsOptions {
  idleMs?: number;
  connectTimeoutMs?: number;
}

export class AgentConns {
  private readonly entries = new Map<string, Entry>();
  private closed = false;
  private readonly idleMs: number;
  private readonly connectTimeoutMs: number;

  constructor(
    private readonly ctx: Ctx,
    private readonly logger: Logger,
    opts: AgentConnsOptions = {},
  ) {
    this.idleMs = opts.idleMs ?? IDLE_MS;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
  }

  /** Agents with a connection now (for tests and debugging). */
  get size(): number {
    return this.entries.size;
  }

  /**
   * Opens a stream to one of the agent's services. The connection stays in use while the stream
   * is open; rejects when the agent cannot be reached.
   */
  async openStream(agentId: string, header: object): Promise<Duplex> {
    if (this.closed) throw new Error("coderd is shutting down");
    const entry = this.entry(agentId);
    entry.active++;
    this.touch(entry);
    let stream: Duplex;
    try {
      await entry.ready;
      ({ stream } = await entry.conn.openStream(header));
    } catch (err) {
      entry.active--;
      this.touch(entry);
      throw err;
    }
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      entry.active--;
      this.touch(entry);
    };
    stream.once("close", release);
    if (stream.destroyed) release();
    return stream;
  }

  private entry(agentId: string): Entry {
    const found = this.entries.get(agentId);
    if (found) return found;
    const coordination = this.ctx.coordinator.connectLocal(agentId);
    const conn = new AgentConn(coordination, relayMap(this.ctx), {
      blockDirect: this.ctx.relay.blockDirect,
      timeoutMs: this.connectTimeoutMs,
      logger: this.logger,
    });
    const entry: Entry = { conn, coordination, ready: conn.connect(), active: 0, idleTimer: undefined, dropped: false };
    // A failed dial is forgotten, so the next request tries again.
    entry.ready.catch((err: unknown) => {
      this.logger.debug({ agent_id: agentId, err: (err as Error).message }, "connecting to the agent failed");
      this.drop(agentId, entry);
    });
    // The coordinator dropped us (shutdown, store failure): the agent will stop trusting our key.
    coordination.once("closed", () => this.drop(agentId, entry));
    conn.on("lost", (err) => this.logger.debug({ agent_id: agentId, err: err.message }, "session to the agent lost; redialing on next use"));
    this.entries.set(agentId, entry);
    return entry;
  }

  private touch(entry: Entry): void {
    clearTimeout(entry.idleTimer);
    entry.idleTimer = undefined;
    if (entry.active > 0 || entry.dropped || this.closed) return;
    entry.idleTimer = setTimeout(() => {
      for (const [id, e] of this.entries) if (e === entry) this.drop(id, entry);
    }, this.idleMs);
    entry.idleTimer.unref();
  }

  private drop(agentId: string, entry: Entry): void {
    if (entry.dropped) return;
    entry.dropped = true;
    clearTimeout(entry.idleTimer);
    if (this.entries.get(agentId) === entry) this.entries.delete(agentId);
    entry.conn.close();
  }

  /** Closes every connection (their open streams end with them). */
  close(): void {
    this.closed = true;
    for (const [id, e] of [...this.entries]) this.drop(id, e);
  }
}
