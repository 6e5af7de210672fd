// A client's connection to one workspace agent (what `coder ssh`, port-forward, speedtest, ping,
// and coderd's app proxy and web terminal use): coordinate to learn the agent's key, relay and
// direct endpoints; open an encrypted session through the relay, and a direct one when the
// agent's endpoints (TCP or UDP) are reachable. New
// streams take the direct path while it lives and fall back to the relay when it dies; a session
// that died (the agent restarted) is dialed again on the next stream. Streams are resumable: when
// the session under one fails (the direct path died, a relay replica went away), it moves to the
// session that works now, and SSH or a forwarded connection goes on without a byte lost.
import { EventEmitter } from "node:events";
import { connect as tcpConnect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { Node, PeerInfo } from "./coordination/protocol.js";
import { decodeKey, encodeKey, generateKeyPair, type KeyPair } from "./keys.js";
import { RelayClient } from "./relay/index.js";
import { relayNodeUrl, type RelayMap } from "./relay-map.js";
import { Session, type SessionStream } from "./session/index.js";
import { dialUdx, type UdxStream } from "./udx/index.js";

export type AgentPath = "relay" | "direct";
export type DirectTransport = "tcp" | "udp";

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
/** How long a stream whose session failed waits for its agent to be reachable again. */
const RESUME_AGENT_WAIT_MS = 15_000;
/** How long a ready UDP direct session waits for the TCP one before it is taken instead. */
const PREFER_TCP_GRACE_MS = 2_000;

export class AgentConn extends EventEmitter<{ path: [AgentPath]; lost: [Error]; resumed: [AgentPath] }> {
  readonly keyPair: KeyPair = generateKeyPair();
  private relays = new Map<string, { client: RelayClient; connected: Promise<void> }>();
  private relaySession: Promise<Session> | undefined;
  private direct: Session | undefined;
  /** Direct sessions still in their handshake: closed with us, so they keep nothing alive. */
  private readonly directPending = new Set<Session>();
  /** Stops the dials of the current direct attempt. */
  private directAbort: AbortController | undefined;
  private transport: DirectTransport | undefined;
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

  /** What the direct path runs over while there is one: "tcp", or "udp" (UDX); undefined on the relay. */
  get directTransport(): DirectTransport | undefined {
    return this.direct ? this.transport : undefined;
  }

  private agentPeer(timeoutMs = this.opts.timeoutMs ?? 30_000): Promise<PeerInfo> {
    const found = () => [...this.coordination.peers.values()].find((p) => p.kind === "agent");
    const now = found();
    if (now) return Promise.resolve(now);
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
    for (;;) {
      if (this.closed) throw new Error("the connection to the agent is closed");
      // A session that is closing is skipped at once: its 'close' (which forgets it) comes later.
      if (this.direct && !this.direct.isClosing) return { session: this.direct, path: "direct" };
      const pending = (this.relaySession ??= this.dialRelay());
      let session: Session;
      try {
        session = await pending;
      } catch (err) {
        if (this.relaySession === pending) this.relaySession = undefined;
        throw err;
      }
      if (!session.isClosing) return { session, path: "relay" };
      if (this.relaySession === pending) this.relaySession = undefined;
    }
  }

  private async dialRelay(): Promise<Session> {
    // With one region (the embedded relay, or replicas meshed behind one URL) the agent's relay is
    // known before the coordinator names it: connect while waiting for the agent's node.
    const regions = Object.values(this.relayMap.Regions);
    const only = regions.length === 1 ? regions[0]!.Nodes[0] : undefined;
    if (only) this.relayAt(relayNodeUrl(only)).catch(() => {});
    const peer = await this.agentPeer();
    const region = this.relayMap.Regions[String(peer.node.preferred_relay)];
    if (!region) throw new Error(`the agent's relay region ${peer.node.preferred_relay} is not in this deployment's relay map`);
    const url = relayNodeUrl(region.Nodes[0]!);
    const relay = await this.relayAt(url);
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

  /** The connection to the relay at url, one per AgentConn; one that failed to connect is dropped, so the next dial tries afresh. */
  private async relayAt(url: string): Promise<RelayClient> {
    let relay = this.relays.get(url);
    if (!relay) {
      const client = new RelayClient({ url, keyPair: this.keyPair });
      const made = { client, connected: client.connect() };
      made.connected.catch(() => {
        if (this.relays.get(url) !== made) return;
        this.relays.delete(url);
        client.close();
      });
      this.relays.set(url, made);
      relay = made;
    }
    await relay.connected;
    // Once connected, a relay client reconnects by itself after a drop: wait for that.
    if (!relay.client.connected) {
      await settledWithin(relay.client.connect(), this.opts.timeoutMs ?? 30_000);
      if (!relay.client.connected) throw new Error(`the relay at ${url} is unreachable`);
    }
    return relay.client;
  }

  /**
   * Tries the agent's direct endpoints (once per set of endpoints), over TCP and UDP (UDX) at
   * once. Per transport, the endpoint that connects first is used (TCP: its handshake; UDP: the
   * UDX stream-id exchange) and the others are dropped; a session runs on each transport's winner.
   * The TCP session wins if it is ready first, or within PREFER_TCP_GRACE_MS of the UDP one: where
   * both work TCP moves bulk data faster (UDX's congestion control runs in user space), and
   * waiting costs nothing visible since streams already flow over the relay. The loser is closed.
   */
  private maybeDirect(): void {
    if (this.blockDirect || this.direct || this.closed) return;
    const peer = [...this.coordination.peers.values()].find((p) => p.kind === "agent");
    const endpoints = (peer?.node.endpoints ?? []).filter((e) => e.startsWith("tcp:") || e.startsWith("udp:"));
    const key = `${peer?.node.key} ${endpoints.join(",")}`;
    if (!peer || !endpoints.length || key === this.directTried) return;
    this.directTried = key;
    const remote = decodeKey(peer.node.key);
    this.directAbort?.abort();
    const abort = new AbortController();
    this.directAbort = abort;
    const tcp = endpoints.filter((e) => e.startsWith("tcp:"));
    const udp = endpoints.filter((e) => e.startsWith("udp:"));
    const tcpTry = tcp.length ? this.tryDirect("tcp", firstOf(tcp.map((e) => dialTcp(e, abort.signal)), (s) => s.destroy()), remote, abort) : undefined;
    const udpTry = udp.length
      ? this.tryDirect("udp", firstOf(udp.map((e) => dialUdx(e, DIRECT_DIAL_TIMEOUT_MS, { signal: abort.signal })), (s) => s.destroy()), remote, abort, tcpTry)
      : undefined;
    void Promise.all([tcpTry, udpTry]).then(() => {
      if (!this.direct && !this.closed && this.directAbort === abort) this.opts.logger?.debug({ endpoints }, "no direct endpoint answered; staying on the relay");
    });
  }

  /**
   * One transport's try: resolves once its session became the direct path, lost, or failed.
   * `preferred`: another try to give PREFER_TCP_GRACE_MS to finish first once this one is ready.
   */
  private async tryDirect(
    transport: DirectTransport,
    dialed: Promise<Socket | UdxStream>,
    remote: Buffer,
    abort: AbortController,
    preferred?: Promise<void>,
  ): Promise<void> {
    let conn: Socket | UdxStream;
    try {
      conn = await dialed;
    } catch {
      return;
    }
    if (this.closed || this.direct || abort.signal.aborted) {
      conn.destroy();
      return;
    }
    const session = Session.initiate(conn, { keyPair: this.keyPair, remotePublicKey: remote });
    let sessionClosed = false;
    this.directPending.add(session);
    session.on("close", () => {
      sessionClosed = true;
      this.directPending.delete(session);
      if (this.direct !== session) return;
      this.direct = undefined;
      this.transport = undefined;
      // The endpoints may work again later (the agent restarted): allow another try.
      this.directTried = "";
      if (!this.closed) this.emit("path", "relay");
    });
    try {
      await session.ready;
    } catch {
      return;
    }
    if (preferred) await settledWithin(preferred, PREFER_TCP_GRACE_MS);
    if (sessionClosed) return;
    this.directPending.delete(session);
    if (this.closed || this.direct) {
      session.close();
      return;
    }
    this.direct = session;
    this.transport = transport;
    // The other transport lost: stop its dials and close its session.
    abort.abort();
    for (const other of this.directPending) other.close();
    this.directPending.clear();
    const endpoint = "remoteAddress" in conn ? `${conn.remoteAddress}:${conn.remotePort}` : `${conn.remoteHost}:${conn.remotePort}`;
    this.opts.logger?.debug({ transport, endpoint }, "direct session up");
    this.emit("path", "direct");
  }

  /**
   * Opens a stream to one of the agent's services. It is resumable unless told otherwise (a ping
   * must measure the path it was opened on).
   */
  async openStream(header: object, opts: { resumable?: boolean } = {}): Promise<{ stream: Duplex; path: AgentPath }> {
    const { session, path } = await this.session();
    const resumable = opts.resumable ?? true;
    const stream = session.openStream(header, { resumable });
    if (resumable) {
      const agentKey = encodeKey(session.remotePublicKey ?? Buffer.alloc(0));
      stream.on("suspend", (err: Error) => void this.resume(stream, agentKey, err));
    }
    return { stream, path };
  }

  /**
   * Moves a stream whose session failed to the session that works now (dialing one if need be),
   * once the agent is reachable again; tries again on failure (a relay still noticing its own
   * drop, a coordinator reconnecting) for up to RESUME_AGENT_WAIT_MS. An agent with another key
   * restarted: it has no such stream.
   */
  private async resume(stream: SessionStream, agentKey: string, cause: Error): Promise<void> {
    const deadline = Date.now() + RESUME_AGENT_WAIT_MS;
    for (let delay = 100; ; delay = Math.min(2 * delay, 2_000)) {
      let failure: Error;
      try {
        const peer = await this.agentPeer(Math.max(0, deadline - Date.now())).catch(() => {
          throw new Error(`the agent has not been reachable for ${RESUME_AGENT_WAIT_MS / 1000}s`);
        });
        if (peer.node.key !== agentKey) return fail(new Error("the agent restarted"));
        const { session, path } = await this.session();
        if (!stream.suspended) return;
        session.resumeStream(stream);
        this.opts.logger?.debug({ path, cause: cause.message }, "stream resumed");
        this.emit("resumed", path);
        return;
      } catch (err) {
        failure = err as Error;
      }
      if (!stream.suspended) return;
      if (this.closed || Date.now() + delay >= deadline) return fail(failure);
      await new Promise((r) => setTimeout(r, delay));
    }
    function fail(err: Error): void {
      stream.destroy(new Error(`${cause.message}; reconnecting failed: ${err.message}`, { cause }));
    }
  }

  /** One round trip to the agent through its echo service. */
  async ping(): Promise<{ ms: number; path: AgentPath }> {
    const { stream, path } = await this.openStream({ service: "ping" }, { resumable: false });
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
    this.directAbort?.abort();
    this.direct?.close();
    for (const s of this.directPending) s.close();
    void this.relaySession?.then((s) => s.close(), () => {});
    for (const r of this.relays.values()) r.client.close();
    this.coordination?.close();
  }
}

/** Resolves when `p` settles or after `ms`, whichever is first (and leaves no timer behind). */
function settledWithin(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p.then(() => {}, () => {}), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]).finally(() => clearTimeout(timer));
}

/** The first of several dials to connect; the others are destroyed when (if) they connect. */
function firstOf<T>(dials: Array<Promise<T>>, destroy: (t: T) => void): Promise<T> {
  const winner = Promise.any(dials);
  // An idle loser would keep this process (and the agent's handshake timer) alive.
  for (const d of dials) void Promise.all([d, winner]).then(([s, w]) => s !== w && destroy(s), () => {});
  return winner;
}

function dialTcp(endpoint: string, signal: AbortSignal): Promise<Socket> {
  const m = /^tcp:(.+):(\d+)$/.exec(endpoint)!;
  const host = m[1]!.replace(/^\[|\]$/g, "");
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Error("aborted"));
    const socket = tcpConnect({ host, port: Number(m[2]), noDelay: true });
    const onAbort = () => socket.destroy(new Error("aborted"));
    const timer = setTimeout(() => socket.destroy(new Error("timed out")), DIRECT_DIAL_TIMEOUT_MS);
    signal.addEventListener("abort", onAbort, { once: true });
    socket.once("connect", () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      socket.removeAllListeners("error");
      socket.on("error", () => {});
      resolve(socket);
    });
    socket.once("error", (err) => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      reject(err);
    });
  });
}
