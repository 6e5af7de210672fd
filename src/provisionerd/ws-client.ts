// An external daemon's link to coderd: one WebSocket carrying JSON request/response frames
// (acquire, update, complete, fail), re-established with backoff when it drops, and plain HTTP
// for template archives (binary, never inside JSON).
import WebSocket from "ws";
import type { Logger } from "pino";
import type { AcquiredJob, CompletedJob, DaemonIdentity, FailedJob, JobLog, ProvisionerdClient } from "./proto.js";

export const PSK_HEADER = "Coder-Provisioner-Daemon-PSK";

export interface WebSocketClientOptions {
  url: string;
  identity: DaemonIdentity;
  psk?: string;
  sessionToken?: string;
  logger: Logger;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

export class WebSocketProvisionerdClient implements ProvisionerdClient {
  private ws: WebSocket | undefined;
  private connecting: Promise<WebSocket> | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;
  private backoffMs = 100;

  constructor(private readonly opts: WebSocketClientOptions) {}

  private authHeaders(): Record<string, string> {
    if (this.opts.psk) return { [PSK_HEADER]: this.opts.psk };
    if (this.opts.sessionToken) return { "Coder-Session-Token": this.opts.sessionToken };
    return {};
  }

  private serveUrl(): string {
    const { identity } = this.opts;
    const u = new URL(`/api/v2/organizations/${encodeURIComponent(identity.organization)}/provisionerdaemons/serve`, this.opts.url);
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    u.searchParams.set("name", identity.name);
    u.searchParams.set("version", identity.version);
    for (const p of identity.provisioners) u.searchParams.append("provisioner", p);
    for (const [k, v] of Object.entries(identity.tags)) u.searchParams.append("tag", `${k}=${v}`);
    return u.toString();
  }

  /** Connects now: fails at once when coderd refuses the daemon (bad key, no access). */
  async connect(): Promise<void> {
    await this.socket();
  }

  /** Connects once, with backoff between failed attempts; the error says why coderd refused. */
  private socket(): Promise<WebSocket> {
    if (this.ws?.readyState === WebSocket.OPEN) return Promise.resolve(this.ws);
    this.connecting ??= this.dial().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async dial(): Promise<WebSocket> {
    for (;;) {
      if (this.closed) throw new Error("client closed");
      try {
        const ws = await new Promise<WebSocket>((res, rej) => {
          const ws = new WebSocket(this.serveUrl(), { headers: this.authHeaders(), maxPayload: 64 * 1024 * 1024 });
          ws.once("open", () => res(ws));
          ws.once("unexpected-response", (_req, resp) => {
            let body = "";
            resp.on("data", (d: Buffer) => (body += d));
            resp.on("end", () => {
              let message = body;
              try {
                message = (JSON.parse(body) as { message?: string }).message ?? body;
              } catch {
                // not JSON
              }
              rej(Object.assign(new Error(`coderd refused the daemon (${resp.statusCode}): ${message}`), { status: resp.statusCode }));
            });
          });
          ws.once("error", rej);
        });
        ws.on("message", (data) => this.onMessage(data.toString()));
        ws.on("close", () => {
          if (this.ws === ws) this.ws = undefined;
          for (const p of this.pending.values()) p.reject(new Error("connection to coderd lost"));
          this.pending.clear();
        });
        ws.on("error", () => {});
        this.ws = ws;
        this.backoffMs = 100;
        return ws;
      } catch (err) {
        const status = (err as { status?: number }).status;
        // Wrong credentials will not fix themselves: fail instead of retrying forever.
        if (status === 401 || status === 403 || status === 404) throw err;
        this.opts.logger.warn({ err: (err as Error).message }, "connecting to coderd failed; retrying");
        await new Promise((r) => setTimeout(r, this.backoffMs * (0.5 + Math.random())));
        this.backoffMs = Math.min(this.backoffMs * 2, 10_000);
      }
    }
  }

  private onMessage(text: string): void {
    let msg: { id?: number; result?: unknown; error?: { message: string } };
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    const p = msg.id === undefined ? undefined : this.pending.get(msg.id);
    if (!p) {
      // A job acquired after we gave up waiting for it: hand it back.
      const late = msg.result as AcquiredJob | null | undefined;
      if (late && typeof late === "object" && "job_id" in late) void this.call("release", { job_id: late.job_id }).catch(() => {});
      return;
    }
    this.pending.delete(msg.id!);
    if (msg.error) p.reject(new Error(msg.error.message));
    else p.resolve(msg.result);
  }

  private async call<T>(method: string, params: unknown, signal?: AbortSignal): Promise<T> {
    const ws = await this.socket();
    // Aborted while connecting: the listener below would never hear of it.
    if (signal?.aborted) return undefined as T;
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      ws.send(JSON.stringify({ id, method, params }), (err) => {
        if (err) {
          this.pending.delete(id);
          reject(err);
        }
      });
      signal?.addEventListener(
        "abort",
        () => {
          if (!this.pending.delete(id)) return;
          ws.send(JSON.stringify({ id: this.nextId++, method: "cancel_acquire", params: { id } }));
          resolve(undefined as T);
        },
        { once: true },
      );
    });
  }

  async acquireJob(signal: AbortSignal): Promise<AcquiredJob | undefined> {
    if (signal.aborted) return undefined;
    return (await this.call<AcquiredJob | null>("acquire", {}, signal)) ?? undefined;
  }

  updateJob(jobId: string, logs: JobLog[]): Promise<{ canceled: boolean }> {
    return this.call("update", { job_id: jobId, logs });
  }

  async completeJob(job: CompletedJob): Promise<void> {
    await this.call("complete", job);
  }

  async failJob(job: FailedJob): Promise<void> {
    await this.call("fail", job);
  }

  async fetchFile(fileId: string): Promise<Uint8Array> {
    const res = await fetch(new URL(`/api/v2/files/${encodeURIComponent(fileId)}`, this.opts.url), { headers: this.authHeaders() });
    if (!res.ok) throw new Error(`downloading template archive ${fileId} failed: ${res.status} ${await res.text()}`);
    return new Uint8Array(await res.arrayBuffer());
  }

  async close(): Promise<void> {
    this.closed = true;
    const ws = this.ws;
    this.ws = undefined;
    if (ws && ws.readyState === WebSocket.OPEN) {
      await new Promise<void>((res) => {
        ws.once("close", () => res());
        ws.close(1000, "daemon shutting down");
        setTimeout(res, 2000).unref();
      });
    }
  }
}
