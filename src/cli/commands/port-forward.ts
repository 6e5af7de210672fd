// `coder port-forward <workspace> --tcp [bind:]local:remote ...`: listens on local ports and
// carries each accepted connection over the tunnel to 127.0.0.1:<remote> inside the workspace
// (the agent's "tcp" service), until SIGINT or SIGTERM.
import { createServer, type Server, type Socket } from "node:net";
import { pipeline, type Duplex } from "node:stream";
import type { Command } from "commander";
import type { AgentConn } from "../../codersdk/index.js";
import { dialTarget, untilSignal } from "../agent-dial.js";
import { CliError } from "../errors.js";
import { listenAddress, parsePortForwards, type PortForward } from "../port-spec.js";
import type { GlobalOptions } from "../session.js";

interface Options {
  tcp?: string[];
}

export async function run(globals: GlobalOptions, cmd: Command, target: string): Promise<void> {
  const o = cmd.opts() as Options;
  // Bad specs fail before anything is dialed or listened on.
  const forwards = parsePortForwards(o.tcp ?? []);
  if (forwards.length === 0) throw new CliError("Nothing to forward: give at least one --tcp [bind:]local:remote, e.g. --tcp 8080:80");
  const { workspace, conn } = await dialTarget(globals, target, { wait: "ready" });
  const say = (line: string) => process.stderr.write(`${line}\n`);
  const sockets = new Set<Socket>();
  const servers: Server[] = [];
  const signal = untilSignal();
  try {
    conn.on("lost", (err) => say(`Lost the connection to the agent of "${workspace.name}" (${err.message}); reconnecting`));
    conn.on("path", (path) => say(path === "direct" ? "Connected to the agent directly" : "The direct path to the agent is gone; using the relay"));
    // The direct path may already be up (it is tried while the relay session is dialed).
    if (conn.path === "direct") say("Connected to the agent directly");
    for (const f of forwards) {
      const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => forward(conn, f, socket, sockets, say));
      servers.push(server);
      await listen(server, f);
      process.stdout.write(`Forwarding ${listenAddress(f)} → workspace port ${f.remotePort}\n`);
    }
    process.stdout.write("Press Ctrl-C to stop.\n");
    await signal.promise;
  } finally {
    signal.cancel();
    for (const s of servers) s.close();
    for (const s of sockets) s.destroy();
    conn.close();
  }
}

function listen(server: Server, f: PortForward): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => {
      const why = err.code === "EADDRINUSE" ? "the address is already in use" : err.code === "EACCES" ? "permission denied" : err.message;
      reject(new CliError(`--tcp ${listenAddress(f)}:${f.remotePort}: cannot listen on ${listenAddress(f)}: ${why}`));
    });
    server.listen({ host: f.bind, port: f.localPort }, () => {
      server.removeAllListeners("error");
      server.on("error", () => {});
      resolve();
    });
  });
}

/** One local connection: a tunnel stream to the remote port, bytes both ways with backpressure and half-close. */
function forward(conn: AgentConn, f: PortForward, socket: Socket, sockets: Set<Socket>, say: (line: string) => void): void {
  sockets.add(socket);
  socket.once("close", () => sockets.delete(socket));
  // Until the stream is open nothing reads the socket, so what the client sends waits in it.
  socket.on("error", () => {});
  conn.openStream({ service: "tcp", port: f.remotePort }).then(
    ({ stream }) => {
      if (socket.destroyed) return stream.destroy();
      splice(socket, stream);
    },
    (err: Error) => {
      say(`${listenAddress(f)} → workspace port ${f.remotePort}: cannot reach the agent (${err.message}); closed the connection`);
      socket.destroy();
    },
  );
}

/** Both directions; each side's EOF is passed on while the other keeps flowing; a failure tears down both. */
function splice(socket: Socket, stream: Duplex): void {
  stream.on("error", () => {});
  let finished = 0;
  let over = false;
  const done = (err?: Error | null) => {
    if (over || (!err && ++finished < 2)) return;
    over = true;
    socket.destroy();
    stream.destroy();
  };
  pipeline(socket, stream, done);
  pipeline(stream, socket, done);
}
