import { describe, expect, it } from "vitest";
import { isCoderSDKError } from "../../src/codersdk/index.js";
import { createFirstUser, createUserWithRoles, DEFAULT_PASSWORD, startTestServer } from "../helpers/coderd.js";

describe("first user and login", () => {
  it("creates the first user once, as owner of the default organization", async () => {
    const srv = await startTestServer();
    const anon = srv.anonymous();
    expect(await anon.hasFirstUser()).toBe(false);
    const first = await createFirstUser(srv);
    expect(await anon.hasFirstUser()).toBe(true);
    const me = await first.client.user("me");
    expect(me.username).toBe("owner");
    expect(me.roles.map((r) => r.name)).toEqual(["owner"]);
    expect(me.organization_ids).toEqual([first.organizationId]);
    const orgs = await first.client.organizations();
    expect(orgs).toHaveLength(1);
    expect(orgs[0]).toMatchObject({ name: "coder", is_default: true });

    const again = await anon
      .createFirstUser({ email: "x@example.com", username: "x", password: DEFAULT_PASSWORD })
      .catch((e: unknown) => e);
    expect(isCoderSDKError(again, 409)).toBe(true);
    expect((await first.client.users()).count).toBe(1);
  });

  it("creates exactly one first user when many race", async () => {
    const srv = await startTestServer();
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) =>
        srv.anonymous().createFirstUser({ email: `u${i}@example.com`, username: `u${i}`, password: DEFAULT_PASSWORD }),
      ),
    );
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    for (const r of results) if (r.status === "rejected") expect(isCoderSDKError(r.reason, 409)).toBe(true);
    expect(await srv.db.store.countUsers()).toBe(1);
  });

  it("gives the same generic error for a wrong password and an unknown email", async () => {
    const srv = await startTestServer();
    await createFirstUser(srv);
    const anon = srv.anonymous();
    const wrong = (await anon.loginWithPassword("owner@example.com", "not-the-password").catch((e: unknown) => e)) as Error;
    const unknown = (await anon.loginWithPassword("nobody@example.com", "not-the-password").catch((e: unknown) => e)) as Error;
    expect(isCoderSDKError(wrong, 401)).toBe(true);
    expect(isCoderSDKError(unknown, 401)).toBe(true);
    expect(wrong.message).toBe(unknown.message);
    expect(wrong.message).toBe("Incorrect email or password.");
  });

  it("logs in with the session cookie and logs out", async () => {
    const srv = await startTestServer();
    await createFirstUser(srv);
    const res = await fetch(`${srv.url}/api/v2/users/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: "owner@example.com", password: DEFAULT_PASSWORD }),
    });
    expect(res.status).toBe(201);
    const cookie = res.headers.get("set-cookie")!;
    expect(cookie).toMatch(/^coder_session_token=[A-Za-z0-9]{10}-[A-Za-z0-9]{22}; Path=\/; HttpOnly; SameSite=Lax/);
    const pair = cookie.split(";")[0]!;
    const me = await fetch(`${srv.url}/api/v2/users/me`, { headers: { cookie: pair } });
    expect(me.status).toBe(200);
    const out = await fetch(`${srv.url}/api/v2/users/logout`, { method: "POST", headers: { cookie: pair } });
    expect(out.status).toBe(200);
    expect(out.headers.get("set-cookie")).toContain("Max-Age=0");
    const after = await fetch(`${srv.url}/api/v2/users/me`, { headers: { cookie: pair } });
    expect(after.status).toBe(401);
  });
});

describe("users", () => {
  it("searches and paginates", async () => {
    const srv = await startTestServer();
    const { client: owner } = await createFirstUser(srv);
    for (let i = 0; i < 12; i++) await owner.createUser({ email: `dev${i}@example.com`, username: `dev${i}`, password: DEFAULT_PASSWORD });
    await owner.createUser({ email: "ops@corp.example", username: "ops", login_type: "none" });

    const page1 = await owner.users({ q: "dev", limit: 5 });
    expect(page1.count).toBe(12);
    expect(page1.users.map((u) => u.username)).toEqual(["dev0", "dev1", "dev2", "dev3", "dev4"]);
    const page2 = await owner.users({ q: "dev", limit: 5, offset: 5 });
    expect(page2.users.map((u) => u.username)).toEqual(["dev5", "dev6", "dev7", "dev8", "dev9"]);
    const after = await owner.users({ q: "dev", limit: 5, after_id: page1.users[4]!.id });
    expect(after.users.map((u) => u.username)).toEqual(page2.users.map((u) => u.username));

    expect((await owner.users({ q: "corp.example" })).users.map((u) => u.username)).toEqual(["ops"]);
    expect((await owner.users({ q: "role:owner" })).users.map((u) => u.username)).toEqual(["owner"]);
    await owner.updateUserStatus("dev3", "suspend");
    expect((await owner.users({ q: "status:suspended" })).users.map((u) => u.username)).toEqual(["dev3"]);
    expect((await owner.users({ q: "login_type:none" })).users.map((u) => u.username)).toEqual(["ops"]);
  });

  it("suspending a user stops their sessions and tokens at once; activating restores them", async () => {
    const srv = await startTestServer();
    const { client: owner } = await createFirstUser(srv);
    const bob = await createUserWithRoles(srv, owner, "bob");
    const token = (await bob.client.createToken("me", { token_name: "ci" })).key;
    const viaToken = srv.anonymous();
    viaToken.sessionToken = token;
    expect((await viaToken.user("me")).username).toBe("bob");

    await owner.updateUserStatus("bob", "suspend");
    for (const c of [bob.client, viaToken]) {
      const err = await c.user("me").catch((e: unknown) => e);
      expect(isCoderSDKError(err, 401)).toBe(true);
    }
    const login = await srv.anonymous().loginWithPassword("bob@example.com", DEFAULT_PASSWORD).catch((e: unknown) => e);
    expect(isCoderSDKError(login, 401)).toBe(true);

    await owner.updateUserStatus("bob", "activate");
    expect((await viaToken.user("me")).username).toBe("bob");
  });

  it("changes a password: the old one is required for oneself, other sessions end", async () => {
    const srv = await startTestServer();
    const { client: owner } = await createFirstUser(srv);
    const bob = await createUserWithRoles(srv, owner, "bob");
    const otherSession = srv.anonymous();
    otherSession.sessionToken = (await otherSession.loginWithPassword("bob@example.com", DEFAULT_PASSWORD)).session_token;

    const noOld = await bob.client.updateUserPassword("me", { password: "a-new-password" }).catch((e: unknown) => e);
    expect(isCoderSDKError(noOld, 400)).toBe(true);
    expect((noOld as { validations: unknown[] }).validations).toEqual([{ field: "old_password", detail: expect.any(String) }]);
    const wrongOld = await bob.client.updateUserPassword("me", { old_password: "nope-nope", password: "a-new-password" }).catch((e: unknown) => e);
    expect(isCoderSDKError(wrongOld, 400)).toBe(true);

    await bob.client.updateUserPassword("me", { old_password: DEFAULT_PASSWORD, password: "a-new-password" });
    expect((await bob.client.user("me")).username).toBe("bob");
    expect(isCoderSDKError(await otherSession.user("me").catch((e: unknown) => e), 401)).toBe(true);
    await srv.anonymous().loginWithPassword("bob@example.com", "a-new-password");

    // An admin resets it without the old one.
    await owner.updateUserPassword("bob", { password: "admin-chosen-1" });
    await srv.anonymous().loginWithPassword("bob@example.com", "admin-chosen-1");
  });

  it("assigns site roles within what the caller may grant", async () => {
    const srv = await startTestServer();
    const { client: owner } = await createFirstUser(srv);
    const admin = await createUserWithRoles(srv, owner, "uadmin", ["user-admin"]);
    const carol = await createUserWithRoles(srv, owner, "carol");
    const updated = await admin.client.updateUserRoles("carol", ["template-admin", "auditor"]);
    expect(updated.roles.map((r) => r.name).sort()).toEqual(["auditor", "template-admin"]);
    const escalate = await admin.client.updateUserRoles("carol", ["owner"]).catch((e: unknown) => e);
    expect(isCoderSDKError(escalate, 403)).toBe(true);
    const self = await carol.client.updateUserRoles("carol", ["owner"]).catch((e: unknown) => e);
    expect(isCoderSDKError(self, 400)).toBe(true);
    const bad = await owner.updateUserRoles("carol", ["wizard"]).catch((e: unknown) => e);
    expect(isCoderSDKError(bad, 400)).toBe(true);
    expect((await owner.userRoles("carol")).roles.sort()).toEqual(["auditor", "template-admin"]);
  });
});
