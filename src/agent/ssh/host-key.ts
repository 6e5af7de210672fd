// The agent's SSH host key: generated once per workspace and reused, so that clients which pinned
// its fingerprint keep trusting the workspace across agent restarts.
import { createHash } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import ssh2, { type ParsedKey } from "ssh2";

const { generateKeyPairSync, parseKey } = ssh2.utils;

function parse(privateKeyPem: string | Buffer): ParsedKey {
  const key = parseKey(privateKeyPem);
  if (key instanceof Error) throw new Error(`not a usable SSH private key: ${key.message}`);
  // ssh2 returns an array for files holding several keys; OpenSSH's format holds one.
  const first = Array.isArray(key) ? (key as ParsedKey[])[0] : key;
  if (!first || !first.isPrivateKey()) throw new Error("not an SSH private key");
  return first;
}

/**
 * A new ed25519 host key in OpenSSH's format. ssh2's generator drops a leading zero byte of the
 * public key (about one key in 200 comes out 31 bytes long and unreadable, ssh2's parser says
 * "Malformed OpenSSH private key"), so a key is only returned once it parses.
 */
export function generateHostKey(): string {
  for (;;) {
    const pem = generateKeyPairSync("ed25519", { comment: "coder workspace agent" }).private;
    if (!(parseKey(pem) instanceof Error)) return pem;
  }
}

/**
 * Reads the host key at path, or generates an ed25519 one there (mode 0600). ssh2 generates it
 * with node:crypto and writes it in OpenSSH's own format, which ssh2 (unlike PKCS8) also reads.
 */
export async function loadOrCreateHostKey(path: string): Promise<string> {
  try {
    const pem = await readFile(path, "utf8");
    parse(pem);
    return pem;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const pem = generateHostKey();
  try {
    // "wx": if another agent process created it meanwhile, theirs wins and we read it.
    await writeFile(path, pem, { mode: 0o600, flag: "wx" });
    return pem;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    return readFile(path, "utf8");
  }
}

/** The public half as an authorized_keys / known_hosts entry: "ssh-ed25519 AAAA…". */
export function hostPublicKey(privateKeyPem: string | Buffer): string {
  const key = parse(privateKeyPem);
  return `${key.type} ${key.getPublicSSH().toString("base64")}`;
}

/** "SHA256:…" exactly as `ssh-keygen -l` and OpenSSH's prompts print it, so clients can pin it. */
export function hostKeyFingerprint(privateKeyPem: string | Buffer): string {
  const digest = createHash("sha256").update(parse(privateKeyPem).getPublicSSH()).digest("base64");
  return `SHA256:${digest.replace(/=+$/, "")}`;
}
