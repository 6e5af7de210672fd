// Peer identities: ed25519 key pairs in libsodium's layout, the same ones the Noise sessions
// (@hyperswarm/secret-stream) use, so one key pair both authenticates to the relay and pins the
// end-to-end session. Signing and verifying go through Node's crypto (OpenSSL); keys travel as
// unpadded base64url (43 characters).
import { createPrivateKey, createPublicKey, type KeyObject, sign as cryptoSign, verify as cryptoVerify } from "node:crypto";
import { SecretStream } from "./cjs.js";

export interface KeyPair {
  /** 32-byte ed25519 public key. */
  publicKey: Buffer;
  /** 64 bytes: the 32-byte seed followed by the 32-byte public key (libsodium layout). */
  secretKey: Buffer;
}

export const PUBLIC_KEY_LENGTH = 32;
export const SECRET_KEY_LENGTH = 64;
export const SIGNATURE_LENGTH = 64;
export const ENCODED_KEY_LENGTH = 43;

/** A fresh key pair, or the one derived from a 32-byte seed. */
export function generateKeyPair(seed?: Buffer): KeyPair {
  if (seed !== undefined && seed.length !== 32) {
    throw new Error(`key seed must be 32 bytes, got ${seed.length}`);
  }
  const kp = SecretStream.keyPair(seed);
  return { publicKey: Buffer.from(kp.publicKey), secretKey: Buffer.from(kp.secretKey) };
}

/** A public key as 43 characters of unpadded base64url. */
export function encodeKey(publicKey: Uint8Array): string {
  if (publicKey.length !== PUBLIC_KEY_LENGTH) {
    throw new Error(`public key must be ${PUBLIC_KEY_LENGTH} bytes, got ${publicKey.length}`);
  }
  return Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.byteLength).toString("base64url");
}

const BASE64URL_43 = /^[A-Za-z0-9_-]{43}$/;

/** Parses encodeKey's form; throws naming what is wrong (type, length, alphabet, non-canonical). */
export function decodeKey(s: string): Buffer {
  if (typeof s !== "string") throw new Error(`public key must be a string, got ${typeof s}`);
  if (s.length !== ENCODED_KEY_LENGTH) {
    throw new Error(
      `public key must be ${ENCODED_KEY_LENGTH} base64url characters (${PUBLIC_KEY_LENGTH} bytes), got ${s.length} characters`,
    );
  }
  if (!BASE64URL_43.test(s)) {
    throw new Error("public key must be unpadded base64url (A-Z a-z 0-9 - _)");
  }
  const key = Buffer.from(s, "base64url");
  // 43 characters carry 258 bits: the last character's two spare bits must be zero, or two
  // strings would name the same key.
  if (key.length !== PUBLIC_KEY_LENGTH || key.toString("base64url") !== s) {
    throw new Error("public key is not canonical base64url");
  }
  return key;
}

const privateKeys = new WeakMap<KeyPair, KeyObject>();

function privateKeyOf(keyPair: KeyPair): KeyObject {
  let key = privateKeys.get(keyPair);
  if (key) return key;
  const { publicKey, secretKey } = keyPair;
  if (publicKey?.length !== PUBLIC_KEY_LENGTH) {
    throw new Error(`key pair's public key must be ${PUBLIC_KEY_LENGTH} bytes`);
  }
  if (secretKey?.length !== SECRET_KEY_LENGTH) {
    throw new Error(`key pair's secret key must be ${SECRET_KEY_LENGTH} bytes (seed || public key)`);
  }
  if (!secretKey.subarray(32).equals(publicKey)) {
    throw new Error("key pair's secret key does not belong to its public key");
  }
  key = createPrivateKey({
    key: {
      kty: "OKP",
      crv: "Ed25519",
      d: secretKey.subarray(0, 32).toString("base64url"),
      x: publicKey.toString("base64url"),
    },
    format: "jwk",
  });
  privateKeys.set(keyPair, key);
  return key;
}

/** An ed25519 signature (64 bytes) of msg. */
export function sign(keyPair: KeyPair, msg: Uint8Array): Buffer {
  return cryptoSign(null, msg, privateKeyOf(keyPair));
}

/** Whether sig is publicKey's ed25519 signature of msg. Never throws on bad input: false. */
export function verify(publicKey: Uint8Array, msg: Uint8Array, sig: Uint8Array): boolean {
  if (publicKey?.length !== PUBLIC_KEY_LENGTH || sig?.length !== SIGNATURE_LENGTH) return false;
  try {
    const key = createPublicKey({
      key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(publicKey).toString("base64url") },
      format: "jwk",
    });
    return cryptoVerify(null, msg, key, sig);
  } catch {
    return false;
  }
}

/** Whether two public keys are the same key. */
export function keysEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}
