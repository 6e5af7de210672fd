// The agent's side of the network: an identity, a home relay, a listener for direct paths, and
// the coordinator connection that says which clients may reach it. Every session, relayed or
// direct, is end-to-end encrypted and accepted only from a key the coordinator announced; its
// streams go to the agent's services (SSH, PTYs, speed test, TCP dial).
import { createServer, type Server } from "node:net";
import { networkInterfaces } from "node:os";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import type { AgentConnectionInfo } from "../codersdk/index.js";
import {
  CoordinationClient,
  decodeKey,
  encodeKey,
  generateKeyPair,
  pickHomeRegion,
  RelayClient,
  relayLatencyChanged,
  ResumableStreams,
  relayNodeUrl,
  Session,
  type KeyPair,
  type Node,
  UdxListener,
  type UdxStream,
} from "../tailnet/index.js";

const ANNOUNCE_GRACE_MS = 5_000;
/** How long a client may be missing from the coordinator before its suspended streams are closed. */
const CLIENT_GONE_GRACE_MS = 5_000;
/** How often the relay latencies are measured again (jittered ±20%). */
const RELAY_LATENCY_INTERVAL_MS = 60_000;

export interface AgentNetworkOptions {
  coderUrl: string;
  token: string;
  connection: AgentConnectionInfo;
  logger: Logger;
  /** Serves one stream of a session. */
  onStream(header: unknown, stream: Duplex): void;
  /** How often to measure the relay latencies again (default 60 s, jittered). */
  relayLatencyIntervalMs?: number;
}

/** The coordinator takes at most this many endpoints per node. */
const MAX_ENDPOINTS = 32;

/** Addresses a client may dial directly: every interface's IPv4 address, over TCP and over UDP (UDX). */
function directEndpoints(tcpPort: number, udpPort: number | undefined): string[] {
  const out: string[] = [];
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.family !== "IPv4") continue;
      out.push(`tcp:${a.address}:${tcpPort}`);
      if (udpPort) out.push(`udp:${a.address}:${udpPort}`);
    }
  }
  return out.slice(0, MAX_ENDPOINTS);
}

export class AgentNetwork {
  readonly keyPair: KeyPair = generateKeyPair();
  private readonly allowed = new Set<string>();
  private readonly sessions = new Set<Session>();
  /** Clients' streams, kept across sessions: one whose path died waits here to be resumed. */
  readonly resumable = new ResumableStreams();
  private coordination: CoordinationClient | undefined;
  private relay: RelayClient | undefined;
  private listener: Server | undefined;
  private udxListener: UdxListener | undefined;
  /** What this agent last told the coordinator about itself. */
  private node: Node | undefined;
  private latencyTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly log: Logger;

  constructor(private readonly opts: AgentNetworkOptions) {
    this.log = opts.logger.child({ component: "network" });
  }

  async start(): Promise<void> {
    const { connection } = this.opts;
    // Every region's latency is measured (the node carries them), while the listeners start.
    const home = pickHomeRegion(connection.relay_map);
    let endpoints: string[] = [];
    if (!connection.disable_direct_connections && !process.env.CODER_BLOCK_DIRECT) {
      this.listener = createServer({ noDelay: true }, (socket) => this.accept(socket, "tcp"));
      await new Promise<void>((res, rej) => this.listener!.once("error", rej).listen(0, "0.0.0.0", () => res()));
      try {
        this.udxListener = UdxListener.listen({ host: "0.0.0.0" });
        const udx = this.udxListener;
        udx.on("connection", (stream) => this.accept(stream, "udp", () => udx.established(stream)));
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, "no UDP listener for direct paths; offering TCP only");
      }
      endpoints = directEndpoints((this.listener.address() as { port: number }).port, this.udxListener?.port);
    }
    const { region, latencyMs } = await home;
    if (region) {
      this.relay = new RelayClient({ url: relayNodeUrl(region.Nodes[0]!), keyPair: this.keyPair, logger: this.log });
      this.relay.on("conn", (_key, stream) => this.accept(stream, "relay"));
      this.relay.on("disconnected", (err) => this.log.warn({ err: err.message }, "lost the relay; reconnecting"));
      void this.relay.connect().catch((err: unknown) => this.log.warn({ err: (err as Error).message }, "connecting to the relay failed; retrying"));
    }
    this.coordination = new CoordinationClient({ url: new URL("/api/v2/workspaceagents/me/coordinate", this.opts.coderUrl).toString(), token: this.opts.token, logger: this.log });
    this.coordination.on("peers", (peers) => {
      const before = new Set(this.allowed);
      this.allowed.clear();
      for (const p of peers.values()) if (p.kind === "client") this.allowed.add(p.node.key);
      for (const key of before) if (!this.allowed.has(key)) this.clientLeft(key);
    });
    this.coordination.start();
    this.node = { key: encodeKey(this.keyPair.publicKey), preferred_relay: region?.RegionID ?? 0, endpoints, relay_latency_ms: latencyMs };
    this.coordination.setNode(this.node);
    this.log.info({ relay_region: region?.RegionID, relay_latency_ms: latencyMs, endpoints }, "network ready");
    this.scheduleLatencyCheck();
  }

  /**
   * Measures the relays again now and then; the node is sent again only when the latencies moved
   * notably since it was last sent. The home relay stays: moving it would cut the sessions that
   * go through it.
   */
  private scheduleLatencyCheck(): void {
    if (this.closed) return;
    const every = this.opts.relayLatencyIntervalMs ?? RELAY_LATENCY_INTERVAL_MS;
    this.latencyTimer = setTimeout(() => {
      void pickHomeRegion(this.opts.connection.relay_map)
        .then(({ latencyMs }) => {
          const node = this.node;
          if (this.closed || !node || !relayLatencyChanged(node.relay_latency_ms, latencyMs)) return;
          this.node = { ...node, relay_latency_ms: latencyMs };
          this.coordination?.setNode(this.node);
          this.log.debug({ relay_latency_ms: latencyMs }, "relay latencies changed");
        })
        .catch((err: unknown) => this.log.debug({ err: (err as Error).message }, "measuring the relays failed"))
        .finally(() => this.scheduleLatencyCheck());
    }, every * (0.8 + Math.random() * 0.4));
  }

  /** `onReady`: the peer proved who it is (the UDX listener stops timing the stream out). */
  private accept(transport: Duplex | UdxStream, via: "relay" | "tcp" | "udp", onReady?: () => void): void {
    transport.on("error", () => {});
    const path = via === "relay" ? "relay" : "direct";
    const session = Session.accept(transport, { keyPair: this.keyPair, allow: (key) => this.isAllowed(encodeKey(key)), resumable: this.resumable });
    this.sessions.add(session);
    session.on("stream", (header, stream) => this.opts.onStream(header, stream));
    session.ready.then(
      () => {
        onReady?.();
        this.log.debug({ path, transport: via, peer: session.remotePublicKey && encodeKey(session.remotePublicKey) }, "session started");
      },
      (err: Error) => this.log.debug({ path, err: err.message }, "session refused"),
    );
    session.on("close", () => this.sessions.delete(session));
  }

  /**
   * A client the coordinator no longer lists may only be reconnecting (its network, or a replica,
   * went away): its suspended streams wait a little. One that stays away is gone, and so are they
   * (an SSH session of a killed client must not linger for the whole resume timeout).
   */
  private clientLeft(key: string): void {
    const timer = setTimeout(() => {
      if (this.allowed.has(key) || this.closed) return;
      const n = this.resumable.destroySuspended(new Error("the client went away"), decodeKey(key));
      if (n) this.log.debug({ peer: key, streams: n }, "closed the streams of a client that went away");
    }, CLIENT_GONE_GRACE_MS);
    timer.unref();
  }

  /**
   * A client dials right after telling the coordinator its key, so the news may still be on its
   * way here: an unknown key gets a few seconds to be announced before it is refused.
   */
  private isAllowed(key: string): boolean | Promise<boolean> {
    if (this.allowed.has(key)) return true;
    const coordination = this.coordination;
    if (!coordination) return false;
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        coordination.off("peers", check);
        resolve(ok);
      };
      const check = () => this.allowed.has(key) && done(true);
      const timer = setTimeout(() => done(false), ANNOUNCE_GRACE_MS);
      coordination.on("peers", check);
    });
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.latencyTimer);
    this.coordination?.close();
    this.relay?.close();
    this.listener?.close();
    for (const s of this.sessions) s.close();
    this.resumable.destroySuspended(new Error("the agent is shutting down"));
    // UDX streams die with their listener: let the sessions on them say goodbye first (a session
    // is closed within a couple of seconds whatever the peer does).
    const udx = this.udxListener;
    if (udx) void Promise.all([...this.sessions].map((s) => s.closed)).then(() => udx.close());
  }
}
