// A peer's side of coordination: keeps the coordinate WebSocket open (reconnecting with jittered
// backoff, to whichever replica answers), sends this peer's latest node after every (re)connect,
// and keeps the set of peers the coordinator says this one may reach.
import { EventEmitter } from "node:events";
import { WebSocket } from "../cjs.js";
import type { CoordinatorMessage, Node, PeerInfo } from "./protocol.js";

export interface CoordinationClientOptions {
  /** http(s) URL of the coordinate endpoint. */
  url: string;
  token: string;
  logger?: { warn(obj: object, msg: string): void; debug?(obj: object, msg: string): void };
}

export interface CoordinationEvents {
  /** The peers changed (the full current set). */
  peers: [Map<string, PeerInfo>];
  /** The coordinator refused us for good (401/403/404): there is no point retrying. */
  refused: [Error];
  connected: [];
}

export class CoordinationClient extends EventEmitter<CoordinationEvents> {
  readonly peers = new Map<string, PeerInfo>();
  private node: Node | undefined;
  private ws: WebSocket | undefined;
  private closed = false;
  private retry: NodeJS.Timeout | undefined;
  private backoffMs = 100;

  constructor(private readonly opts: CoordinationClientOptions) {
    super();
  }

  start(): void {
    this.connect();
  }

  setNode(node: Node): void {
    this.node = node;
    this.sendNode();
  }

  private sendNode(): void {
    if (this.node && this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: "node", node: this.node }));
  }

  private connect(): void {
    if (this.closed) return;
    const u = new URL(this.opts.url);
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(u, { headers: { "Coder-Session-Token": this.opts.token }, perMessageDeflate: false });
    this.ws = ws;
    let refused = false;
    // The first message after a (re)connect is the full set: it replaces what we knew, which
    // may have gone stale while we were away.
    let fullSet = true;
    ws.on("open", () => {
      this.backoffMs = 100;
      this.sendNode();
      this.emit("connected");
    });
    ws.on("unexpected-response", (_req, res) => {
      const status = res.statusCode ?? 0;
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => {
        let message = body;
        try {
          message = (JSON.parse(body) as { message?: string }).message ?? body;
        } catch {
          // not JSON: keep the text
        }
        if (status === 401 || status === 403 || status === 404) {
          refused = true;
          this.closed = true;
          this.emit("refused", new Error(`the coordinator refused the connection (${status}): ${message}`));
        }
      });
      ws.terminate();
    });
    ws.on("message", (data) => {
      let msg: CoordinatorMessage;
      try {
        msg = JSON.parse(data.toString()) as CoordinatorMessage;
      } catch {
        return;
      }
      if (msg.type === "peers") {
        if (fullSet) this.peers.clear();
        fullSet = false;
        for (const p of msg.peers) this.peers.set(p.id, p);
        this.emit("peers", this.peers);
      } else if (msg.type === "peer_gone") {
        if (this.peers.delete(msg.id)) this.emit("peers", this.peers);
      } else if (msg.type === "error") {
        this.opts.logger?.warn({ message: msg.message }, "the coordinator reported an error");
      }
    });
    ws.on("error", () => {});
    ws.on("close", () => {
      if (this.closed || refused) return;
      // What we knew may be stale; the coordinator sends the full set again on reconnect.
      this.opts.logger?.debug?.({}, "coordinator connection lost; reconnecting");
      this.retry = setTimeout(() => this.connect(), this.backoffMs * (0.5 + Math.random()));
      this.backoffMs = Math.min(this.backoffMs * 2, 10_000);
    });
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retry);
    this.ws?.close(1000);
  }
}
