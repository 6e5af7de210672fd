import { createServer } from "node:net";

/** A loopback port that nothing listens on (bound, then released). */
export function closedPort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}
