// The coordinator: tells each peer about the peers it may reach. An agent learns of the clients
// that asked for it; a client learns of the one agent it asked for. State lives in Postgres and
// every change is announced on one pubsub channel, so any replica can serve any peer and a client
// on one replica finds an agent connected to another.
import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import type { Logger } from "pino";
import type { WebSocket } from "ws";
import type { Pubsub, Store, TailnetPeer } from "../../database/index.js";
import type { Coordination, CoordinatorMessage, Node, PeerInfo } from "../../tailnet/index.js";
import { CHANNEL_TAILNET } from "../pubsub-channels.js";
import { peerMessageSchema } from "./peer-message.js";

const MAX_MESSAGE_BYTES = 16 * 1024;

interface PeerConn {
  id: string;
  kind: "agent" | "client";
  agentId: string;
  socket: WebSocket;
}

const send = (c: PeerConn, msg: CoordinatorMessage) => {
  if (c.socket.readyState === c.socket.OPEN) c.socket.send(JSON.stringify(msg));
};

const info = (p: TailnetPeer): PeerInfo => ({ id: p.id, kind: p.kind, node: p.node as Node });

export class Coordinator {
  readonly id = randomUUID();
  private readonly agents = new Map<string, PeerConn>();
  private readonly clients = new Map<string, Set<PeerConn>>();
  private unsubscribe: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;

  /**
   * heartbeatMs: the replicas' heartbeat (CODER_REPLICA_UPDATE_INTERVAL). A replica that missed
   * three is gone, and its peers are announced as gone.
   */
  constructor(
    private readonly store: Store,
    private readonly pubsub: Pubsub,
    private readonly logger: Logger,
    private readonly heartbeatMs: number,
  ) {}

  async start(): Promise<void> {
    await this.store.heartbeatTailnetCoordinator(this.id);
    this.unsubscribe = await this.pubsub.subscribe(CHANNEL_TAILNET, {
      onMessage: (payload) => {
        const [agentId, peerId] = payload.split(" ");
        if (agentId && peerId) void this.changed(agentId, peerId).catch((err: unknown) => this.logger.warn({ err }, "coordinator update failed"));
      },
      onDrop: () => void this.resync().catch((err: unknown) => this.logger.warn({ err }, "coordinator resync failed")),
    });
    const beat = () => {
      this.timer = setTimeout(() => void this.heartbeat().finally(() => this.timer && beat()), this.heartbeatMs * (0.8 + Math.random() * 0.4));
    };
    beat();
  }

  private async heartbeat(): Promise<void> {
    try {
      await this.store.heartbeatTailnetCoordinator(this.id);
      for (const stale of await this.store.getStaleTailnetCoordinators(3 * this.heartbeatMs)) {
        this.logger.warn({ coordinator: stale }, "a replica's coordinator stopped heartbeating: its peers are gone");
        await this.announceGone(await this.store.deleteTailnetCoordinator(stale));
      }
    } catch (err) {
      this.logger.warn({ err }, "coordinator heartbeat failed");
    }
  }

  private announceGone(peers: Array<{ id: string; agent_id: string }>): Promise<void> {
    return this.pubsub.publishMany(peers.map((p) => ({ channel: CHANNEL_TAILNET, payload: `${p.agent_id} ${p.id}` })));
  }

  /** Serves an agent's coordinate connection (the agent is authenticated by its token). */
  serveAgent(socket: WebSocket, agentId: string): void {
    const conn: PeerConn = { id: agentId, kind: "agent", agentId, socket };
    // An agent that reconnects replaces its older connection.
    const old = this.agents.get(agentId);
    this.agents.set(agentId, conn);
    old?.socket.close(4000, "replaced by a newer connection");
    this.serve(conn, async () => {
      const clients = await this.store.getTailnetPeersOfAgent(agentId, "client");
      send(conn, { type: "peers", peers: clients.map(info) });
    });
  }

  /** Serves a client's coordinate connection for one agent (the route checked the user may reach it). */
  serveClient(socket: WebSocket, agentId: string): void {
    const conn: PeerConn = { id: randomUUID(), kind: "client", agentId, socket };
    let set = this.clients.get(agentId);
    if (!set) this.clients.set(agentId, (set = new Set()));
    set.add(conn);
    this.serve(conn, async () => {
      const agents = await this.store.getTailnetPeersOfAgent(agentId, "agent");
      send(conn, { type: "peers", peers: agents.map(info) });
    });
  }

  /**
   * A client inside this process (coderd's app proxy and web terminal) coordinating for one agent:
   * the same path as serveClient, over an in-memory socket instead of a WebSocket.
   */
  connectLocal(agentId: string): LocalCoordination {
    const local = new LocalCoordination();
    this.serveClient(local.socket as unknown as WebSocket, agentId);
    return local;
  }

  private serve(conn: PeerConn, greet: () => Promise<void>): void {
    const log = this.logger.child({ peer: conn.id, kind: conn.kind, agent_id: conn.agentId });
    // Messages are handled one at a time, in order, so the stored node is always the latest.
    let chain = greet().catch((err: unknown) => log.warn({ err }, "sending the peers failed"));
    conn.socket.on("message", (data, isBinary) => {
      chain = chain.then(async () => {
        let node: Node;
        try {
          if (isBinary || (data as Buffer).length > MAX_MESSAGE_BYTES) throw new Error("messages are JSON text of at most 16 KiB");
          const parsed = peerMessageSchema.safeParse(JSON.parse(data.toString()));
          if (!parsed.success) {
            const issue = parsed.error.issues[0]!;
            throw new Error(`${issue.path.join(".")}: ${issue.message}`);
          }
          node = parsed.data.node;
        } catch (err) {
          send(conn, { type: "error", message: `invalid message: ${(err as Error).message}` });
          conn.socket.close(1007, "invalid message");
          return;
        }
        try {
          await this.store.upsertTailnetPeer({ id: conn.id, kind: conn.kind, agentId: conn.agentId, coordinatorId: this.id, node });
          await this.pubsub.publish(CHANNEL_TAILNET, `${conn.agentId} ${conn.id}`);
        } catch (err) {
          log.warn({ err }, "storing a peer's node failed");
          conn.socket.close(1011, "coordinator unavailable");
        }
      });
    });
    conn.socket.on("close", () => {
      if (conn.kind === "agent") {
        if (this.agents.get(conn.agentId) === conn) this.agents.delete(conn.agentId);
        // A newer connection of the agent (here or on another replica) keeps the row.
        else return;
      } else {
        const set = this.clients.get(conn.agentId);
        set?.delete(conn);
        if (set?.size === 0) this.clients.delete(conn.agentId);
      }
      void chain
        .then(async () => {
          if (await this.store.deleteTailnetPeer(conn.id, this.id)) await this.pubsub.publish(CHANNEL_TAILNET, `${conn.agentId} ${conn.id}`);
        })
        .catch((err: unknown) => log.warn({ err }, "removing a peer failed"));
    });
  }

  /** A peer around agentId changed (here or on another replica): tell the local peers that care. */
  private async changed(agentId: string, peerId: string): Promise<void> {
    const agent = this.agents.get(agentId);
    const clients = this.clients.get(agentId);
    if (!agent && !clients) return;
    const row = await this.store.getTailnetPeer(peerId);
    const isAgent = peerId === agentId;
    const targets = isAgent ? [...(clients ?? [])] : agent ? [agent] : [];
    const msg: CoordinatorMessage = row?.node ? { type: "peers", peers: [info(row)] } : { type: "peer_gone", id: peerId };
    for (const t of targets) send(t, msg);
  }

  /** After pubsub may have dropped messages: every local peer gets the full current picture. */
  private async resync(): Promise<void> {
    for (const [agentId, conn] of this.agents) {
      send(conn, { type: "peers", peers: (await this.store.getTailnetPeersOfAgent(agentId, "client")).map(info) });
    }
    for (const [agentId, set] of this.clients) {
      const peers = (await this.store.getTailnetPeersOfAgent(agentId, "agent")).map(info);
      for (const c of set) send(c, { type: "peers", peers });
    }
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.unsubscribe?.();
    for (const c of this.agents.values()) c.socket.close(1001, "server shutting down");
    for (const set of this.clients.values()) for (const c of set) c.socket.close(1001, "server shutting down");
    // The other replicas learn at once that this one's peers are gone.
    try {
      await this.announceGone(await this.store.deleteTailnetCoordinator(this.id));
    } catch (err) {
      this.logger.warn({ err }, "removing this coordinator's peers failed");
    }
  }
}

/** The part of a ws WebSocket the coordinator uses, carried in memory. */
class MemorySocket extends EventEmitter {
  readonly OPEN = 1;
  readyState = 1;

  constructor(
    private readonly deliver: (text: string) => void,
    private readonly onClose: () => void,
  ) {
    super();
  }

  /** Coordinator → peer. Delivered on a later tick, as a network would. */
  send(data: string): void {
    if (this.readyState === this.OPEN) queueMicrotask(() => this.readyState === this.OPEN && this.deliver(data));
  }

  close(): void {
    if (this.readyState !== this.OPEN) return;
    this.readyState = 3;
    queueMicrotask(() => {
      this.emit("close");
      this.onClose();
    });
  }
}

/** A Coordination for an AgentConn inside coderd; "closed" when the coordinator dropped it. */
export class LocalCoordination extends EventEmitter<{ peers: [Map<string, PeerInfo>]; refused: [Error]; closed: [] }> implements Coordination {
  readonly peers = new Map<string, PeerInfo>();
  readonly socket = new MemorySocket(
    (text) => this.receive(text),
    () => this.emit("closed"),
  );

  get closed(): boolean {
    return this.socket.readyState !== this.socket.OPEN;
  }

  setNode(node: Node): void {
    if (!this.closed) this.socket.emit("message", Buffer.from(JSON.stringify({ type: "node", node })), false);
  }

  private receive(text: string): void {
    const msg = JSON.parse(text) as CoordinatorMessage;
    if (msg.type === "peers") {
      for (const p of msg.peers) this.peers.set(p.id, p);
      this.emit("peers", this.peers);
    } else if (msg.type === "peer_gone") {
      if (this.peers.delete(msg.id)) this.emit("peers", this.peers);
    }
  }

  close(): void {
    this.socket.close();
  }
}
