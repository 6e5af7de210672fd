// The workspace agent: connects to coderd, fetches its manifest, runs the startup script (its
// output becomes agent logs), reports its lifecycle, and on shutdown runs the shutdown script.
import { mkdirSync } from "node:fs";
import { platform } from "node:os";
import type { Logger } from "pino";
import { build } from "../buildinfo/index.js";
import type { AgentManifest } from "../codersdk/index.js";
import { AgentConnection } from "./connection.js";
import { Outbox } from "./outbox.js";
import { runScript } from "./script.js";

export const PING_INTERVAL_MS = 5_000;
const SHUTDOWN_SCRIPT_TIMEOUT_SECONDS = 300;

export interface AgentOptions {
  url: string;
  token: string;
  logger: Logger;
}

export class Agent {
  private readonly outbox = new Outbox();
  private readonly conn: AgentConnection;
  private readonly stopSending = new AbortController();
  private readonly stopStartup = new AbortController();
  private manifest: AgentManifest | undefined;
  private startup: Promise<void> | undefined;
  private sender: Promise<void> | undefined;
  private pinger: NodeJS.Timeout | undefined;

  constructor(private readonly opts: AgentOptions) {
    this.conn = new AgentConnection(opts.url, opts.token, opts.logger, () => this.hello());
  }

  private async hello(): Promise<void> {
    this.manifest ??= await this.fetchManifest();
    await this.conn.call("hello", { version: build.version, operating_system: platform(), expanded_directory: this.manifest.directory });
  }

  private async fetchManifest(): Promise<AgentManifest> {
    const res = await fetch(new URL("/api/v2/workspaceagents/me/manifest", this.opts.url), { headers: { "Coder-Session-Token": this.opts.token } });
    if (!res.ok) throw new Error(`fetching the manifest failed: ${res.status} ${await res.text()}`);
    return (await res.json()) as AgentManifest;
  }

  /** Connects and starts; resolves once the startup script has finished (or there was none). */
  async start(): Promise<void> {
    void this.conn.run();
    this.sender = this.send();
    this.pinger = setInterval(() => {
      if (this.conn.connected) this.conn.call("ping", {}).catch(() => {});
    }, PING_INTERVAL_MS);
    await this.conn.whenConnected();
    const m = this.manifest;
    if (!m) return;
    this.startup = this.runStartup(m);
    await this.startup;
  }

  private async runStartup(m: AgentManifest): Promise<void> {
    mkdirSync(m.directory, { recursive: true });
    if (!m.startup_script.trim()) {
      this.outbox.lifecycle("ready");
      return;
    }
    this.outbox.lifecycle("starting");
    const { result, code } = await runScript(m.startup_script, {
      cwd: m.directory,
      env: m.environment,
      timeoutSeconds: m.startup_script_timeout_seconds,
      signal: this.stopStartup.signal,
      onLine: (line, stream) => this.outbox.log("startup_script", stream === "stderr" ? "warn" : "info", line),
    });
    if (result !== "ok") this.outbox.log("startup_script", "error", result === "timeout" ? `startup script timed out after ${m.startup_script_timeout_seconds}s` : `startup script exited with code ${code}`);
    this.outbox.lifecycle(result === "ok" ? "ready" : result === "timeout" ? "start_timeout" : "start_error");
  }

  /** Sends the outbox in order, each item until coderd acknowledges it. */
  private async send(): Promise<void> {
    const signal = this.stopSending.signal;
    for (;;) {
      const item = await this.outbox.next(signal);
      if (!item) return;
      await this.conn.whenConnected();
      if (signal.aborted && !this.conn.connected) return;
      try {
        await this.conn.call(item.method, item.params);
        this.outbox.ack(item);
      } catch (err) {
        if ((err as Error).message !== "connection to coderd lost" && (err as Error).message !== "not connected to coderd") {
          // coderd refused the item itself (it will not get better by resending): drop it.
          this.opts.logger.warn({ err: (err as Error).message, method: item.method }, "coderd refused an update");
          this.outbox.ack(item);
        }
      }
    }
  }

  /** SIGTERM: stop a running startup script, run the shutdown script, report off, flush. */
  async shutdown(flushTimeoutMs = 10_000): Promise<void> {
    this.stopStartup.abort();
    await this.startup?.catch(() => {});
    const m = this.manifest;
    if (m) {
      this.outbox.lifecycle("shutting_down");
      if (m.shutdown_script.trim()) {
        const { result, code } = await runScript(m.shutdown_script, {
          cwd: m.directory,
          env: m.environment,
          timeoutSeconds: SHUTDOWN_SCRIPT_TIMEOUT_SECONDS,
          onLine: (line, stream) => this.outbox.log("shutdown_script", stream === "stderr" ? "warn" : "info", line),
        });
        if (result !== "ok") this.outbox.log("shutdown_script", "error", result === "timeout" ? "shutdown script timed out" : `shutdown script exited with code ${code}`);
        this.outbox.lifecycle(result === "ok" ? "off" : result === "timeout" ? "shutdown_timeout" : "shutdown_error");
      } else {
        this.outbox.lifecycle("off");
      }
    }
    // Give the last updates a bounded chance to reach coderd.
    const deadline = Date.now() + flushTimeoutMs;
    while (this.outbox.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    if (this.outbox.dropped) this.opts.logger.warn({ dropped: this.outbox.dropped }, "log lines were dropped while coderd was unreachable");
    clearInterval(this.pinger);
    this.stopSending.abort();
    this.conn.close();
    await this.sender;
  }
}
