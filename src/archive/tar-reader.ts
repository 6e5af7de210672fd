// A tar reader over an in-memory buffer: ustar, GNU (long names via 'L'/'K', base-256 sizes),
// pax ('x'; 'g' is ignored) and pre-POSIX headers. Every header's checksum is verified and every
// offset is bounds-checked, so corrupt input ends in an ArchiveError, never a hang or a
// RangeError. Entries are yielded before their data is bounds-checked, so that an oversized
// declaration is reported as such rather than as truncation.
import { ArchiveError } from "./errors.js";
import { decodeName, decodeText, lossyName } from "./paths.js";
import type { RawEntry } from "./raw-entry.js";
import { BLOCK, checksumMatches, isPosixUstar, isZeroBlock, parseNumeric } from "./tar-header.js";

/** Extended headers only carry names and a few numbers; anything bigger is not honest. */
const MAX_EXTENDED_HEADER = 1024 * 1024;

const UNSUPPORTED_TYPES: Record<string, string> = {
  "1": "hard link",
  "3": "character device",
  "4": "block device",
  "6": "FIFO",
  "7": "contiguous file",
  S: "GNU sparse file",
  V: "volume label",
  M: "multi-volume continuation",
  D: "GNU dump directory",
  N: "GNU old long name",
};

function padded(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
}

function cString(block: Uint8Array, offset: number, length: number): Uint8Array {
  const field = block.subarray(offset, offset + length);
  const nul = field.indexOf(0);
  return nul === -1 ? field : field.subarray(0, nul);
}

function describeTypeflag(flag: number): string {
  const ch = String.fromCharCode(flag);
  return UNSUPPORTED_TYPES[ch] ?? (flag >= 0x20 && flag < 0x7f ? `unknown tar entry type '${ch}'` : `unknown tar entry type ${flag}`);
}

/** Pax records are "<len> <key>=<value>\n", len counting the whole record. */
function parsePax(buf: Uint8Array, offset: number): Map<string, string> {
  const out = new Map<string, string>();
  let pos = 0;
  while (pos < buf.length) {
    let sp = pos;
    while (sp < buf.length && buf[sp] !== 0x20) sp++;
    const digits = String.fromCharCode(...buf.subarray(pos, Math.min(sp, pos + 16)));
    const len = /^[0-9]+$/.test(digits) ? Number(digits) : NaN;
    if (!Number.isSafeInteger(len) || len <= sp - pos + 1 || pos + len > buf.length || buf[pos + len - 1] !== 0x0a) {
      throw new ArchiveError(`malformed pax header at offset ${offset}`);
    }
    const record = decodeText(buf.subarray(sp + 1, pos + len - 1), `pax header at offset ${offset}`);
    const eq = record.indexOf("=");
    if (eq <= 0) throw new ArchiveError(`malformed pax header at offset ${offset}`);
    out.set(record.slice(0, eq), record.slice(eq + 1));
    pos += len;
  }
  return out;
}

export function* readTar(data: Uint8Array): Generator<RawEntry> {
  let offset = 0;
  // Extended headers describe the entry that follows them.
  let pax = new Map<string, string>();
  let longName: string | undefined;
  let longLink: string | undefined;
  let pendingMeta = false;

  for (;;) {
    if (offset + BLOCK > data.length) {
      throw new ArchiveError(offset === data.length ? "truncated tar archive (no end-of-archive marker)" : "truncated tar archive");
    }
    const header = data.subarray(offset, offset + BLOCK);
    if (isZeroBlock(header)) {
      if (pendingMeta) throw new ArchiveError("truncated tar archive (extended header without an entry)");
      // As Go's archive/tar: the end marker is two zero blocks (or one at the very end); a zero
      // block followed by more headers means the archive is damaged.
      const next = data.subarray(offset + BLOCK, offset + 2 * BLOCK);
      if (next.length === BLOCK && !isZeroBlock(next)) throw new ArchiveError(`invalid tar header at offset ${offset + BLOCK} (after a zero block)`);
      return;
    }
    if (!checksumMatches(header)) throw new ArchiveError(`invalid tar header at offset ${offset} (checksum mismatch)`);

    // Header name fields are decoded only when no extended header replaces them: writers
    // truncate them at 100 bytes, which can split a UTF-8 character in an honest archive.
    const headerName = (): string => {
      const base = decodeName(cString(header, 0, 100));
      return isPosixUstar(header) && header[345] !== 0 ? `${decodeName(cString(header, 345, 155))}/${base}` : base;
    };
    const typeflag = header[156]!;
    const dataStart = offset + BLOCK;
    let size = parseNumeric(header, 124, 12);
    if (size === undefined) throw new ArchiveError(`invalid size field in tar header at offset ${offset}`, lossyName(cString(header, 0, 100)));

    const flag = String.fromCharCode(typeflag);
    if (flag === "x" || flag === "g" || flag === "L" || flag === "K") {
      if (size > MAX_EXTENDED_HEADER) throw new ArchiveError(`extended header at offset ${offset} is larger than ${MAX_EXTENDED_HEADER} bytes`);
      if (dataStart + size > data.length) throw new ArchiveError("truncated tar archive");
      const body = data.subarray(dataStart, dataStart + size);
      if (flag === "x") for (const [k, v] of parsePax(body, offset)) pax.set(k, v);
      else if (flag === "L") longName = decodeName(cString(body, 0, size));
      else if (flag === "K") longLink = decodeText(cString(body, 0, size), `GNU long link target at offset ${offset}`);
      // 'g' holds global defaults (git archive puts the commit id there): nothing we use.
      if (flag !== "g") pendingMeta = true;
      offset = dataStart + padded(size);
      continue;
    }

    const name = pax.get("path") ?? longName ?? headerName();
    const linkTarget = typeflag === 0x32 ? (pax.get("linkpath") ?? longLink ?? decodeText(cString(header, 157, 100), "symlink target", name)) : undefined;
    const paxSize = pax.get("size");
    if (paxSize !== undefined) {
      size = /^\d+$/.test(paxSize) ? Number(paxSize) : NaN;
      if (!Number.isSafeInteger(size)) throw new ArchiveError(`invalid pax size ${JSON.stringify(paxSize)}`, name);
    }
    const sparse = [...pax.keys()].some((k) => k.startsWith("GNU.sparse."));
    pax = new Map();
    longName = undefined;
    longLink = undefined;
    pendingMeta = false;

    const entrySize = size;
    const mode = parseNumeric(header, 100, 8) ?? 0;
    let kind: RawEntry["kind"];
    let typeName: string | undefined;
    if (sparse) {
      kind = "unsupported";
      typeName = "GNU sparse file";
    } else if (typeflag === 0x30 || typeflag === 0) {
      // Pre-POSIX archives mark directories only with a trailing slash.
      kind = typeflag === 0 && name.endsWith("/") ? "directory" : "file";
    } else if (typeflag === 0x35) {
      kind = "directory";
    } else if (typeflag === 0x32) {
      kind = "symlink";
    } else {
      kind = "unsupported";
      typeName = describeTypeflag(typeflag);
    }

    yield {
      name,
      kind,
      ...(typeName === undefined ? {} : { typeName }),
      size: kind === "file" ? entrySize : 0,
      mode,
      ...(linkTarget === undefined ? {} : { linkTarget }),
      read: async () => {
        if (kind !== "file") return new Uint8Array(0);
        if (dataStart + entrySize > data.length) throw new ArchiveError("truncated tar archive", name);
        return data.subarray(dataStart, dataStart + entrySize);
      },
    };

    offset = dataStart + padded(entrySize);
    if (offset > data.length) throw new ArchiveError("truncated tar archive", name);
  }
}
