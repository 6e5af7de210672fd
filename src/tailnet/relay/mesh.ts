// The relay mesh: the relays of all `coder server` replicas connect to each other so that a peer
// on replica A reaches a peer on replica B. Every replica dials every other replica's relay at
// `<CODER_DERP_SERVER_RELAY_URL>/derp/mesh`, sending the shared mesh key in an HTTP header of the
// upgrade request; the accepting side checks it (meshKeyMatches) before handing the socket to
// accept(). Wire layouts are in frames.ts.
//
// Per link, the dialer forwards bodies (FORWARD) and the acceptor announces which keys are
// connected to its relay (PRESENT/ABSENT). A replica thus learns where keys live from the links it
// dials, and hands what arrives on the links it accepts to its own peers (relay.deliver), never
// onwards. When a link goes down its keys are forgotten, and local senders to keys that are no
// longer reachable anywhere are told PEER_GONE.
//
// Memory stays bounded the relay's way: a FORWARD is dropped (and counted) when the link already
// has maxQueueBytes waiting, and no socket is ever paused. Presence frames are never dropped: an
// accepted link whose dialer stops reading them is closed (it redials and gets a fresh snapshot).
import { createHash, timingSafeEqual } from "node:crypto";
import { EventEmitter } from "node:events";
import { type RawData, WebSocket } from "../cjs.js";
import {
  CloseCode,
  encodePresence,
  FrameType,
  KEY_LENGTH,
  MAX_BODY,
  MAX_MESH_FRAME,
  MAX_PING_PAYLOAD,
  MESH_FORWARD_HEADER,
  MeshFrameType,
  presenceCount,
  encodePing,
} from "./frames.js";
import { type RelayLogger, silentLogger } from "./logger.js";
import type { RelayServer } from "./server.js";

/** The HTTP header in which the dialing replica sends the mesh key. */
export const MESH_KEY_HEADER = "coder-mesh-key";
/** The mesh's WebSocket path under a replica's relay URL. */
export const MESH_PATH = "/derp/mesh";

/**
 * The mesh WebSocket URL under a replica's relay URL (CODER_DERP_SERVER_RELAY_URL):
 * http→ws, https→wss, "/derp/mesh" appended (kept when already there).
 */
export function meshWebSocketUrl(url: string | URL): string {
  const u = new URL(url.toString());
  if (u.protocol === "http:") u.protocol = "ws:";
  else if (u.protocol === "https:") u.protocol = "wss:";
  else if (u.protocol !== "ws:" && u.protocol !== "wss:") {
    throw new Error(`relay mesh URL must be http(s) or ws(s), got ${u.protocol}`);
  }
  u.hash = "";
  const path = u.pathname.replace(/\/+$/, "");
  if (path.endsWith(MESH_PATH)) u.pathname = path;
  else if (path.endsWith("/derp")) u.pathname = `${path}/mesh`;
  else u.pathname = `${path}${MESH_PATH}`;
  return u.toString();
}

/**
 * Whether the mesh key a request carried equals ours, in constant time (both are hashed first, so
 * neither length nor content leaks). An empty configured key never matches.
 */
export function meshKeyMatches(given: string | string[] | undefined, meshKey: string): boolean {
  if (typeof given !== "string" || meshKey.length === 0) return false;
  const a = createHash("sha256").update(given, "utf8").digest();
  const b = createHash("sha256").update(meshKey, "utf8").digest();
  return timingSafeEqual(a, b);
}

export interface RelayMeshOptions {
  /** The secret shared by all replicas. Never logged. */
  meshKey: string;
  logger?: RelayLogger;
  /** Idle time after which a link is pinged; a link silent for 3 intervals is closed. Default 15 s. */
  keepaliveIntervalMs?: number;
  /**
   * Bytes that may wait in one link's socket before FORWARDs over it are dropped. It is shared by
   * every pair of peers across the two replicas, so it is larger than the relay's per-destination
   * limit. Default 32 MiB.
   */
  maxQueueBytes?: number;
  /** Time to open a link (TCP, TLS, upgrade). Default 10 s. */
  handshakeTimeoutMs?: number;
  /** Redial backoff bounds for a listed replica that is down (jittered, doubling). Defaults 250 ms and 10 s. */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
}

export interface RelayMeshStats {
  /** Links this replica dialed that are up (replicas it can forward to). */
  mesh_peers: number;
  /** Links other replicas dialed to this one that are open. */
  mesh_incoming: number;
  /** FORWARDs written to links, and their body bytes. */
  frames_forwarded: number;
  bytes_forwarded: number;
  /** FORWARDs dropped because their link's queue was full, and their body bytes. */
  frames_dropped: number;
  bytes_dropped: number;
  /** FORWARDs that arrived from other replicas and were handed to the local relay, and their body bytes. */
  frames_received: number;
  bytes_received: number;
  /** Keys reachable through the mesh (connected to other replicas). */
  remote_keys: number;
}

export interface RelayMeshPeerStatus {
  /** The URL as given to setPeers. */
  url: string;
  connected: boolean;
  /** Keys this replica announced. */
  remote_keys: number;
  /** Why the link is down (last failure), when it is. */
  error?: string;
}

const SEND_OPTIONS = { binary: true } as const;
/** Control frames (PING, PONG) are skipped when a link has this much more than maxQueueBytes waiting. */
const CONTROL_SLACK = 64 * 1024;
const zeroMask = (mask: Buffer): void => {
  mask.fill(0);
};

/** A link this replica dials: it forwards over it and learns the remote keys from it. */
class OutLink {
  ws: WebSocket | null = null;
  up = false;
  removed = false;
  attempts = 0;
  timer: NodeJS.Timeout | null = null;
  /** Keys the remote relay announced (latin1 strings). */
  readonly keys = new Set<string>();
  seen = true;
  missed = 0;
  lastError: string | undefined;
  /** An HTTP refusal (401/403: the mesh key) was logged as a warning since the link was last up. */
  refusalWarned = false;

  constructor(
    readonly url: string,
    readonly wsUrl: string,
  ) {}
}

/** A link another replica dialed: FORWARDs arrive on it, presence goes out on it. */
class InLink {
  closed = false;
  seen = true;
  missed = 0;
  /** Keys answered ABSENT during this turn of the event loop (answered once per key). */
  readonly absentSent = new Set<string>();
  absentClearScheduled = false;

  constructor(
    readonly ws: WebSocket,
    readonly remoteAddress: string | undefined,
  ) {}
}

export interface RelayMesh {
  on(event: "link", listener: (url: string, up: boolean) => void): this;
  on(event: "remote", listener: (publicKey: Buffer, reachable: boolean) => void): this;
  once(event: "link", listener: (url: string, up: boolean) => void): this;
  once(event: "remote", listener: (publicKey: Buffer, reachable: boolean) => void): this;
  off(event: "link", listener: (url: string, up: boolean) => void): this;
  off(event: "remote", listener: (publicKey: Buffer, reachable: boolean) => void): this;
}

/**
 * Meshes one replica's relay with the others'. Installs itself as relay.onUnknownDestination.
 * Emits "link" (url as given to setPeers, up) when a dialed link comes up or goes down, and
 * "remote" (key, reachable) when a key becomes reachable through the mesh or stops being so.
 */
export class RelayMesh extends EventEmitter {
  static readonly meshKeyMatches = meshKeyMatches;

  private readonly meshKey: string;
  private readonly log: RelayLogger;
  private readonly keepaliveIntervalMs: number;
  private readonly maxQueueBytes: number;
  private readonly handshakeTimeoutMs: number;
  private readonly reconnectMinMs: number;
  private readonly reconnectMaxMs: number;

  /** Dialed links by mesh WebSocket URL. */
  private readonly outLinks = new Map<string, OutLink>();
  private readonly inLinks = new Set<InLink>();
  /** key (latin1) → dialed links that announced it, the most recent last (the one used). */
  private readonly routes = new Map<string, OutLink[]>();
  private readonly keepaliveTimer: NodeJS.Timeout;
  private readonly hook: (src: Buffer, dst: Buffer, body: Buffer) => boolean;
  private readonly onPeer: (publicKey: Buffer, connected: boolean) => void;
  private closed = false;

  private framesForwarded = 0;
  private bytesForwarded = 0;
  private framesDropped = 0;
  private bytesDropped = 0;
  private framesReceived = 0;
  private bytesReceived = 0;

  constructor(
    private readonly relay: RelayServer,
    opts: RelayMeshOptions,
  ) {
    super();
    if (typeof opts.meshKey !== "string" || opts.meshKey.length === 0) throw new Error("relay mesh needs a non-empty mesh key");
    this.meshKey = opts.meshKey;
    this.log = opts.logger ?? silentLogger;
    this.keepaliveIntervalMs = opts.keepaliveIntervalMs ?? 15_000;
    this.maxQueueBytes = opts.maxQueueBytes ?? 32 * 1024 * 1024;
    this.handshakeTimeoutMs = opts.handshakeTimeoutMs ?? 10_000;
    this.reconnectMinMs = opts.reconnectMinMs ?? 250;
    this.reconnectMaxMs = Math.max(this.reconnectMinMs, opts.reconnectMaxMs ?? 10_000);
    this.hook = (src, dst, body) => this.forward(src, dst, body);
    this.onPeer = (key, connected) => this.announce(key, connected);
    relay.onUnknownDestination = this.hook;
    relay.on("peer", this.onPeer);
    // Jittered so that replicas started together do not ping in lockstep.
    this.keepaliveTimer = setInterval(() => this.keepalive(), this.keepaliveIntervalMs * (0.9 + Math.random() * 0.2));
    this.keepaliveTimer.unref();
  }

  /**
   * Whether an upgrade request's MESH_KEY_HEADER value is this mesh's key (constant time). Call it
   * before upgrading /derp/mesh, answer 401 when false.
   */
  authorize(given: string | string[] | undefined): boolean {
    return meshKeyMatches(given, this.meshKey);
  }

  /**
   * Takes over an incoming mesh link: upgraded (with meshWebSocketServerOptions) and already
   * authenticated by the caller (meshKeyMatches on the MESH_KEY_HEADER header).
   */
  accept(ws: WebSocket, remoteAddress?: string): void {
    if (this.closed) {
      ws.close(CloseCode.GOING_AWAY, "relay mesh shutting down");
      return;
    }
    ws.binaryType = "nodebuffer";
    const link = new InLink(ws, remoteAddress);
    ws.on("message", (data, isBinary) => this.onInMessage(link, data, isBinary));
    ws.on("close", () => this.cleanupIn(link));
    ws.on("error", (err) => {
      this.log.debug({ remoteAddress, err: err.message }, "relay mesh: incoming link error");
      this.cleanupIn(link);
    });
    if (ws.readyState !== WebSocket.OPEN) {
      link.closed = true;
      return;
    }
    this.inLinks.add(link);
    this.log.info({ remoteAddress }, "relay mesh: accepted a link from a replica");
    // The snapshot goes out before any later "peer" event can, so increments follow it in order.
    for (const frame of encodePresence(MeshFrameType.PRESENT, this.relay.peers())) this.sendIn(link, frame);
  }

  /**
   * The replicas to mesh with: their relay URLs (CODER_DERP_SERVER_RELAY_URL), excluding this
   * replica's own. Dials new ones, closes links to those no longer listed, keeps redialing listed
   * ones that are down. Idempotent.
   */
  setPeers(relayUrls: readonly string[]): void {
    if (this.closed) return;
    const want = new Map<string, string>();
    for (const url of relayUrls) {
      let wsUrl: string;
      try {
        wsUrl = meshWebSocketUrl(url);
      } catch (err) {
        this.log.warn({ url, err: (err as Error).message }, "relay mesh: ignoring an invalid replica relay URL");
        continue;
      }
      if (!want.has(wsUrl)) want.set(wsUrl, url);
    }
    for (const [wsUrl, link] of this.outLinks) {
      if (!want.has(wsUrl)) this.removeOut(link);
    }
    for (const [wsUrl, url] of want) {
      if (this.outLinks.has(wsUrl)) continue;
      const link = new OutLink(url, wsUrl);
      this.outLinks.set(wsUrl, link);
      this.log.debug({ url }, "relay mesh: new replica");
      this.dial(link);
    }
  }

  stats(): RelayMeshStats {
    let up = 0;
    for (const link of this.outLinks.values()) if (link.up) up++;
    return {
      mesh_peers: up,
      mesh_incoming: this.inLinks.size,
      frames_forwarded: this.framesForwarded,
      bytes_forwarded: this.bytesForwarded,
      frames_dropped: this.framesDropped,
      bytes_dropped: this.bytesDropped,
      frames_received: this.framesReceived,
      bytes_received: this.bytesReceived,
      remote_keys: this.routes.size,
    };
  }

  /** The replicas given to setPeers and the state of their links. */
  status(): RelayMeshPeerStatus[] {
    return [...this.outLinks.values()].map((link) => ({
      url: link.url,
      connected: link.up,
      remote_keys: link.keys.size,
      ...(link.up || link.lastError === undefined ? {} : { error: link.lastError }),
    }));
  }

  /** Whether a key is reachable through the mesh. */
  hasRemote(publicKey: Uint8Array): boolean {
    return this.routes.has(Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.byteLength).toString("latin1"));
  }

  /** Closes every link, stops redialing and detaches from the relay. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.keepaliveTimer);
    this.relay.off("peer", this.onPeer);
    if (this.relay.onUnknownDestination === this.hook) this.relay.onUnknownDestination = undefined;
    for (const link of [...this.outLinks.values()]) this.removeOut(link);
    for (const link of [...this.inLinks]) {
      link.ws.close(CloseCode.GOING_AWAY, "relay mesh shutting down");
      this.cleanupIn(link);
    }
  }

  // ---- forwarding (the hot path) ----

  /** relay.onUnknownDestination: a SEND from a local peer to a key that is not local. */
  private forward(src: Buffer, dst: Buffer, body: Buffer): boolean {
    const links = this.routes.get(dst.toString("latin1"));
    if (links === undefined) return false;
    const link = links[links.length - 1] as OutLink;
    const ws = link.ws;
    const len = body.length;
    if (
      ws === null ||
      !link.up ||
      ws.readyState !== WebSocket.OPEN ||
      ws.bufferedAmount + MESH_FORWARD_HEADER + len > this.maxQueueBytes
    ) {
      this.framesDropped++;
      this.bytesDropped += len;
      return true;
    }
    const frame = Buffer.allocUnsafe(MESH_FORWARD_HEADER + len);
    frame[0] = MeshFrameType.FORWARD;
    src.copy(frame, 1);
    dst.copy(frame, 1 + KEY_LENGTH);
    body.copy(frame, MESH_FORWARD_HEADER);
    ws.send(frame, SEND_OPTIONS);
    this.framesForwarded++;
    this.bytesForwarded += len;
    return true;
  }

  // ---- incoming links (FORWARD in, presence out) ----

  private onInMessage(link: InLink, data: RawData, isBinary: boolean): void {
    if (link.closed) return;
    link.seen = true;
    if (!isBinary || !Buffer.isBuffer(data)) {
      this.failIn(link, CloseCode.INVALID_DATA, "text messages are not part of the mesh protocol");
      return;
    }
    const buf = data;
    switch (buf[0]) {
      case MeshFrameType.FORWARD: {
        if (buf.length < MESH_FORWARD_HEADER) {
          this.failIn(link, CloseCode.INVALID_DATA, "FORWARD frame shorter than its header");
          return;
        }
        const len = buf.length - MESH_FORWARD_HEADER;
        if (len > MAX_BODY) {
          this.failIn(link, CloseCode.TOO_BIG, `FORWARD body exceeds ${MAX_BODY} bytes`);
          return;
        }
        const src = buf.subarray(1, 1 + KEY_LENGTH);
        const dst = buf.subarray(1 + KEY_LENGTH, MESH_FORWARD_HEADER);
        let delivered: boolean;
        try {
          delivered = this.relay.deliver(src, dst, buf.subarray(MESH_FORWARD_HEADER));
        } catch (err) {
          this.log.warn({ err: (err as Error).message }, "relay mesh: deliver threw");
          delivered = false;
        }
        if (delivered) {
          this.framesReceived++;
          this.bytesReceived += len;
        } else {
          this.answerAbsent(link, dst);
        }
        return;
      }
      case FrameType.PING:
        if (buf.length > 1 + MAX_PING_PAYLOAD) {
          this.failIn(link, CloseCode.INVALID_DATA, "PING payload too long");
          return;
        }
        buf[0] = FrameType.PONG;
        this.sendIn(link, buf);
        return;
      case FrameType.PONG:
        if (buf.length > 1 + MAX_PING_PAYLOAD) this.failIn(link, CloseCode.INVALID_DATA, "PONG payload too long");
        return;
      default:
        this.failIn(link, CloseCode.INVALID_DATA, `unexpected mesh frame type 0x${(buf[0] ?? 0).toString(16).padStart(2, "0")}`);
    }
  }

  /** ABSENT for a FORWARD's destination that is not here: once per key and turn of the event loop. */
  private answerAbsent(link: InLink, dst: Buffer): void {
    const dstStr = dst.toString("latin1");
    if (link.absentSent.has(dstStr)) return;
    link.absentSent.add(dstStr);
    if (!link.absentClearScheduled) {
      link.absentClearScheduled = true;
      setImmediate(() => {
        link.absentClearScheduled = false;
        link.absentSent.clear();
      });
    }
    for (const frame of encodePresence(MeshFrameType.ABSENT, [dst])) this.sendIn(link, frame);
  }

  /** relay "peer": a key connected to or left this relay; tell every replica that dialed us. */
  private announce(key: Buffer, connected: boolean): void {
    if (this.inLinks.size === 0) return;
    const [frame] = encodePresence(connected ? MeshFrameType.PRESENT : MeshFrameType.ABSENT, [key]);
    if (!frame) return;
    for (const link of this.inLinks) this.sendIn(link, frame);
  }

  /**
   * Presence and PONGs are never dropped: a dialer that lets more than maxQueueBytes pile up in
   * this direction loses the link (and gets a fresh snapshot when it redials).
   */
  private sendIn(link: InLink, frame: Buffer): void {
    if (link.closed) return;
    const ws = link.ws;
    if (ws.readyState !== WebSocket.OPEN) {
      this.cleanupIn(link);
      return;
    }
    if (ws.bufferedAmount + frame.length > this.maxQueueBytes + CONTROL_SLACK) {
      this.log.warn({ remoteAddress: link.remoteAddress }, "relay mesh: a replica stopped reading its link; closing it");
      ws.terminate();
      this.cleanupIn(link);
      return;
    }
    ws.send(frame, SEND_OPTIONS);
  }

  private failIn(link: InLink, code: number, reason: string): void {
    if (link.closed) return;
    this.log.warn({ remoteAddress: link.remoteAddress, code, reason }, "relay mesh: closing an incoming link");
    try {
      link.ws.close(code, reason.slice(0, 120));
    } catch {
      link.ws.terminate();
    }
    this.cleanupIn(link);
  }

  private cleanupIn(link: InLink): void {
    if (link.closed) return;
    link.closed = true;
    this.inLinks.delete(link);
    this.log.info({ remoteAddress: link.remoteAddress }, "relay mesh: incoming link closed");
  }

  // ---- dialed links (FORWARD out, presence in) ----

  private dial(link: OutLink): void {
    if (this.closed || link.removed) return;
    let status: number | undefined;
    let attemptError: string | undefined;
    let ws: WebSocket;
    try {
      ws = new WebSocket(link.wsUrl, {
        headers: { [MESH_KEY_HEADER]: this.meshKey },
        perMessageDeflate: false,
        maxPayload: MAX_MESH_FRAME,
        handshakeTimeout: this.handshakeTimeoutMs,
        // Never carry the mesh key anywhere else.
        followRedirects: false,
        // Bodies are ciphertext between peers and this is no browser: skip the XOR pass (see client.ts).
        generateMask: zeroMask,
      });
    } catch (err) {
      link.lastError = (err as Error).message;
      this.onOutDown(link, undefined);
      return;
    }
    ws.binaryType = "nodebuffer";
    link.ws = ws;
    ws.on("unexpected-response", (_req, res) => {
      status = res.statusCode;
      res.resume();
      ws.terminate();
    });
    ws.on("open", () => {
      if (link.ws === ws) this.onOutOpen(link);
    });
    ws.on("message", (data, isBinary) => {
      if (link.ws === ws) this.onOutMessage(link, data, isBinary);
    });
    ws.on("error", (err) => {
      if (status === undefined) attemptError ??= err.message;
    });
    ws.on("close", (code, reason) => {
      if (link.ws !== ws) return;
      if (status !== undefined) link.lastError = `upgrade refused with HTTP ${status}`;
      else link.lastError = attemptError ?? `link closed (code ${code}${reason.length > 0 ? `: ${reason.toString()}` : ""})`;
      this.onOutDown(link, status);
    });
  }

  private onOutOpen(link: OutLink): void {
    link.up = true;
    link.attempts = 0;
    link.refusalWarned = false;
    link.seen = true;
    link.missed = 0;
    link.lastError = undefined;
    this.log.info({ url: link.url }, "relay mesh: link to a replica is up");
    this.emit("link", link.url, true);
  }

  private onOutMessage(link: OutLink, data: RawData, isBinary: boolean): void {
    link.seen = true;
    if (!isBinary || !Buffer.isBuffer(data)) {
      this.failOut(link, CloseCode.INVALID_DATA, "text messages are not part of the mesh protocol");
      return;
    }
    const buf = data;
    const type = buf[0];
    switch (type) {
      case MeshFrameType.PRESENT:
      case MeshFrameType.ABSENT: {
        let n: number;
        try {
          n = presenceCount(buf);
        } catch (err) {
          this.failOut(link, CloseCode.INVALID_DATA, (err as Error).message);
          return;
        }
        for (let i = 0, off = 1; i < n; i++, off += KEY_LENGTH) {
          const keyStr = buf.toString("latin1", off, off + KEY_LENGTH);
          if (type === MeshFrameType.PRESENT) {
            if (!link.keys.has(keyStr)) {
              link.keys.add(keyStr);
              this.addRoute(link, keyStr);
            }
          } else if (link.keys.delete(keyStr)) {
            this.removeRoute(link, keyStr);
          }
        }
        return;
      }
      case FrameType.PING:
        if (buf.length > 1 + MAX_PING_PAYLOAD) {
          this.failOut(link, CloseCode.INVALID_DATA, "PING payload too long");
          return;
        }
        buf[0] = FrameType.PONG;
        this.sendOutControl(link, buf);
        return;
      case FrameType.PONG:
        if (buf.length > 1 + MAX_PING_PAYLOAD) this.failOut(link, CloseCode.INVALID_DATA, "PONG payload too long");
        return;
      default:
        this.failOut(link, CloseCode.INVALID_DATA, `unexpected mesh frame type 0x${(type ?? 0).toString(16).padStart(2, "0")}`);
    }
  }

  private sendOutControl(link: OutLink, frame: Buffer): void {
    const ws = link.ws;
    if (ws === null || ws.readyState !== WebSocket.OPEN || ws.bufferedAmount > this.maxQueueBytes + CONTROL_SLACK) return;
    ws.send(frame, SEND_OPTIONS);
  }

  /** Closes a dialed link over a protocol error; it is redialed with backoff. */
  private failOut(link: OutLink, code: number, reason: string): void {
    const ws = link.ws;
    if (ws === null) return;
    this.log.warn({ url: link.url, code, reason }, "relay mesh: closing a link to a replica");
    link.lastError = reason;
    try {
      ws.close(code, reason.slice(0, 120));
    } catch {
      ws.terminate();
    }
    this.onOutDown(link, undefined);
  }

  /** A dialed link ended (or failed to open): forget its keys and redial while it is listed. */
  private onOutDown(link: OutLink, status: number | undefined): void {
    const wasUp = link.up;
    link.ws = null;
    link.up = false;
    this.dropKeys(link);
    if (wasUp) {
      this.log.info({ url: link.url, err: link.lastError }, "relay mesh: link to a replica is down");
      this.emit("link", link.url, false);
      link.attempts = 0;
    }
    if (status !== undefined) {
      if (!link.refusalWarned) {
        link.refusalWarned = true;
        if (status === 401 || status === 403) {
          this.log.warn({ url: link.url, status }, "relay mesh: a replica refused our mesh key (do the replicas share one database and mesh key?)");
        } else {
          this.log.warn({ url: link.url, status }, "relay mesh: a replica refused the mesh upgrade (is its relay enabled, and is the URL its relay URL?)");
        }
      }
    } else {
      this.log.debug({ url: link.url, err: link.lastError }, "relay mesh: dial failed");
    }
    if (this.closed || link.removed) return;
    const base = Math.min(this.reconnectMaxMs, this.reconnectMinMs * 2 ** Math.min(link.attempts, 20));
    const delay = base / 2 + (Math.random() * base) / 2;
    link.attempts++;
    link.timer = setTimeout(() => {
      link.timer = null;
      this.dial(link);
    }, delay);
    link.timer.unref();
  }

  private removeOut(link: OutLink): void {
    link.removed = true;
    if (this.outLinks.get(link.wsUrl) === link) this.outLinks.delete(link.wsUrl);
    if (link.timer) clearTimeout(link.timer);
    link.timer = null;
    const ws = link.ws;
    if (ws === null) return;
    if (ws.readyState === WebSocket.OPEN) ws.close(1000, "replica removed from the mesh");
    else ws.terminate();
    link.lastError = "removed";
    this.onOutDown(link, undefined);
  }

  // ---- routes ----

  private addRoute(link: OutLink, keyStr: string): void {
    const links = this.routes.get(keyStr);
    if (links === undefined) {
      this.routes.set(keyStr, [link]);
      this.emit("remote", Buffer.from(keyStr, "latin1"), true);
      return;
    }
    const previous = links[links.length - 1];
    const i = links.indexOf(link);
    if (i >= 0) links.splice(i, 1);
    links.push(link);
    // The key connected somewhere else (it moved): what local peers had open with it is gone.
    if (previous !== link) this.relay.notifyPeerGone(Buffer.from(keyStr, "latin1"));
  }

  private removeRoute(link: OutLink, keyStr: string): void {
    const links = this.routes.get(keyStr);
    if (links === undefined) return;
    const i = links.indexOf(link);
    if (i < 0) return;
    const wasUsed = i === links.length - 1;
    links.splice(i, 1);
    if (links.length === 0) {
      this.routes.delete(keyStr);
      const key = Buffer.from(keyStr, "latin1");
      this.relay.notifyPeerGone(key);
      this.emit("remote", key, false);
    } else if (wasUsed) {
      this.relay.notifyPeerGone(Buffer.from(keyStr, "latin1"));
    }
  }

  private dropKeys(link: OutLink): void {
    if (link.keys.size === 0) return;
    const keys = [...link.keys];
    link.keys.clear();
    for (const keyStr of keys) this.removeRoute(link, keyStr);
    this.log.debug({ url: link.url, keys: keys.length }, "relay mesh: forgot the keys of a replica");
  }

  // ---- keepalive ----

  private keepalive(): void {
    for (const link of this.outLinks.values()) {
      if (!link.up || link.ws === null) continue;
      if (link.seen) {
        link.seen = false;
        link.missed = 0;
        continue;
      }
      if (++link.missed >= 3) {
        link.lastError = "replica stopped answering pings";
        const ws = link.ws;
        ws.terminate(); // its close event is ignored: the link is handled here
        this.onOutDown(link, undefined);
        continue;
      }
      this.sendOutControl(link, encodePing());
    }
    for (const link of [...this.inLinks]) {
      if (link.seen) {
        link.seen = false;
        link.missed = 0;
        continue;
      }
      if (++link.missed >= 3) {
        this.log.info({ remoteAddress: link.remoteAddress }, "relay mesh: a replica stopped answering pings");
        link.ws.terminate();
        this.cleanupIn(link);
        continue;
      }
      this.sendIn(link, encodePing());
    }
  }
}
