// The real binary on its embedded default: first user through the CLI, data kept across restarts,
// graceful shutdown.
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli, startServerProcess, tempConfigDir } from "../helpers/binary.js";

describe("coder server on embedded Postgres", () => {
  it("creates the first user through the CLI, keeps data across a restart and shuts down cleanly", async () => {
    const serverDir = tempConfigDir();
    const cliDir = tempConfigDir();
    const srv = await startServerProcess(["--config-dir", serverDir]);
    expect(srv.output()).toContain("Using built-in PostgreSQL");
    expect(srv.output()).toContain("CODER_ACCESS_URL is not set");

    const env = { CODER_CONFIG_DIR: cliDir };
    const login = await runCli(
      ["login", srv.url, "--first-user-username", "admin", "--first-user-email", "admin@example.com", "--first-user-password", "correct-horse-1"],
      env,
    );
    expect(login.stderr).toBe("");
    expect(login.code).toBe(0);
    expect(login.stdout).toContain("Welcome to Coder, admin!");
    const session = join(cliDir, "session");
    expect(statSync(session).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(cliDir, "url"), "utf8")).toBe(srv.url);

    const who = await runCli(["whoami"], env);
    expect(who.stdout).toBe(`Coder is running at ${srv.url}, You're authenticated as admin !\n`);
    expect((await runCli(["users", "create", "-e", "dev@example.com", "-u", "dev", "-p", "dev-password-1"], env)).code).toBe(0);
    const list = await runCli(["users", "list", "-o", "json"], env);
    expect(list.code).toBe(0);
    expect((JSON.parse(list.stdout) as Array<{ username: string }>).map((u) => u.username)).toEqual(["admin", "dev"]);

    expect(await srv.stop("SIGTERM")).toBe(0);
    expect(srv.output()).toContain("shutdown complete");
    // Postgres stopped with us: its pid file is gone.
    const pgDir = srv.output().match(/Using built-in PostgreSQL \(([^)]+)\)/)![1]!;
    expect(existsSync(join(pgDir, "data", "postmaster.pid"))).toBe(false);

    // Same config dir: same database, same users; the CLI session still works.
    const again = await startServerProcess(["--config-dir", serverDir]);
    const table = await runCli(["users", "list", "--url", again.url], env);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^USERNAME\s+EMAIL\s+CREATED AT\s+STATUS\s+ROLES\n/);
    expect(table.stdout).toContain("admin@example.com");
    expect(table.stdout).toContain("dev@example.com");
    expect(await again.stop("SIGINT")).toBe(0);
  });

  it("recovers the data directory after the server was killed with SIGKILL", async () => {
    const serverDir = tempConfigDir();
    const srv = await startServerProcess(["--config-dir", serverDir]);
    const env = { CODER_CONFIG_DIR: tempConfigDir() };
    await runCli(["login", srv.url, "--first-user-username", "admin", "--first-user-email", "a@example.com", "--first-user-password", "correct-horse-1"], env);
    await srv.stop("SIGKILL");
    // The orphaned postmaster still holds the data dir; the next start must take it over.
    const again = await startServerProcess(["--config-dir", serverDir]);
    const who = await runCli(["whoami", "--url", again.url], env);
    expect(who.stdout).toContain("authenticated as admin");
    expect(await again.stop()).toBe(0);
  });

  it("finishes an in-flight request before exiting on SIGTERM", async () => {
    const srv = await startServerProcess(["--config-dir", tempConfigDir()]);
    const body = JSON.stringify({ email: "a@example.com", username: "admin", password: "correct-horse-1" });
    await fetch(`${srv.url}/api/v2/users/first`, { method: "POST", headers: { "content-type": "application/json" }, body });
    // A login spends tens of milliseconds hashing; the signal arrives while it is running.
    const inflight = fetch(`${srv.url}/api/v2/users/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: "a@example.com", password: "correct-horse-1" }),
    });
    await new Promise((r) => setTimeout(r, 5));
    srv.proc.kill("SIGTERM");
    const res = await inflight;
    expect(res.status).toBe(201);
    expect(await srv.exited).toBe(0);
  });
});
