// SSH agent forwarding (ssh -A): a unix socket in a private directory, named by SSH_AUTH_SOCK in
// the session; each connection to it becomes an auth-agent@openssh.com channel to the client,
// whose agent then answers (so git over ssh in the workspace uses the user's local keys).
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream";
import type { Channel, Connection } from "ssh2";
import type { Scope } from "./scope.js";

// ssh2's server opens only forwarded-tcpip, x11 and streamlocal channels through its API; its
// protocol layer can send the auth-agent open, and the connection's channel manager then treats
// the reply like any channel it opened (as the API's own openChannel does). Window and packet
// sizes are ssh2's defaults.
interface Internals {
  _chanMgr: { add(cb: ((err: Error | undefined, ch: Channel) => void) & { type?: string }): number; remove(id: number): void };
  _protocol: { openssh_authAgent(chan: number, window: number, packetSize: number): void };
}
const MAX_WINDOW = 2 * 1024 * 1024;
const PACKET_SIZE = 32 * 1024;

function openAgentChannel(conn: Connection, cb: (err: Error | undefined, ch: Channel) => void): void {
  const internals = conn as unknown as Internals;
  const wrapper = Object.assign((err: Error | undefined, ch: Channel) => cb(err, ch), { type: "auth-agent@openssh.com" });
  const id = internals._chanMgr.add(wrapper);
  if (id === -1) return cb(new Error("no free channels"), undefined as unknown as Channel);
  internals._protocol.openssh_authAgent(id, MAX_WINDOW, PACKET_SIZE);
}

/** Starts the socket for a session; resolves with its path. It goes away with the scope. */
export async function forwardAgent(conn: Connection, scope: Scope, warn: (...a: unknown[]) => void): Promise<string> {
  // mkdtemp makes the directory 0700: only this user can reach the agent through it.
  const dir = await mkdtemp(join(tmpdir(), "coder-ssh-agent-"));
  const path = join(dir, "agent.sock");
  const sockets = new Set<Socket>();
  const srv = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    openAgentChannel(conn, (err, channel) => {
      if (err) {
        warn({ err: err.message }, "ssh: the client refused an agent channel");
        return socket.destroy();
      }
      pipeline(socket, channel, socket, () => {});
    });
  });
  scope.defer(() => {
    srv.close();
    for (const s of sockets) s.destroy();
    void rm(dir, { recursive: true, force: true });
  });
  await new Promise<void>((resolve, reject) => {
    srv.once("error", reject);
    srv.listen(path, () => resolve());
  });
  return path;
}
