// Invalid configuration: exit non-zero with one line that names the flag or variable.
import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { runCli, tempConfigDir } from "../helpers/binary.js";
import { closedPort } from "../helpers/net.js";

function errorLine(stderr: string): string {
  const lines = stderr.trim().split("\n").filter((l) => l.startsWith("error: "));
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

describe("coder server configuration errors", () => {
  it.each([
    [["--access-url", "not a url"], {}, "--access-url / CODER_ACCESS_URL"],
    [[], { CODER_ACCESS_URL: "ftp://example.com" }, "CODER_ACCESS_URL"],
    [["--http-address", "localhost"], {}, "--http-address / CODER_HTTP_ADDRESS"],
    [[], { CODER_SESSION_DURATION: "forever" }, "CODER_SESSION_DURATION"],
    [["--postgres-url", "mysql://u:secretpw@127.0.0.1/db"], {}, "--postgres-url / CODER_PG_CONNECTION_URL"],
    [[], { CODER_PG_CONNECTION_URL: "::::" }, "CODER_PG_CONNECTION_URL"],
    [["--derp-server-enable=false"], {}, "--derp-server-enable / CODER_DERP_SERVER_ENABLE"],
    [["--derp-config-path", "/nonexistent/derpmap.json"], {}, "--derp-config-path / CODER_DERP_CONFIG_PATH"],
    [[], { CODER_DERP_CONFIG_PATH: "/dev/null" }, "CODER_DERP_CONFIG_PATH"],
    [[], { CODER_BLOCK_DIRECT: "sometimes" }, "CODER_BLOCK_DIRECT"],
    [[], { CODER_DERP_SERVER_RELAY_URL: "10.0.0.1:8080" }, "CODER_DERP_SERVER_RELAY_URL"],
    [[], { CODER_REPLICA_UPDATE_INTERVAL: "0s" }, "CODER_REPLICA_UPDATE_INTERVAL"],
    [[], { CODER_REPLICA_LATENCY_THRESHOLD: "fast" }, "CODER_REPLICA_LATENCY_THRESHOLD"],
  ])("%j %j names %s", async (args, env, name) => {
    const r = await runCli(["--config-dir", tempConfigDir(), "server", ...args], env as Record<string, string>);
    expect(r.code).toBe(1);
    const line = errorLine(r.stderr);
    expect(line).toContain(name);
    expect(r.stderr).not.toContain("secretpw");
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it("refuses a relay URL equal to the access URL, with the seed's reason", async () => {
    const r = await runCli(["--config-dir", tempConfigDir(), "server", "--http-address", "127.0.0.1:0"], {
      CODER_ACCESS_URL: "https://coder.big.corp",
      CODER_DERP_SERVER_RELAY_URL: "https://coder.big.corp/",
    });
    expect(r.code).toBe(1);
    const line = errorLine(r.stderr);
    expect(line).toContain("CODER_DERP_SERVER_RELAY_URL");
    expect(line).toContain("must not equal --access-url / CODER_ACCESS_URL (https://coder.big.corp)");
    expect(line).toContain("the access URL is a load balancer to all replicas");
  });

  it("reports unreachable Postgres without leaking the password", async () => {
    const closed = await closedPort();
    const r = await runCli(["server", "--http-address", "127.0.0.1:0", "--postgres-url", `postgres://coder:hunter2pw@127.0.0.1:${closed}/coder`]);
    expect(r.code).toBe(1);
    const line = errorLine(r.stderr);
    expect(line).toContain("--postgres-url / CODER_PG_CONNECTION_URL");
    expect(line).toContain("connection refused");
    expect(r.stderr).not.toContain("hunter2pw");
  });

  it("reports a port in use before starting anything", async () => {
    const busy = createServer();
    const port = await new Promise<number>((res) => busy.listen(0, "127.0.0.1", () => res((busy.address() as { port: number }).port)));
    try {
      const dir = tempConfigDir();
      const r = await runCli(["--config-dir", dir, "server", "--http-address", `127.0.0.1:${port}`]);
      expect(r.code).toBe(1);
      const line = errorLine(r.stderr);
      expect(line).toContain("--http-address / CODER_HTTP_ADDRESS");
      expect(line).toContain("already in use");
      expect(r.stderr).not.toContain("Using built-in PostgreSQL");
    } finally {
      busy.close();
    }
  });
});
