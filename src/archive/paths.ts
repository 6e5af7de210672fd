// Entry names and symlink targets: everything that decides where a byte lands on disk.
// Backslashes count as separators in every format: the provisioner may run on Windows, and
// reading them one way everywhere means validation sees the path the filesystem will.
import { ArchiveError } from "./errors.js";

/** Longer names than any filesystem accepts are refused before they reach one. */
export const MAX_NAME_BYTES = 4096;
/**
 * Far deeper than any template, and it bounds the directories an archive can imply: 10,000
 * entries of 2,000 distinct levels each would otherwise cost millions of nodes to validate.
 */
export const MAX_DEPTH = 64;

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });
const lossyUtf8 = new TextDecoder("utf-8");

/**
 * Decodes a stored name. Invalid UTF-8 is refused rather than replaced: U+FFFD substitution
 * would make two different stored names collide, and the name on disk would not be the name
 * that was validated.
 */
export function decodeName(bytes: Uint8Array): string {
  return decodeText(bytes, "name", lossyName(bytes));
}

/** Like decodeName, for other text (a link target, a pax record) belonging to `entry`. */
export function decodeText(bytes: Uint8Array, what: string, entry?: string): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw new ArchiveError(`${what} is not valid UTF-8`, entry);
  }
}

/** For error messages only. */
export function lossyName(bytes: Uint8Array): string {
  return lossyUtf8.decode(bytes);
}

const DRIVE_LETTER = /^[A-Za-z]:/;

function isAbsolute(slashed: string): boolean {
  return slashed.startsWith("/") || DRIVE_LETTER.test(slashed);
}

/** Walks `segments` from `base`; undefined when a ".." climbs above the root. */
function resolveLexically(base: string[], segments: string[]): string[] | undefined {
  const out = [...base];
  for (const seg of segments) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") {
      if (out.length === 0) return undefined;
      out.pop();
    } else {
      out.push(seg);
    }
  }
  return out;
}

/**
 * The cleaned, root-relative path of an entry ("a/b", no "./", no trailing slash), or "" for the
 * root itself (tar archives made with `tar -C dir .` start with "./"). Throws for anything that
 * could land outside the root.
 */
export function normalizeEntryPath(name: string): string {
  if (name === "") throw new ArchiveError("empty name", name);
  if (name.includes("\0")) throw new ArchiveError("name contains a NUL byte", name);
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) throw new ArchiveError(`name is longer than ${MAX_NAME_BYTES} bytes`, name);
  const slashed = name.replaceAll("\\", "/");
  if (isAbsolute(slashed)) throw new ArchiveError("absolute path", name);
  const segments = slashed.split("/");
  if (segments.includes("..")) {
    // Even a ".." that stays inside ("a/../b") is refused: nothing legitimate needs it, and
    // resolving it would mean trusting "a" to be a plain directory.
    if (resolveLexically([], segments) === undefined) throw new ArchiveError("path escapes the archive root", name);
    throw new ArchiveError('path contains a ".." segment', name);
  }
  const clean = segments.filter((s) => s !== "" && s !== ".");
  if (clean.length > MAX_DEPTH) throw new ArchiveError(`path is more than ${MAX_DEPTH} levels deep`, name);
  return clean.join("/");
}

export function parentSegments(path: string): string[] {
  const segs = path.split("/");
  segs.pop();
  return segs;
}

/**
 * Checks a symlink target on its own (the entry tree later follows other links on the way) and
 * returns it with backslashes made into slashes. `name` is the entry's stored name, for errors.
 */
export function checkLinkTarget(linkPath: string, target: string, name: string): string {
  if (target === "") throw new ArchiveError("symlink has an empty target", name);
  if (target.includes("\0")) throw new ArchiveError("symlink target contains a NUL byte", name);
  if (Buffer.byteLength(target) > MAX_NAME_BYTES) throw new ArchiveError(`symlink target is longer than ${MAX_NAME_BYTES} bytes`, name);
  const slashed = target.replaceAll("\\", "/");
  const quoted = JSON.stringify(target);
  if (isAbsolute(slashed)) throw new ArchiveError(`symlink target ${quoted} is an absolute path`, name);
  if (resolveLexically(parentSegments(linkPath), slashed.split("/")) === undefined) {
    throw new ArchiveError(`symlink target ${quoted} escapes the archive root`, name);
  }
  return slashed;
}

/**
 * The key under which two paths collide on a case-insensitive, normalisation-insensitive
 * filesystem (macOS, Windows). Approximate by design; it only has to catch honest mistakes and
 * the symlink games that would otherwise slip past a case-sensitive check.
 */
export function foldPath(path: string): string {
  return path.normalize("NFC").toLowerCase();
}
