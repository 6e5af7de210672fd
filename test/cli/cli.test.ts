// The `coder` CLI as a user runs it, against a server on its own database.
import { describe, expect, it } from "vitest";
import { runCli, tempConfigDir } from "../helpers/binary.js";
import { closedPort } from "../helpers/net.js";
import { createFirstUser, DEFAULT_PASSWORD, startTestServer } from "../helpers/coderd.js";

describe("coder CLI", () => {
  it("logs in with a password, manages users and tokens, logs out", async () => {
    const srv = await startTestServer();
    await createFirstUser(srv);
    const env = { CODER_CONFIG_DIR: tempConfigDir() };

    const notYet = await runCli(["whoami"], env);
    expect(notYet.code).toBe(1);
    expect(notYet.stderr).toBe("error: You are not logged in. Try running `coder login <url>`.\n");

    const bad = await runCli(["login", srv.url, "--email", "owner@example.com", "--password", "wrong-password"], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe("error: Incorrect email or password.\n");

    const login = await runCli(["login", srv.url, "--email", "owner@example.com", "--password", DEFAULT_PASSWORD], env);
    expect(login.code).toBe(0);
    expect(login.stdout).toBe("Welcome to Coder, owner! You're authenticated.\n");

    const created = await runCli(["users", "create", "-e", "dev@example.com", "-u", "dev"], env);
    expect(created.code).toBe(0);
    const generated = /Password: (\S+)/.exec(created.stdout)![1]!;
    // The generated password works.
    await srv.anonymous().loginWithPassword("dev@example.com", generated);

    const dup = await runCli(["users", "create", "-e", "dev@example.com", "-u", "dev2", "-p", "long-enough-1"], env);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toBe("error: A user with this email already exists. (email: is already in use)\n");

    const invalid = await runCli(["users", "create", "-e", "not-an-email", "-u", "-bad-", "-p", "short"], env);
    expect(invalid.code).toBe(1);
    expect(invalid.stderr.split("\n")[0]).toMatch(/^error: Invalid request body\. \(.*email: .*username: .*password: .*\)$/);

    const show = await runCli(["users", "show", "dev", "-o", "json"], env);
    expect(JSON.parse(show.stdout)).toMatchObject({ username: "dev", status: "active" });
    expect((await runCli(["users", "suspend", "dev"], env)).stdout).toBe("User dev is now suspended.\n");
    const listed = await runCli(["users", "list", "--search", "status:suspended"], env);
    expect(listed.stdout.split("\n")[1]).toMatch(/^dev\s+dev@example\.com\s+\S+ \S+\s+suspended\s+member$/);
    expect((await runCli(["users", "activate", "dev"], env)).stdout).toBe("User dev is now active.\n");
    const missing = await runCli(["users", "show", "nobody"], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe("error: Resource not found or you do not have access to this resource.\n");

    const token = (await runCli(["tokens", "create", "--name", "ci", "--lifetime", "2h"], env)).stdout.trim();
    const viaToken = await runCli(["whoami", "--url", srv.url, "--token", token, "-o", "json"], {});
    expect(JSON.parse(viaToken.stdout)).toMatchObject({ username: "owner" });
    const viaEnv = await runCli(["whoami"], { CODER_URL: srv.url, CODER_SESSION_TOKEN: token });
    expect(viaEnv.stdout).toContain("authenticated as owner");
    const tokens = JSON.parse((await runCli(["tokens", "list", "-o", "json"], env)).stdout) as Array<{ token_name: string; lifetime_seconds: number }>;
    expect(tokens).toEqual([expect.objectContaining({ token_name: "ci", lifetime_seconds: 7200 })]);
    const tooLong = await runCli(["tokens", "create", "--lifetime", "9999d"], env);
    expect(tooLong.code).toBe(1);
    expect(tooLong.stderr).toMatch(/^error: Validation failed\. \(lifetime_seconds: must be at most/);
    expect((await runCli(["tokens", "remove", "ci"], env)).stdout).toBe("Token ci deleted.\n");
    const revoked = await runCli(["whoami", "--url", srv.url, "--token", token], {});
    expect(revoked.code).toBe(1);
    expect(revoked.stderr).toMatch(/^error: Invalid API key: /);

    const badOutput = await runCli(["users", "list", "-o", "yaml"], env);
    expect(badOutput.code).toBe(1);
    expect(badOutput.stderr).toBe('error: -o/--output must be "table" or "json", not "yaml"\n');

    const out = await runCli(["logout"], env);
    expect(out.code).toBe(0);
    expect((await runCli(["whoami"], env)).code).toBe(1);
  });

  it("reports an unreachable deployment in one line", async () => {
    const port = await closedPort();
    const r = await runCli(["whoami"], { CODER_URL: `http://127.0.0.1:${port}`, CODER_SESSION_TOKEN: "abcdefghij-abcdefghijklmnopqrstuv" });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`error: Cannot reach http://127.0.0.1:${port}: ECONNREFUSED\n`);
  });

  it("fails on unknown commands and flags with usage help", async () => {
    const r = await runCli(["users", "frobnicate"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("unknown command 'frobnicate'");
  });
});
