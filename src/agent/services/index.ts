// The agent's services on the streams of its tunnel sessions: the networking layer hands each
// incoming stream over with the header the peer sent first, and AgentServices serves it.
import type { Duplex } from "node:stream";
import { serveTcp } from "./dial.js";
import { parseStreamHeader, type ServiceName, type StreamHeader } from "./header.js";
import type { ServiceLogger } from "./logger.js";
import { meter } from "./meter.js";
import type { ReconnectingPtys } from "./reconnecting-pty.js";
import { serveSpeedtest } from "./speedtest.js";

export { serveTcp } from "./dial.js";
export { parseStreamHeader, streamHeaderSchema, type PtyHeader, type SpeedtestHeader, type StreamHeader, type TcpHeader } from "./header.js";
export type { ServiceLogger } from "./logger.js";
export { ReconnectingPtys, type PtyRequest, type PtyServeContext, type ReconnectingPtyOptions } from "./reconnecting-pty.js";
export { runSpeedtest, serveSpeedtest, type SpeedtestOptions, type SpeedtestRequest, type SpeedtestResult } from "./speedtest.js";

export type SessionKind = "ssh" | "reconnecting_pty" | "speedtest" | "tcp";

const KIND: Record<Exclude<ServiceName, "ping">, SessionKind> = { ssh: "ssh", pty: "reconnecting_pty", speedtest: "speedtest", tcp: "tcp" };

export interface AgentServicesOptions {
  /** The SSH server (AgentSshServer), which serves an SSH connection over a stream. */
  ssh: { handle(stream: Duplex): Promise<void> };
  ptys: ReconnectingPtys;
  logger?: ServiceLogger;
}

export interface AgentServiceStats {
  /** Streams open now, by service. */
  sessions: Record<SessionKind, number>;
  /** Streams open now. */
  connections: number;
  /** Bytes received on and sent over the streams, since the agent started. */
  rx_bytes: number;
  tx_bytes: number;
}

export class AgentServices {
  private readonly open = new Set<Duplex>();
  private readonly sessions: Record<SessionKind, number> = { ssh: 0, reconnecting_pty: 0, speedtest: 0, tcp: 0 };
  private rx = 0;
  private tx = 0;
  private closed = false;

  constructor(private readonly opts: AgentServicesOptions) {}

  /** Serves one stream. Never throws: a bad header or a failing service only ends that stream. */
  handle(header: unknown, stream: Duplex): void {
    // A stream's errors (the peer vanished) end that stream only, never the agent.
    stream.on("error", () => {});
    if (this.closed) {
      stream.destroy();
      return;
    }
    let h: StreamHeader;
    try {
      h = parseStreamHeader(header);
    } catch (err) {
      this.opts.logger?.warn({ err: (err as Error).message }, "agent: refused a stream");
      stream.destroy();
      return;
    }
    if (h.service === "ping") {
      // Round trips only: not a session, and not worth a stats line.
      stream.pipe(stream);
      return;
    }
    this.track(stream, KIND[h.service]);
    let served: Promise<void>;
    try {
      served = this.dispatch(h, stream);
    } catch (err) {
      served = Promise.reject(err);
    }
    served.catch((err: unknown) => {
      this.opts.logger?.warn({ err: (err as Error)?.message, service: h.service }, "agent: service failed");
      stream.destroy();
    });
  }

  private dispatch(h: Exclude<StreamHeader, { service: "ping" }>, stream: Duplex): Promise<void> {
    switch (h.service) {
      case "ssh":
        return this.opts.ssh.handle(stream);
      case "pty":
        return this.opts.ptys.serve(stream, { id: h.id, width: h.width, height: h.height, command: h.command });
      case "speedtest":
        return serveSpeedtest(stream, h);
      case "tcp":
        return serveTcp(stream, h.port);
    }
  }

  private track(stream: Duplex, kind: SessionKind): void {
    meter(
      stream,
      (n) => (this.rx += n),
      (n) => (this.tx += n),
    );
    this.sessions[kind]++;
    this.open.add(stream);
    const release = () => {
      if (!this.open.delete(stream)) return;
      this.sessions[kind]--;
    };
    if (stream.destroyed) queueMicrotask(release);
    else stream.once("close", release);
  }

  stats(): AgentServiceStats {
    return { sessions: { ...this.sessions }, connections: this.open.size, rx_bytes: this.rx, tx_bytes: this.tx };
  }

  /** Ends every open stream and kills every reconnecting PTY. */
  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.open) s.destroy();
    await this.opts.ptys.close();
  }
}
