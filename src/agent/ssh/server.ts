// The SSH server the workspace agent offers to peers (coder ssh, VS Code Remote-SSH, scp, port
// forwarding), served over any duplex stream: the networking layer hands it streams from its
// encrypted tunnel, tests hand it plain TCP sockets.
//
// Authentication: none here, on purpose. A stream only reaches this server through the tunnel,
// which has already authenticated the peer as someone allowed into this workspace, so the SSH
// layer accepts "none", and any public key or password, without checking: the transport is what
// is trusted. The username the client sends is ignored; sessions run as the agent's user.
import { homedir, userInfo } from "node:os";
import type { Duplex } from "node:stream";
import ssh2, { type AuthContext, type Connection } from "ssh2";
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

/** Variables of the agent itself that must not leak into the user's sessions. */
const AGENT_ONLY_ENV = ["CODER_AGENT_TOKEN"];

export class AgentSshServer {
  private readonly server: ssh2.Server;
  private readonly connections = new Set<{ scope: Scope; conn: Connection; stream: Duplex; done: Promise<void> }>();
  private readonly counts = new Map<string, number>();
  private readonly shell: string;
  private readonly directory: string;
  private readonly baseEnv: Record<string, string>;
  private closed = false;

  constructor(private readonly opts: SshServerOptions) {
    // ssh2's Server owns a net.Server we never listen on: it is only the factory that turns an
    // injected stream into a server-side connection.
    this.server = new ssh2.Server({ hostKeys: [opts.hostKey], ident: "coder-agent" });
    this.shell = opts.shell ?? loginShell();
    this.directory = opts.directory ?? homedir();
    const user = userInfo();
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !AGENT_ONLY_ENV.includes(k)) env[k] = v;
    this.baseEnv = { ...env, USER: user.username, LOGNAME: user.username, HOME: homedir(), SHELL: this.shell, ...opts.env };
  }

  /** Serves one SSH connection over the stream. Resolves when it ends. */
  handle(stream: Duplex): Promise<void> {
    if (this.closed) {
      stream.destroy();
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const scope = new Scope();
      const conn = this.accept(stream, scope);
      const entry = { scope, conn, stream, done: Promise.resolve() };
      entry.done = new Promise<void>((done) => {
        const finish = () => {
          scope.end();
          this.connections.delete(entry);
          done();
          resolve();
        };
        if (stream.destroyed) finish();
        else stream.once("close", finish);
      });
      this.connections.add(entry);
    });
  }

  private accept(stream: Duplex, scope: Scope): Connection {
    let conn: Connection | undefined;
    this.server.once("connection", (c: Connection) => (conn = c));
    // injectSocket only needs a duplex (read, write, end, and the usual events).
    this.server.injectSocket(stream as Parameters<ssh2.Server["injectSocket"]>[0]);
    if (!conn) throw new Error("ssh2 did not take the stream");
    // ssh2 reports the connection only after reading the client's identification line; the
    // synchronous "connection" above is the net.Server's, so wait for ssh2's own.
    return this.setUp(stream, scope);
  }

  private setUp(stream: Duplex, scope: Scope): Connection {
    throw new Error("unreachable");
  }

  /** Counts for stats: open sessions by kind ("ssh", "sftp", "port_forward"). */
  sessions(): Record<string, number> {
    return Object.fromEntries([...this.counts].filter(([, n]) => n > 0));
  }

  private track = (kind: string): (() => void) => {
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
