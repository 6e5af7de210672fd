// The SSH server the workspace agent offers to peers (coder ssh, VS Code Remote-SSH, scp, port
// forwarding), served over any duplex stream: the networking layer hands it streams from its
// encrypted tunnel, tests hand it plain TCP sockets.
//
// Authentication: none here, on purpose. A stream only reaches this server through the tunnel,
// which has already authenticated the peer as someone allowed into this workspace, so the SSH
// layer accepts "none", and any public key or password, without checking: the transport is what
// is trusted. The username the client sends is ignored; sessions run as the agent's user.
import { homedir } from "node:os";
import type { Duplex } from "node:stream";
import ssh2, { type AuthContext, type Connection, type ParsedKey, type TcpipBindInfo } from "ssh2";
import { sessionEnvironment } from "./environment.js";
import { handleDirectTcpip, RemoteForwards } from "./forwarding.js";
import { loginShell } from "./login-shell.js";
import { Scope } from "./scope.js";
import { handleSession, type SessionContext } from "./session.js";

export interface SshServerOptions {
  /** PEM private key (ed25519 or RSA, OpenSSH or PEM format); see loadOrCreateHostKey. */
  hostKey: string | Buffer;
  /** Default: the user's login shell from /etc/passwd, else /bin/sh. */
  shell?: string;
  /** The workspace's environment, added to every session. */
  env?: Record<string, string>;
  /** Sessions start here (default: $HOME). */
  directory?: string;
  logger?: { info(...a: unknown[]): void; warn(...a: unknown[]): void; debug?(...a: unknown[]): void };
}

export class AgentSshServer {
  private readonly hostKey: ParsedKey;
  private readonly connections = new Set<{ scope: Scope; stream: Duplex; done: Promise<void> }>();
  private readonly counts = new Map<string, number>();
  private readonly shell: string;
  private readonly directory: string;
  private readonly env: Record<string, string>;
  private closed = false;

  constructor(private readonly opts: SshServerOptions) {
    const key = ssh2.utils.parseKey(opts.hostKey);
    if (key instanceof Error) throw new Error(`the SSH host key is not usable: ${key.message}`);
    this.hostKey = Array.isArray(key) ? (key as ParsedKey[])[0]! : key;
    this.shell = opts.shell ?? loginShell();
    this.directory = opts.directory ?? homedir();
    this.env = sessionEnvironment(this.shell, opts.env);
  }

  /** Serves one SSH connection over the stream (a socket, a tunnel's stream). Resolves when it ends. */
  handle(stream: Duplex): Promise<void> {
    if (this.closed) {
      stream.destroy();
      return Promise.resolve();
    }
    const scope = new Scope();
    // An ssh2 Server per stream: it is only the factory that turns an injected stream into a
    // server-side connection (its net.Server never listens), and one per stream ties the
    // connection it reports, asynchronously, to this stream.
    const server = new ssh2.Server({ hostKeys: [{ key: this.hostKey }], ident: "coder-agent" }, (conn) => this.serve(conn, stream, scope));
    stream.on("error", () => {}); // ssh2 reports it as the connection's error; the stream just ends
    const done = new Promise<void>((resolve) => {
      const finish = () => {
        scope.end();
        this.connections.delete(entry);
        resolve();
      };
      if (stream.destroyed) queueMicrotask(finish);
      else stream.once("close", finish);
    });
    const entry = { scope, stream, done };
    this.connections.add(entry);
    // injectSocket only needs what any duplex has (read, write, end, and their events).
    server.injectSocket(stream as Parameters<ssh2.Server["injectSocket"]>[0]);
    return done;
  }

  private serve(conn: Connection, stream: Duplex, scope: Scope): void {
    const log = this.opts.logger;
    // Ends the stream once what ssh2 wrote (e.g. its disconnect message) is flushed; a stream
    // that never closes by itself (half-open duplexes) is closed then.
    const endStream = () => {
      if (stream.destroyed) return;
      stream.end(() => stream.destroy());
    };
    scope.defer(() => conn.end());
    log?.debug?.("ssh: connection");
    conn.on("close", () => log?.debug?.("ssh: connection closed"));
    conn.on("error", (err: Error) => {
      log?.debug?.({ err: err.message }, "ssh: connection error");
      endStream();
    });
    conn.on("end", endStream);
    conn.on("authentication", (ctx: AuthContext) => ctx.accept());

    const session: SessionContext = { conn, shell: this.shell, directory: this.directory, env: this.env, track: this.track, warn: (...a) => log?.warn(...a) };
    conn.on("session", (accept) => handleSession(session, accept(), scope.child()));
    conn.on("tcpip", (accept, reject, info) => handleDirectTcpip(accept, reject, info, scope, this.track));
    const forwards = new RemoteForwards(conn, scope, this.track);
    conn.on("request", (accept, reject, name, info) => {
      if (name === "tcpip-forward") {
        forwards.listen(info as TcpipBindInfo).then(
          (port) => accept?.(port),
          (err: unknown) => {
            log?.warn({ err: (err as Error).message, addr: (info as TcpipBindInfo).bindAddr, port: (info as TcpipBindInfo).bindPort }, "ssh: remote forward refused");
            reject?.();
          },
        );
      } else if (name === "cancel-tcpip-forward") {
        if (forwards.cancel(info as TcpipBindInfo)) accept?.();
        else reject?.();
      } else {
        reject?.();
      }
    });
  }

  /** Counts for stats: open sessions by kind ("ssh", "sftp", "port_forward"). */
  sessions(): Record<string, number> {
    return Object.fromEntries([...this.counts].filter(([, n]) => n > 0));
  }

  private readonly track = (kind: string): (() => void) => {
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.counts.set(kind, (this.counts.get(kind) ?? 1) - 1);
    };
  };

  /** Ends every connection, and with them every child process and listener. */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.connections];
    for (const c of all) {
      c.scope.end();
      c.stream.destroy();
    }
    await Promise.all(all.map((c) => c.done));
  }
}
