import { describe, expect, it } from "vitest";
import { generateApiKey, parseToken, secretMatches } from "./api-key.js";
import { hashPassword, verifyPassword } from "./password.js";

describe("API keys", () => {
  it("round-trips and rejects a wrong secret", () => {
    const k = generateApiKey();
    expect(k.token).toMatch(/^[A-Za-z0-9]{10}-[A-Za-z0-9]{22}$/);
    const parsed = parseToken(k.token)!;
    expect(parsed.id).toBe(k.id);
    expect(secretMatches(parsed.secret, k.hashedSecret)).toBe(true);
    expect(secretMatches(generateApiKey().secret, k.hashedSecret)).toBe(false);
    // Only the hash is kept: it is not the secret.
    expect(k.hashedSecret.toString("utf8")).not.toContain(k.secret);
  });

  it.each(["", "abc", "a".repeat(10), `${"a".repeat(10)}-${"b".repeat(21)}`, `${"a".repeat(10)}-${"b".repeat(21)}!`, `../${"a".repeat(7)}-${"b".repeat(22)}`])(
    "rejects malformed %j",
    (t) => expect(parseToken(t)).toBeUndefined(),
  );
});

describe("passwords", () => {
  it("hashes with a salt and verifies", async () => {
    const a = await hashPassword("correct horse");
    const b = await hashPassword("correct horse");
    expect(a).not.toBe(b);
    expect(a.startsWith("$scrypt$")).toBe(true);
    expect(await verifyPassword("correct horse", a)).toBe(true);
    expect(await verifyPassword("wrong horse", a)).toBe(false);
    expect(await verifyPassword("correct horse", "garbage")).toBe(false);
  });
});
