// The /metrics endpoint on its own address (CODER_PROMETHEUS_ADDRESS), apart from the API, so it
// can stay on a private interface.
import { createServer, type Server } from "node:http";
import type { CoderdMetrics } from "./metrics.js";

export interface MetricsListener {
  host: string;
  port: number;
  url: string;
  close(): Promise<void>;
}

export function startMetricsListener(metrics: CoderdMetrics, host: string, port: number): Promise<MetricsListener> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/metrics" || (req.method !== "GET" && req.method !== "HEAD")) {
      res.writeHead(404, { "content-type": "text/plain" }).end("Not found: metrics are served at GET /metrics\n");
      return;
    }
    metrics.metrics().then(
      (text) => {
        res.writeHead(200, { "content-type": metrics.contentType });
        res.end(req.method === "HEAD" ? undefined : text);
      },
      (err: unknown) => {
        res.writeHead(500, { "content-type": "text/plain" }).end(`collecting metrics failed: ${(err as Error).message}\n`);
      },
    );
  });
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
