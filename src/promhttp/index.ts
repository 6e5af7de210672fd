// The /metrics endpoint on its own address (CODER_PROMETHEUS_ADDRESS), apart from the API, so it
// can stay on a private interface. Shared by coderd and external provisioner daemons.
import { createServer, type Server } from "node:http";

/** A Prometheus registry, or anything that renders the text exposition format like one. */
export interface MetricsSource {
  metrics(): Promise<string>;
  readonly contentType: string;
}

export interface MetricsEndpoint {
  host: string;
  port: number;
  /** http://host:port/metrics as bound (port 0 gives a free port). */
  url: string;
  close(): Promise<void>;
}

/** Serves GET /metrics on host:port; rejects when the address cannot be bound. */
export function serveMetrics(source: MetricsSource, host: string, port: number): Promise<MetricsEndpoint> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/metrics" || (req.method !== "GET" && req.method !== "HEAD")) {
      res.writeHead(404, { "content-type": "text/plain" }).end("Not found: metrics are served at GET /metrics\n");
      return;
    }
    source.metrics().then(
      (text) => {
        res.writeHead(200, { "content-type": source.contentType });
        res.end(req.method === "HEAD" ? undefined : text);
      },
      (err: unknown) => {
        res.writeHead(500, { "content-type": "text/plain" }).end(`collecting metrics failed: ${(err as Error).message}\n`);
      },
    );
  });
  // Longer than Prometheus' scrape interval, so scrapes reuse their connection.
  server.keepAliveTimeout = 65_000;
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      const addr = server.address() as { address: string; port: number };
      const shown = addr.address.includes(":") ? `[${addr.address}]` : addr.address;
      resolve({
        host: addr.address,
        port: addr.port,
        url: `http://${shown}:${addr.port}/metrics`,
        close: () =>
          new Promise<void>((res) => {
            server.close(() => res());
            server.closeAllConnections();
          }),
      });
    });
  });
}
