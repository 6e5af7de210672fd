// One "session" channel: collects the client's env, pty and agent-forwarding requests, then runs
// a shell, a command or the SFTP subsystem, and reports how the program ended.
import type { Connection, PseudoTtyInfo, ServerChannel, Session } from "ssh2";
import { forwardAgent } from "./agent-forwarding.js";
import type { SessionChild } from "./child.js";
import { startPipes } from "./pipes.js";
import { startPty, type PtyRequest } from "./pty.js";
import type { Scope } from "./scope.js";
import { serveSftp } from "./sftp.js";

export interface SessionContext {
  conn: Connection;
  shell: string;
  directory: string;
  /** The environment every program starts with (the agent's, the workspace's, USER, HOME…). */
  env: Record<string, string>;
  /** Counts an open session of a kind for stats; returns the function that uncounts it. */
  track(kind: string): () => void;
  warn(...args: unknown[]): void;
}

export function handleSession(ctx: SessionContext, session: Session, scope: Scope): void {
  const clientEnv: Record<string, string> = {};
  let pty: PtyRequest | undefined;
  let child: SessionChild | undefined;
  let agentSocket: string | undefined;
  // Requests arrive in order but the agent socket is set up asynchronously: the shell or command
  // that follows the request waits for it, so that it sees SSH_AUTH_SOCK.
  let agentReady: Promise<void> = Promise.resolve();
  let started = false;

  session.on("close", () => scope.end());

  // Clients send LANG, LC_*, and whatever SetEnv/SendEnv says: the workspace is the user's own,
  // so there is nothing to protect by refusing some (sshd's AcceptEnv guards other users).
  session.on("env", (accept, _reject, info) => {
    clientEnv[info.key] = info.val;
    accept?.();
  });
  session.on("pty", (accept, _reject, info: PseudoTtyInfo) => {
    pty = { term: info.term, cols: info.cols, rows: info.rows };
    accept?.();
  });
  session.on("window-change", (accept, _reject, info) => {
    if (pty) pty = { ...pty, cols: info.cols, rows: info.rows };
    child?.resize(info.cols, info.rows);
    accept?.();
  });
  session.on("signal", (accept, _reject, info) => {
    child?.signal(info.name);
    accept?.();
  });
  session.on("auth-agent", (accept, reject) => {
    agentReady = forwardAgent(ctx.conn, scope, ctx.warn).then(
      (path) => {
        agentSocket = path;
        accept?.();
      },
      (err: unknown) => {
        ctx.warn({ err: (err as Error).message }, "ssh: agent forwarding failed");
        reject?.();
      },
    );
  });

  const run = (channel: ServerChannel, command: string | undefined) => {
    if (scope.isEnded) return;
    scope.defer(ctx.track("ssh"));
    const env = { ...ctx.env, ...clientEnv, ...(agentSocket ? { SSH_AUTH_SOCK: agentSocket } : {}) };
    // Like sshd: a shell is a login shell; a command runs as `shell -c command`.
    const args = command === undefined ? ["-l"] : ["-c", command];
    const opts = { file: ctx.shell, args, cwd: ctx.directory, env };
    let c: SessionChild;
    try {
      c = child = pty ? startPty(channel, { ...opts, pty }) : startPipes(channel, opts);
    } catch (err) {
      // node-pty throws when it cannot start the shell: tell the client, as a shell would.
      channel.stderr.write(`${ctx.shell}: ${(err as Error).message}\n`);
      channel.exit(127);
      channel.end();
      return;
    }
    // Hung up when the channel or the connection goes first (the client vanished); once the
    // program has exited by itself, what it left in the background stays, as with sshd.
    let exited = false;
    scope.defer(() => {
      if (!exited) c.kill();
    });
    void c.exited.then(({ code, signal }) => {
      exited = true;
      try {
        if (signal) channel.exit(signal, false, "");
        else channel.exit(code ?? 0);
      } catch {
        // a signal SSH has no name for: the client just sees no exit status
      }
      channel.end();
    });
  };

  session.on("shell", (accept, reject) => {
    if (started) return reject?.();
    started = true;
    const channel = accept();
    void agentReady.then(() => run(channel, undefined));
  });
  session.on("exec", (accept, reject, info) => {
    if (started) return reject?.();
    started = true;
    const channel = accept();
    void agentReady.then(() => run(channel, info.command));
  });
  session.on("sftp", (accept, reject) => {
    if (started) return reject?.();
    started = true;
    scope.defer(ctx.track("sftp"));
    serveSftp(accept(), ctx.directory, scope);
  });
}
