// Token lookups are cached per process; every change that affects them reaches every replica.
import { describe, expect, it } from "vitest";
import { AUTH_INVALIDATE_CHANNEL } from "../../src/coderd/index.js";
import { Client, isCoderSDKError } from "../../src/codersdk/index.js";
import { createFirstUser, createUserWithRoles, startTestServer, type TestServer } from "../helpers/coderd.js";

/** Resolves when the replica has received the next invalidation for the user. */
async function nextInvalidation(srv: TestServer, userId: string): Promise<void> {
  let done!: () => void;
  const got = new Promise<void>((res) => (done = res));
  const unsubscribe = await srv.db.pubsub.subscribe(AUTH_INVALIDATE_CHANNEL, { onMessage: (p) => p === userId && done() });
  return got.finally(unsubscribe);
}

const as = (srv: TestServer, token: string) => new Client(srv.url, { sessionToken: token });

describe("auth cache across replicas", () => {
  it("suspension, token deletion and role changes on one replica take effect on the other", async () => {
    const a = await startTestServer();
    const b = await startTestServer({ databaseUrl: a.databaseUrl });
    const { client: owner } = await createFirstUser(a);
    const bob = await createUserWithRoles(a, owner, "bob");
    const token = (await bob.client.createToken("me", { token_name: "ci" })).key;
    // Warm replica B's cache.
    expect((await as(b, token).user("me")).roles).toEqual([]);

    let seen = nextInvalidation(b, bob.userId);
    await owner.updateUserRoles("bob", ["auditor"]);
    await seen;
    expect((await as(b, token).user("me")).roles.map((r) => r.name)).toEqual(["auditor"]);

    seen = nextInvalidation(b, bob.userId);
    await owner.updateUserStatus("bob", "suspend");
    await seen;
    expect(isCoderSDKError(await as(b, token).user("me").catch((e: unknown) => e), 401)).toBe(true);

    seen = nextInvalidation(b, bob.userId);
    await owner.updateUserStatus("bob", "activate");
    await seen;
    expect((await as(b, token).user("me")).username).toBe("bob");

    const key = await bob.client.tokenByName("me", "ci");
    seen = nextInvalidation(b, bob.userId);
    await bob.client.deleteAPIKey("me", key.id);
    await seen;
    expect(isCoderSDKError(await as(b, token).user("me").catch((e: unknown) => e), 401)).toBe(true);
  });

  it("the replica that made the change never answers from a stale entry", async () => {
    const srv = await startTestServer();
    const { client: owner } = await createFirstUser(srv);
    const bob = await createUserWithRoles(srv, owner, "bob");
    await bob.client.user("me");
    await owner.updateUserStatus("bob", "suspend");
    // No waiting: the change cleared this process before it answered.
    expect(isCoderSDKError(await bob.client.user("me").catch((e: unknown) => e), 401)).toBe(true);
  });
});
