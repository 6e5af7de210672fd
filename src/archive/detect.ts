// Format detection by content, never by file name or Content-Type: both come from the uploader.
import { BLOCK, checksumMatches, hasUstarMagic, isZeroBlock } from "./tar-header.js";

export type ArchiveFormat = "tar" | "zip";

export function isGzip(data: Uint8Array): boolean {
  return data.length >= 2 && data[0] === 0x1f && data[1] === 0x8b;
}

function isZip(data: Uint8Array): boolean {
  // A local file header, or the end-of-central-directory record that is all an empty zip holds.
  return data.length >= 4 && data[0] === 0x50 && data[1] === 0x4b && ((data[2] === 3 && data[3] === 4) || (data[2] === 5 && data[3] === 6));
}

/**
 * True for uncompressed tar: ustar magic, a pre-POSIX header whose checksum adds up, or an
 * empty archive (nothing but the two-block end marker, as `tar -cf x.tar -T /dev/null` writes).
 */
export function isTar(data: Uint8Array): boolean {
  if (data.length >= 262 && hasUstarMagic(data)) return true;
  if (data.length < BLOCK) return false;
  const first = data.subarray(0, BLOCK);
  if (isZeroBlock(first)) return data.length >= 2 * BLOCK && isZeroBlock(data.subarray(BLOCK, 2 * BLOCK));
  return checksumMatches(first);
}

/**
 * The archive format of `data`. Gzip is reported as "tar" because a compressed tar is the only
 * gzip payload accepted; listArchive() and extractArchive() decompress it and check.
 */
export function detectFormat(data: Uint8Array): ArchiveFormat | undefined {
  if (isZip(data)) return "zip";
  if (isGzip(data)) return "tar";
  if (isTar(data)) return "tar";
  return undefined;
}
