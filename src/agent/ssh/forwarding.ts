// TCP port forwarding. Local (-L, direct-tcpip): the client asks us to connect somewhere the
// workspace can reach. Remote (-R, tcpip-forward): we listen inside the workspace and hand each
// connection back to the client. Both pipe with backpressure through stream.pipeline.
import { connect, createServer, type Server, type Socket } from "node:net";
import { pipeline } from "node:stream";
import type { Connection, ServerChannel, TcpipBindInfo, TcpipRequestInfo } from "ssh2";
import type { Scope } from "./scope.js";

/** Joins a TCP socket and an SSH channel until either side is done; errors just end both. */
function join(socket: Socket, channel: ServerChannel, scope: Scope, release: () => void): void {
  const stop = scope.defer(() => {
    socket.destroy();
    channel.destroy();
  });
  pipeline(socket, channel, socket, () => {
    stop();
    release();
  });
}

export function handleDirectTcpip(
  accept: () => ServerChannel,
  reject: () => void,
  info: TcpipRequestInfo,
  scope: Scope,
  track: (kind: string) => () => void,
): void {
  // Any destination the workspace itself can reach: the client already has a shell here.
  const socket = connect({ host: info.destIP, port: info.destPort });
  const onError = () => reject();
  socket.once("error", onError);
  socket.once("connect", () => {
    socket.off("error", onError);
    if (scope.isEnded) return socket.destroy();
    join(socket, accept(), scope, track("port_forward"));
  });
}

/** Addresses in a tcpip-forward request → what to listen on (as sshd with GatewayPorts=clientspecified). */
function listenHost(addr: string): string | undefined {
  if (addr === "" || addr === "*" || addr === "0.0.0.0" || addr === "::") return undefined; // every interface
  if (addr === "localhost") return "127.0.0.1";
  return addr;
}

/** The listeners one connection asked for with tcpip-forward, until cancelled or disconnected. */
export class RemoteForwards {
  private readonly listeners = new Map<string, Server>();

  constructor(
    private readonly conn: Connection,
    private readonly scope: Scope,
    private readonly track: (kind: string) => () => void,
  ) {
    scope.defer(() => {
      for (const srv of this.listeners.values()) srv.close();
      this.listeners.clear();
    });
  }

  /** Resolves with the bound port (what the client needs when it asked for port 0). */
  async listen(info: TcpipBindInfo): Promise<number> {
    const srv = createServer((socket) => this.forward(socket, info.bindAddr, port));
    await new Promise<void>((resolve, reject) => {
      srv.once("error", reject);
      srv.listen({ host: listenHost(info.bindAddr), port: info.bindPort }, () => {
        srv.off("error", reject);
        resolve();
      });
    });
    const address = srv.address();
    const port = typeof address === "object" && address ? address.port : info.bindPort;
    if (this.scope.isEnded) {
      srv.close();
      throw new Error("connection closed");
    }
    srv.on("error", () => {});
    this.listeners.set(`${info.bindAddr}:${port}`, srv);
    return port;
  }

  cancel(info: TcpipBindInfo): boolean {
    const key = `${info.bindAddr}:${info.bindPort}`;
    const srv = this.listeners.get(key);
    if (!srv) return false;
    this.listeners.delete(key);
    srv.close();
    return true;
  }

  private forward(socket: Socket, bindAddr: string, port: number): void {
    socket.on("error", () => {});
    // The socket stays paused (nothing reads it yet) until the client has accepted the channel.
    this.conn.forwardOut(bindAddr, port, socket.remoteAddress ?? "127.0.0.1", socket.remotePort ?? 0, (err, channel) => {
      if (err || this.scope.isEnded) return socket.destroy();
      join(socket, channel, this.scope, this.track("port_forward"));
    });
  }
}
