// A client's connection to one workspace agent (what `coder ssh`, port-forward, speedtest, ping,
// and coderd's app proxy and web terminal use): coordinate to learn the agent's key, relay and
// direct endpoints; open an encrypted session through the relay, and a direct one when the
// agent's endpoints are reachable. New
// streams take the direct path while it lives and fall back to the relay when it dies; a session
// that died (the agent restarted) is dialed again on the next stream.
import { EventEmitter } from "node:events";
import { connect as tcpConnect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { Node, PeerInfo } from "./coordination/protocol.js";
import { decodeKey, encodeKey, generateKeyPair, type KeyPair } from "./keys.js";
import { RelayClient } from "./relay/index.js";
import { relayNodeUrl, type RelayMap } from "./relay-map.js";
import { Session } from "./session/index.js";

export type AgentPath = "relay" | "direct";

/** What an AgentConn needs of coordination: the peers it may reach, and a way to announce itself. */
export interface Coordination {
  readonly peers: Map<string, PeerInfo>;
  setNode(node: Node): void;
  on(event: "peers", listener: (peers: Map<string, PeerInfo>) => void): unknown;
  on(event: "refused", listener: (err: Error) => void): unknown;
  off(event: "peers", listener: (peers: Map<string, PeerInfo>) => void): unknown;
  off(event: "refused", listener: (err: Error) => void): unknown;
  close(): void;
}

export interface AgentConnOptions {
  /** Never use a direct path (also CODER_BLOCK_DIRECT, and the deployment's own setting). */
  blockDirect?: boolean;
  /** How long to wait for the agent to be reachable. Default 30 s. */
  timeoutMs?: number;
  logger?: { debug(obj: object, msg: string): void };
}

const DIRECT_DIAL_TIMEOUT_MS = 1_500;

export class AgentConn extends EventEmitter<{ path: [AgentPath]; lost: [Error] }> {
  readonly keyPair: KeyPair = generateKeyPair();
  private relays = new Map<string, RelayClient>();
  private relaySession: Promise<Session> | undefined;
  private direct: Session | undefined;
  /** A direct session still in its handshake: closed with us, so it keeps nothing alive. */
  private directPending: Session | undefined;
  private directTried = "";
  private closed = false;
  private readonly blockDirect: boolean;

  constructor(
    private readonly coordination: Coordination,
    private readonly relayMap: RelayMap,
    private readonly opts: AgentConnOptions = {},
  ) {
    super();
    this.blockDirect = Boolean(opts.blockDirect || /^(1|true|yes)$/i.test(process.env.CODER_BLOCK_DIRECT ?? ""));
  }

  /** Resolves once a session to the agent is up. */
  async connect(): Promise<void> {
    // Our key reaches the agent before we dial, so it lets us in at once.
    this.coordination.setNode({ key: encodeKey(this.keyPair.publicKey), preferred_relay: 0, endpoints: [] });
    this.coordination.on("peers", () => this.maybeDirect());
    await this.session();
  }

  /** The path new streams take now. */
  get path(): AgentPath {
    return this.direct ? "direct" : "relay";
  }

  private agentPeer(): Promise<PeerInfo> {
    const found = () => [...this.coordination.peers.values()].find((p) => p.kind === "agent");
    const now = found();
    if (now) return Promise.resolve(now);
    const timeoutMs = this.opts.timeoutMs ?? 30_000;
    return new Promise((resolve, reject) => {
      const done = (err?: Error, p?: PeerInfo) => {
        clearTimeout(timer);
        this.coordination.off("peers", onPeers);
        this.coordination.off("refused", onRefused);
        if (err) reject(err);
        else resolve(p!);
      };
      const onPeers = () => {
        const p = found();
        if (p) done(undefined, p);
      };
      const onRefused = (err: Error) => done(err);
      const timer = setTimeout(() => done(new Error(`the agent did not connect to the coordinator within ${Math.round(timeoutMs / 1000)}s: is the workspace running?`)), timeoutMs);
      this.coordination.on("peers", onPeers);
      this.coordination.on("refused", onRefused);
    });
  }

  /** The session streams go on: direct if up, else the relay's (dialed again if it died). */
  private async session(): Promise<{ session: Session; path: AgentPath }> {
    if (this.closed) throw new Error("the connection to the agent is closed");
    if (this.direct) return { session: this.direct, path: "direct" };
    this.relaySession ??= this.dialRelay();
    try {
      return { session: await this.relaySession, path: "relay" };
    } catch (err) {
      this.relaySession = undefined;
      throw err;
    }
  }

  private async dialRelay(): Promise<Session> {
    const peer = await this.agentPeer();
    const region = this.relayMap.Regions[String(peer.node.preferred_relay)];
    if (!region) throw new Error(`the agent's relay region ${peer.node.preferred_relay} is not in this deployment's relay map`);
    const url = relayNodeUrl(region.Nodes[0]!);
    let relay = this.relays.get(url);
    if (!relay) {
      relay = new RelayClient({ url, keyPair: this.keyPair });
      this.relays.set(url, relay);
      await relay.connect();
    }
    const session = Session.initiate(relay.dial(decodeKey(peer.node.key)), { keyPair: this.keyPair, remotePublicKey: decodeKey(peer.node.key) });
    session.on("close", (err) => {
      this.relaySession = undefined;
      if (!this.closed && err) this.emit("lost", err);
    });
    await session.ready;
    this.opts.logger?.debug({ relay: url }, "relayed session up");
    this.maybeDirect();
    return session;
  }

  /** Tries the agent's direct endpoints (once per set of endpoints); the first that answers wins. */
  private maybeDirect(): void {
    if (this.blockDirect || this.direct || this.closed) return;
    const peer = [...this.coordination.peers.values()].find((p) => p.kind === "agent");
    const endpoints = (peer?.node.endpoints ?? []).filter((e) => e.startsWith("tcp:"));
    const key = `${peer?.node.key} ${endpoints.join(",")}`;
    if (!peer || !endpoints.length || key === this.directTried) return;
    this.directTried = key;
    const remote = decodeKey(peer.node.key);
    const dials = endpoints.map((e) => dialTcp(e));
    const winner = Promise.any(dials);
    // Endpoints that answer after the first are closed at once: an idle socket would keep this
    // process (and the agent's handshake timer) alive.
    for (const d of dials) void Promise.all([d, winner]).then(([s, w]) => s !== w && s.destroy(), () => {});
    void winner.then(
      (socket) => {
        if (this.closed || this.direct) return socket.destroy();
        const session = Session.initiate(socket, { keyPair: this.keyPair, remotePublicKey: remote });
        this.directPending = session;
        session.ready.then(
          () => {
            this.directPending = undefined;
            if (this.closed) return session.close();
            this.direct = session;
            this.opts.logger?.debug({ endpoint: socket.remoteAddress }, "direct session up");
            this.emit("path", "direct");
          },
          () => {
            if (this.directPending === session) this.directPending = undefined;
          },
        );
        session.on("close", () => {
          if (this.direct !== session) return;
          this.direct = undefined;
          // The endpoints may work again later (the agent restarted): allow another try.
          this.directTried = "";
          if (!this.closed) this.emit("path", "relay");
        });
      },
      () => this.opts.logger?.debug({ endpoints }, "no direct endpoint answered; staying on the relay"),
    );
  }

  /** Opens a stream to one of the agent's services. */
  async openStream(header: object): Promise<{ stream: Duplex; path: AgentPath }> {
    const { session, path } = await this.session();
    return { stream: session.openStream(header), path };
  }

  /** One round trip to the agent through its echo service. */
  async ping(): Promise<{ ms: number; path: AgentPath }> {
    const { stream, path } = await this.openStream({ service: "ping" });
    try {
      const t0 = performance.now();
      const echoed = new Promise<void>((resolve, reject) => {
        stream.once("data", () => resolve());
        stream.once("error", reject);
        stream.once("close", () => reject(new Error("the agent closed the ping stream")));
      });
      stream.write(Buffer.from([1]));
      await echoed;
      return { ms: performance.now() - t0, path };
    } finally {
      stream.destroy();
    }
  }

  close(): void {
    this.closed = true;
    this.direct?.close();
    this.directPending?.close();
    void this.relaySession?.then((s) => s.close(), () => {});
    for (const r of this.relays.values()) r.close();
    this.coordination?.close();
  }
}

function dialTcp(endpoint: string): Promise<Socket> {
  const m = /^tcp:(.+):(\d+)$/.exec(endpoint)!;
  const host = m[1]!.replace(/^\[|\]$/g, "");
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host, port: Number(m[2]), noDelay: true });
    const timer = setTimeout(() => socket.destroy(new Error("timed out")), DIRECT_DIAL_TIMEOUT_MS);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.removeAllListeners("error");
      socket.on("error", () => {});
      resolve(socket);
    });
    socket.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

