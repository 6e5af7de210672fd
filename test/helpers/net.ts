import { readFileSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";

/**
 * A loopback port that nothing listens on (bound, then released). It is taken below the kernel's
 * ephemeral range, which every `listen(0)` and outgoing connection of the parallel test files
 * draws from, so none of them can take it meanwhile (a released ephemeral port once came back as
 * another test's HTTP server).
 */
export async function closedPort(): Promise<number> {
  const low = ephemeralLow();
  const lowest = Math.min(10_000, low - 1000);
  for (;;) {
    const port = lowest + Math.floor(Math.random() * (low - lowest));
    if (await bindable(port)) return port;
  }
}

function ephemeralLow(): number {
  try {
    const low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    if (low > 2000) return low;
  } catch {
    // not Linux: the IANA default
  }
  return 49152;
}

function bindable(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = createServer();
    s.once("error", () => res(false));
    s.listen(port, "127.0.0.1", () => s.close(() => res(true)));
  });
}

/** A TCP proxy to a loopback port that records every byte passing in either direction. */
export async function captureProxy(targetPort: number): Promise<{ port: number; captured(): Buffer; cut(): number; close(): Promise<void> }> {
  const chunks: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(targetPort, "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on("data", (d: Buffer) => chunks.push(Buffer.from(d)));
    upstream.on("data", (d: Buffer) => chunks.push(Buffer.from(d)));
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((res) => server.listen(0, "127.0.0.1", res));
  return {
    port: (server.address() as { port: number }).port,
    captured: () => Buffer.concat(chunks),
    /** Drops every connection through it, as a load balancer that restarts would; returns how many. */
    cut: () => {
      const n = sockets.size;
      for (const s of sockets) s.destroy();
      return n;
    },
    close: () =>
      new Promise<void>((res) => {
        for (const s of sockets) s.destroy();
        server.close(() => res());
      }),
  };
}
