import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { decodeKey, encodeKey, generateKeyPair, keysEqual, sign, verify } from "./keys.js";

const sodium = createRequire(import.meta.url)("sodium-universal") as {
  crypto_sign_detached(sig: Buffer, msg: Buffer, secretKey: Buffer): void;
  crypto_sign_verify_detached(sig: Buffer, msg: Buffer, publicKey: Buffer): boolean;
};

describe("keys", () => {
  it("generates libsodium-layout ed25519 key pairs", () => {
    const kp = generateKeyPair();
    expect(kp.publicKey).toHaveLength(32);
    expect(kp.secretKey).toHaveLength(64);
    expect(kp.secretKey.subarray(32).equals(kp.publicKey)).toBe(true);
    expect(generateKeyPair().publicKey.equals(kp.publicKey)).toBe(false);
  });

  it("derives the same pair from the same seed", () => {
    const seed = Buffer.alloc(32, 7);
    expect(generateKeyPair(seed).publicKey.equals(generateKeyPair(seed).publicKey)).toBe(true);
    expect(() => generateKeyPair(Buffer.alloc(31))).toThrow(/32 bytes/);
  });

  it("round-trips keys through base64url", () => {
    const { publicKey } = generateKeyPair();
    const s = encodeKey(publicKey);
    expect(s).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(decodeKey(s).equals(publicKey)).toBe(true);
    expect(keysEqual(decodeKey(s), publicKey)).toBe(true);
    expect(() => encodeKey(Buffer.alloc(31))).toThrow(/32 bytes/);
  });

  it("rejects malformed encoded keys, naming the problem", () => {
    const s = encodeKey(generateKeyPair().publicKey);
    expect(() => decodeKey(s.slice(1))).toThrow(/43 base64url characters.*got 42/);
    expect(() => decodeKey(`${s}=`)).toThrow(/got 44/);
    expect(() => decodeKey(`${s.slice(0, 42)}+`)).toThrow(/unpadded base64url/);
    expect(() => decodeKey(`${s.slice(0, 42)}/`)).toThrow(/unpadded base64url/);
    // Last character with non-zero spare bits: decodes to the same bytes as another string.
    expect(() => decodeKey(`${"A".repeat(42)}B`)).toThrow(/not canonical/);
    expect(() => decodeKey(42 as unknown as string)).toThrow(/must be a string/);
  });

  it("signs and verifies, interoperating with libsodium", () => {
    const kp = generateKeyPair();
    const msg = Buffer.from("coder-relay-v1 challenge");
    const sig = sign(kp, msg);
    expect(sig).toHaveLength(64);
    expect(verify(kp.publicKey, msg, sig)).toBe(true);
    expect(sodium.crypto_sign_verify_detached(sig, msg, kp.publicKey)).toBe(true);
    const sodiumSig = Buffer.alloc(64);
    sodium.crypto_sign_detached(sodiumSig, msg, kp.secretKey);
    expect(verify(kp.publicKey, msg, sodiumSig)).toBe(true);
  });

  it("rejects wrong messages, keys and signatures without throwing", () => {
    const kp = generateKeyPair();
    const other = generateKeyPair();
    const msg = Buffer.from("hello");
    const sig = sign(kp, msg);
    expect(verify(kp.publicKey, Buffer.from("hellO"), sig)).toBe(false);
    expect(verify(other.publicKey, msg, sig)).toBe(false);
    const flipped = Buffer.from(sig);
    flipped[10]! ^= 1;
    expect(verify(kp.publicKey, msg, flipped)).toBe(false);
    expect(verify(kp.publicKey, msg, sig.subarray(0, 63))).toBe(false);
    expect(verify(Buffer.alloc(31), msg, sig)).toBe(false);
    expect(verify(Buffer.alloc(32, 0xff), msg, sig)).toBe(false);
  });

  it("refuses to sign with an inconsistent key pair", () => {
    const kp = generateKeyPair();
    const other = generateKeyPair();
    expect(() => sign({ publicKey: other.publicKey, secretKey: kp.secretKey }, Buffer.from("x"))).toThrow(
      /does not belong/,
    );
    expect(() => sign({ publicKey: kp.publicKey, secretKey: kp.secretKey.subarray(0, 32) }, Buffer.from("x"))).toThrow(
      /64 bytes/,
    );
  });
});
