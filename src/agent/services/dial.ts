// Port forwarding into the workspace (`coder port-forward`, web apps): a tunnel stream becomes a
// TCP connection to 127.0.0.1:port inside the workspace.
import { connect, type Socket } from "node:net";
import { pipeline, type Duplex } from "node:stream";
import { endStream, ignoreErrors } from "./streams.js";

/** Resolves once both directions are done (or either side failed and both were torn down). */
export function serveTcp(stream: Duplex, port: number): Promise<void> {
  ignoreErrors(stream);
  return new Promise((resolve) => {
    if (stream.destroyed) return resolve();
    // Half-open, so that each side's EOF is passed on while the other direction keeps flowing
    // (a client that sends a request and then shuts down its writing side still gets the reply).
    const socket: Socket = connect({ host: "127.0.0.1", port, allowHalfOpen: true });
    const onEarlyClose = () => socket.destroy();
    stream.once("close", onEarlyClose);
    const onConnectError = () => {
      // Refused (nothing listens) or failed before connecting: the peer sees its stream end.
      stream.off("close", onEarlyClose);
      endStream(stream);
      resolve();
    };
    socket.once("error", onConnectError);
    socket.once("connect", () => {
      stream.off("close", onEarlyClose);
      socket.off("error", onConnectError);
      let finished = 0;
      let over = false;
      const done = (err?: Error | null) => {
        if (over || (!err && ++finished < 2)) return;
        over = true;
        // An error on either side tears down both; after two clean ends this only releases a
        // duplex that would otherwise sit half-open.
        stream.destroy();
        socket.destroy();
        resolve();
      };
      pipeline(stream, socket, done);
      pipeline(socket, stream, done);
    });
  });
}
