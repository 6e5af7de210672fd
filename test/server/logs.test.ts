// Server logs: one JSON line per request with its id, and never a secret that passed through.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli, startServerProcess, tempConfigDir } from "../helpers/binary.js";

describe("server logs", () => {
  it("writes JSON lines with request ids and no passwords or tokens", async () => {
    const dir = tempConfigDir();
    const logFile = join(dir, "coder.json.log");
    const srv = await startServerProcess(["--config-dir", dir, "--log-json", logFile]);
    const cli = { CODER_CONFIG_DIR: tempConfigDir() };
    const ownerPassword = "owner-Pa55word-zzq";
    const devPassword = "dev-Pa55word-qqz";
    await runCli(["login", srv.url, "--first-user-username", "admin", "--first-user-email", "a@example.com", "--first-user-password", ownerPassword], cli);
    await runCli(["users", "create", "-e", "dev@example.com", "-u", "dev", "-p", devPassword], cli);
    const token = (await runCli(["tokens", "create", "--name", "ci"], cli)).stdout.trim();
    expect(token).toMatch(/^[A-Za-z0-9]{10}-[A-Za-z0-9]{22}$/);
    const res = await fetch(`${srv.url}/api/v2/users/me?token=${token}`, { headers: { "Coder-Session-Token": token } });
    expect(res.status).toBe(200);
    const requestId = res.headers.get("x-request-id");
    await fetch(`${srv.url}/api/v2/users/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: "dev@example.com", password: "wrong-Pa55word-xx" }),
    });
    const session = readFileSync(join(cli.CODER_CONFIG_DIR, "session"), "utf8");
    expect(await srv.stop()).toBe(0);

    const text = readFileSync(logFile, "utf8");
    const lines = text.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    const requests = lines.filter((l) => l.msg === "request");
    expect(requests.length).toBeGreaterThanOrEqual(6);
    for (const r of requests) {
      expect(r.request_id).toMatch(/^[0-9a-f-]{36}$/);
      expect(typeof r.method).toBe("string");
      expect(typeof r.status).toBe("number");
      // Route patterns, never raw paths with ids or query strings.
      expect(String(r.route)).not.toContain("?");
    }
    expect(requests.some((r) => r.request_id === requestId && r.route === "/api/v2/users/:user" && r.status === 200)).toBe(true);
    for (const secret of [ownerPassword, devPassword, "wrong-Pa55word-xx", token, token.split("-")[1]!, session, session.split("-")[1]!]) {
      expect(text).not.toContain(secret);
    }
  });
});
