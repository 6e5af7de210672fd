// The agent's link to coderd: one WebSocket (RPC frames) re-established with jittered backoff
// whenever it drops, to whichever replica the load balancer picks.
import WebSocket from "ws";
import type { Logger } from "pino";

export class AgentConnection {
  private ws: WebSocket | undefined;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private closed = false;
  private connectedWaiters: Array<() => void> = [];

  constructor(
    private readonly url: string,
    private readonly token: string,
    private readonly logger: Logger,
    /** Runs after every (re)connection, before other calls go out. */
    private readonly onConnect: () => Promise<void>,
  ) {}

  get connected(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  /** Keeps a connection open until close(). */
  async run(): Promise<void> {
    let backoff = 100;
    while (!this.closed) {
      try {
        await this.connectOnce();
        backoff = 100;
        await new Promise<void>((res) => this.ws!.once("close", () => res()));
        if (!this.closed) this.logger.warn("lost the connection to coderd; reconnecting");
      } catch (err) {
        if (this.closed) break;
        this.logger.warn({ err: (err as Error).message }, "connecting to coderd failed; retrying");
      }
      if (this.closed) break;
      await new Promise((r) => setTimeout(r, backoff * (0.5 + Math.random())));
      backoff = Math.min(backoff * 2, 10_000);
    }
  }

  private async connectOnce(): Promise<void> {
    const u = new URL("/api/v2/workspaceagents/me/rpc", this.url);
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(u, { headers: { "Coder-Session-Token": this.token } });
    ws.on("message", (data) => {
      let msg: { id?: number; result?: unknown; error?: { message: string } };
      try {
        msg = JSON.parse(data.toString());
      } catch {
        return;
      }
      const p = msg.id === undefined ? undefined : this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id!);
      if (msg.error) p.reject(new Error(msg.error.message));
      else p.resolve(msg.result);
    });
    ws.on("close", () => {
      for (const p of this.pending.values()) p.reject(new Error("connection to coderd lost"));
      this.pending.clear();
    });
    await new Promise<void>((res, rej) => {
      ws.once("open", () => res());
      ws.once("unexpected-response", (_req, resp) => rej(new Error(`coderd refused the agent: ${resp.statusCode}`)));
      ws.once("error", rej);
    });
    ws.on("error", () => {});
    this.ws = ws;
    this.logger.info("connected to coderd");
    try {
      await this.onConnect();
    } catch (err) {
      ws.close();
      throw err;
    }
    for (const w of this.connectedWaiters.splice(0)) w();
  }

  /** Resolves once connected (and onConnect has run), or at once when closed. */
  whenConnected(): Promise<void> {
    return this.connected || this.closed ? Promise.resolve() : new Promise((res) => this.connectedWaiters.push(res));
  }

  call<T>(method: string, params: unknown): Promise<T> {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return Promise.reject(new Error("not connected to coderd"));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      ws.send(JSON.stringify({ id, method, params }));
    });
  }

  close(): void {
    this.closed = true;
    this.ws?.close(1000, "agent stopping");
    for (const w of this.connectedWaiters.splice(0)) w();
  }
}
