// The workspace agent: connects to coderd, fetches its manifest, runs the startup script (its
// output becomes agent logs), reports its lifecycle, and on shutdown runs the shutdown script.
import { mkdirSync } from "node:fs";
import { homedir, platform } from "node:os";
import { join } from "node:path";
import type { Logger } from "pino";
import { build } from "../buildinfo/index.js";
import type { AgentManifest } from "../codersdk/index.js";
import { checkAppHealth } from "./app-health.js";
import { AgentConnection } from "./connection.js";
import { collectMetadata, type MetadataValue } from "./metadata.js";
import { listeningPorts } from "./ports.js";
import { AgentNetwork } from "./network.js";
import { AgentServices, ReconnectingPtys } from "./services/index.js";
import { AgentSshServer, hostPublicKey, loadOrCreateHostKey } from "./ssh/index.js";
import { Outbox } from "./outbox.js";
import { runScript } from "./script.js";

export const PING_INTERVAL_MS = 5_000;
const PORTS_INTERVAL_MS = 5_000;
/** Metadata, ports and app health are "latest value" reports, sent at most this often. */
const REPORT_INTERVAL_MS = 1_000;
const SHUTDOWN_SCRIPT_TIMEOUT_SECONDS = 300;
/** Stats go out at least this often, and within a second when sessions open or close. */
const STATS_INTERVAL_MS = 30_000;

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
  private reporter: NodeJS.Timeout | undefined;
  private readonly stoppers: Array<() => void> = [];
  // Latest values not yet acknowledged by coderd: sent again after a reconnect.
  private readonly metadata = new Map<string, MetadataValue>();
  private readonly appHealth = new Map<string, string>();
  private ports: string | undefined;
  private portsSent: string | undefined;
  private startupGroup: number | undefined;
  /** Generated once per agent (kept in its home), so clients can pin it across restarts. */
  private hostKey: string | undefined;
  private services: AgentServices | undefined;
  private network: AgentNetwork | undefined;
  private statsSent = { key: "", at: 0 };

  constructor(private readonly opts: AgentOptions) {
    this.conn = new AgentConnection(opts.url, opts.token, opts.logger, () => this.hello());
  }

  private async hello(): Promise<void> {
    this.manifest ??= await this.fetchManifest();
    this.hostKey ??= await loadOrCreateHostKey(join(homedir(), ".coder", "ssh_host_ed25519_key"));
    // A new connection (maybe another replica) gets the latest ports again.
    this.portsSent = undefined;
    await this.conn.call("hello", {
      version: build.version,
      operating_system: platform(),
      expanded_directory: this.manifest.directory,
      ssh_host_public_key: hostPublicKey(this.hostKey),
    });
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
    this.watch(m);
    this.serve(m);
    this.startup = this.runStartup(m);
    await this.startup;
  }

  /** What peers reach over the tunnel: SSH, terminals, speed tests, TCP ports. */
  private serve(m: AgentManifest): void {
    const logger = this.opts.logger.child({ component: "services" });
    const options = { env: m.environment, directory: m.directory, logger };
    const ssh = new AgentSshServer({ hostKey: this.hostKey!, ...options });
    const services = new AgentServices({ ssh, ptys: new ReconnectingPtys(options), logger });
    this.services = services;
    this.stoppers.push(() => void services.close(), () => void ssh.close());
    this.network = new AgentNetwork({
      coderUrl: this.opts.url,
      token: this.opts.token,
      connection: m.connection,
      logger: this.opts.logger,
      onStream: (header, stream) => services.handle(header, stream),
    });
    this.network.start().catch((err: unknown) => this.opts.logger.error({ err: (err as Error).message }, "the agent's network did not start: peers cannot reach it"));
  }

  /** Metadata commands, listening ports and app health, reported as they change. */
  private watch(m: AgentManifest): void {
    this.stoppers.push(collectMetadata(m.metadata, { cwd: m.directory, env: m.environment, onValue: (key, v) => this.metadata.set(key, v) }));
    this.stoppers.push(checkAppHealth(m.apps, (slug, health) => this.appHealth.set(slug, health)));
    const scan = () => void listeningPorts().then((p) => (this.ports = JSON.stringify(p)), () => {});
    scan();
    const portsTimer = setInterval(scan, PORTS_INTERVAL_MS);
    this.stoppers.push(() => clearInterval(portsTimer));
    this.reporter = setInterval(() => void this.report(), REPORT_INTERVAL_MS);
  }

  private async report(): Promise<void> {
    if (!this.conn.connected) return;
    try {
      if (this.metadata.size) {
        const values = Object.fromEntries(this.metadata);
        this.metadata.clear();
        await this.conn.call("metadata", { values }).catch((err: unknown) => {
          for (const [k, v] of Object.entries(values)) if (!this.metadata.has(k)) this.metadata.set(k, v);
          throw err;
        });
      }
      if (this.appHealth.size) {
        const health = Object.fromEntries(this.appHealth);
        this.appHealth.clear();
        await this.conn.call("app_health", { health }).catch((err: unknown) => {
          for (const [k, v] of Object.entries(health)) if (!this.appHealth.has(k)) this.appHealth.set(k, v);
          throw err;
        });
      }
      if (this.services) {
        const stats = this.services.stats();
        const key = `${stats.connections} ${JSON.stringify(stats.sessions)}`;
        if (key !== this.statsSent.key || Date.now() - this.statsSent.at >= STATS_INTERVAL_MS) {
          await this.conn.call("stats", stats);
          this.statsSent = { key, at: Date.now() };
        }
      }
      if (this.ports !== undefined && this.ports !== this.portsSent) {
        const ports = this.ports;
        await this.conn.call("ports", { ports: JSON.parse(ports) });
        this.portsSent = ports;
      }
    } catch {
      // not delivered: the values stay for the next round
    }
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
      onSpawn: (pgid) => (this.startupGroup = pgid),
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
    // What the startup script left running in the background (servers, watchers) stops with the workspace.
    if (this.startupGroup !== undefined) {
      try {
        process.kill(-this.startupGroup, "SIGTERM");
      } catch {
        // nothing left
      }
    }
    // Give the last updates a bounded chance to reach coderd.
    const deadline = Date.now() + flushTimeoutMs;
    while (this.outbox.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    if (this.outbox.dropped) this.opts.logger.warn({ dropped: this.outbox.dropped }, "log lines were dropped while coderd was unreachable");
    clearInterval(this.pinger);
    clearInterval(this.reporter);
    this.network?.close();
    for (const stop of this.stoppers) stop();
    this.stopSending.abort();
    this.conn.close();
    await this.sender;
  }
}
