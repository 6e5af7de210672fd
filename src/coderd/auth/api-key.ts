// Session and API tokens: "<id>-<secret>". The id is the lookup key; only a SHA-256 of the
// secret is stored (the secret is random and long, so a slow hash adds nothing), and it is
// compared in constant time.
import { createHash, randomInt, timingSafeEqual } from "node:crypto";

const ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
export const KEY_ID_LENGTH = 10;
export const KEY_SECRET_LENGTH = 22;
const TOKEN_RE = new RegExp(`^([A-Za-z0-9]{${KEY_ID_LENGTH}})-([A-Za-z0-9]{${KEY_SECRET_LENGTH}})$`);

function randomString(n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) s += ALPHABET[randomInt(ALPHABET.length)];
  return s;
}

export function hashSecret(secret: string): Buffer {
  return createHash("sha256").update(secret).digest();
}

export interface GeneratedKey {
  id: string;
  secret: string;
  hashedSecret: Buffer;
  token: string;
}

export function generateApiKey(): GeneratedKey {
  const id = randomString(KEY_ID_LENGTH);
  const secret = randomString(KEY_SECRET_LENGTH);
  return { id, secret, hashedSecret: hashSecret(secret), token: `${id}-${secret}` };
}

/** Splits a presented token; undefined when it is not shaped like one of ours. */
export function parseToken(token: string): { id: string; secret: string } | undefined {
  const m = TOKEN_RE.exec(token);
  return m ? { id: m[1]!, secret: m[2]! } : undefined;
}

export function secretMatches(secret: string, stored: Buffer): boolean {
  const h = hashSecret(secret);
  return h.length === stored.length && timingSafeEqual(h, stored);
}
