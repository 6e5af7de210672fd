// A zip reader over an in-memory buffer. The central directory is the source of truth (as for
// Info-ZIP and Go's archive/zip); local headers are only used to find the data, and must agree
// on the name. Supports stored and deflated entries, zip64 sizes and offsets, Unix modes and
// symlinks. Decompression is capped at the declared size, which the validator has already
// checked against the limits, so a lying header costs at most one byte more than it admitted.
import { constants as bufferConstants } from "node:buffer";
import { promisify } from "node:util";
import { inflateRaw } from "node:zlib";
import { crc32 } from "./crc32.js";
import { ArchiveError } from "./errors.js";
import { zlibError } from "./gzip.js";
import { decodeName } from "./paths.js";
import type { RawEntry } from "./raw-entry.js";

const inflateRawAsync = promisify(inflateRaw);

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const EOCD_SIZE = 22;
const CENTRAL_SIZE = 46;
const LOCAL_SIZE = 30;
const HOST_UNIX = 3;
const HOST_MACOS = 19;

const S_IFMT = 0o170000;
const UNIX_TYPES: Record<number, RawEntry["kind"] | string> = {
  0o100000: "file",
  0o040000: "directory",
  0o120000: "symlink",
  0o010000: "FIFO",
  0o020000: "character device",
  0o060000: "block device",
  0o140000: "socket",
};

class Reader {
  readonly view: DataView;
  constructor(readonly data: Uint8Array) {
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  }
  has(offset: number, length: number): boolean {
    return offset >= 0 && offset + length <= this.data.length;
  }
  u16(offset: number): number {
    return this.view.getUint16(offset, true);
  }
  u32(offset: number): number {
    return this.view.getUint32(offset, true);
  }
  u64(offset: number): number {
    const n = this.view.getBigUint64(offset, true);
    if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new ArchiveError("corrupt zip archive (64-bit field out of range)");
    return Number(n);
  }
}

interface Directory {
  count: number;
  offset: number;
  end: number;
}

/** The end-of-central-directory record, which must end exactly where the input ends. */
function findDirectory(r: Reader): Directory {
  const len = r.data.length;
  let eocd = -1;
  for (let p = len - EOCD_SIZE; p >= 0 && p >= len - EOCD_SIZE - 0xffff; p--) {
    if (r.u32(p) === SIG_EOCD && p + EOCD_SIZE + r.u16(p + 20) === len) {
      eocd = p;
      break;
    }
  }
  if (eocd < 0) throw new ArchiveError("truncated or corrupt zip archive (end of central directory not found)");
  if (r.u16(eocd + 4) !== 0 || r.u16(eocd + 6) !== 0) throw new ArchiveError("multi-volume zip archives are not supported");

  let count = r.u16(eocd + 10);
  let size = r.u32(eocd + 12);
  let offset = r.u32(eocd + 16);
  if (count === 0xffff || size === 0xffffffff || offset === 0xffffffff) {
    const loc = eocd - 20;
    if (r.has(loc, 20) && r.u32(loc) === SIG_ZIP64_LOCATOR) {
      const at = r.u64(loc + 8);
      if (!r.has(at, 56) || r.u32(at) !== SIG_ZIP64_EOCD) throw new ArchiveError("corrupt zip archive (bad zip64 end of central directory)");
      count = r.u64(at + 32);
      size = r.u64(at + 40);
      offset = r.u64(at + 48);
    }
  }
  if (!r.has(offset, size) || offset + size > eocd) throw new ArchiveError("truncated or corrupt zip archive (central directory out of bounds)");
  return { count, offset, end: offset + size };
}

function kindOf(host: number, external: number, name: string): { kind: RawEntry["kind"]; typeName?: string; mode: number } {
  const unix = host === HOST_UNIX || host === HOST_MACOS ? external >>> 16 : 0;
  const slashDir = name.endsWith("/") || name.endsWith("\\");
  const dosDir = (external & 0x10) !== 0;
  const type = unix & S_IFMT;
  if (type !== 0) {
    const t = UNIX_TYPES[type] ?? `unknown file type 0o${type.toString(8)}`;
    if (t === "file" && slashDir) return { kind: "directory", mode: unix };
    if (t === "file" || t === "directory" || t === "symlink") return { kind: t, mode: unix };
    return { kind: "unsupported", typeName: t, mode: unix };
  }
  if (slashDir || dosDir) return { kind: "directory", mode: unix || 0o755 };
  return { kind: "file", mode: unix || 0o644 };
}

export function* readZip(data: Uint8Array): Generator<RawEntry> {
  const r = new Reader(data);
  const dir = findDirectory(r);
  let p = dir.offset;
  for (let i = 0; i < dir.count; i++) {
    if (!r.has(p, CENTRAL_SIZE) || p + CENTRAL_SIZE > dir.end || r.u32(p) !== SIG_CENTRAL) {
      throw new ArchiveError(`corrupt zip archive (central directory entry ${i} is damaged or missing)`);
    }
    const host = r.u16(p + 4) >> 8;
    const flags = r.u16(p + 8);
    const method = r.u16(p + 10);
    const crc = r.u32(p + 16);
    let compressed = r.u32(p + 20);
    let size = r.u32(p + 24);
    const nameLen = r.u16(p + 28);
    const extraLen = r.u16(p + 30);
    const commentLen = r.u16(p + 32);
    const external = r.u32(p + 38);
    let localOffset = r.u32(p + 42);
    const next = p + CENTRAL_SIZE + nameLen + extraLen + commentLen;
    if (next > dir.end) throw new ArchiveError(`corrupt zip archive (central directory entry ${i} overruns the directory)`);
    const nameBytes = data.subarray(p + CENTRAL_SIZE, p + CENTRAL_SIZE + nameLen);
    const name = decodeName(nameBytes);

    // Zip64: the 32-bit fields saturate and the real values follow in extra field 0x0001, in
    // this order and only for the fields that saturated.
    if (size === 0xffffffff || compressed === 0xffffffff || localOffset === 0xffffffff) {
      let q = p + CENTRAL_SIZE + nameLen;
      const end = q + extraLen;
      let found = false;
      while (q + 4 <= end) {
        const id = r.u16(q);
        const len = r.u16(q + 2);
        if (q + 4 + len > end) break;
        if (id === 0x0001) {
          let f = q + 4;
          const take = (): number => {
            if (f + 8 > q + 4 + len) throw new ArchiveError("corrupt zip64 extra field", name);
            const v = r.u64(f);
            f += 8;
            return v;
          };
          if (size === 0xffffffff) size = take();
          if (compressed === 0xffffffff) compressed = take();
          if (localOffset === 0xffffffff) localOffset = take();
          found = true;
          break;
        }
        q += 4 + len;
      }
      if (!found) throw new ArchiveError("corrupt zip archive (missing zip64 extra field)", name);
    }
    p = next;

    if (flags & 0x1) throw new ArchiveError("encrypted entries are not supported", name);
    if (method !== 0 && method !== 8) throw new ArchiveError(`unsupported compression method ${method}`, name);
    const { kind, typeName, mode } = kindOf(host, external, name);
    const entrySize = size;

    const read = async (): Promise<Uint8Array> => {
      if (!r.has(localOffset, LOCAL_SIZE) || r.u32(localOffset) !== SIG_LOCAL) throw new ArchiveError("corrupt zip archive (local header missing)", name);
      const localNameLen = r.u16(localOffset + 26);
      const localExtraLen = r.u16(localOffset + 28);
      const localName = data.subarray(localOffset + LOCAL_SIZE, localOffset + LOCAL_SIZE + localNameLen);
      if (!sameBytes(localName, nameBytes)) throw new ArchiveError("local header name does not match the central directory", name);
      const start = localOffset + LOCAL_SIZE + localNameLen + localExtraLen;
      if (!r.has(start, compressed)) throw new ArchiveError("truncated zip archive", name);
      const raw = data.subarray(start, start + compressed);
      let out: Uint8Array;
      if (method === 0) {
        out = raw;
      } else {
        try {
          out = await inflateRawAsync(raw, { maxOutputLength: Math.min(entrySize + 1, bufferConstants.MAX_LENGTH) });
        } catch (err) {
          throw zlibError(err, "compressed data", `decompressed data is larger than the declared ${entrySize} bytes`, name);
        }
      }
      if (out.length !== entrySize) throw new ArchiveError(`data is ${out.length} bytes but the header declares ${entrySize}`, name);
      if (crc32(out) !== crc) throw new ArchiveError("CRC-32 mismatch (corrupt data)", name);
      return out;
    };
    yield { name, kind, ...(typeName === undefined ? {} : { typeName }), size: entrySize, mode, read };
  }
  // Records the count does not cover would be invisible here but not to other unzip tools.
  if (p !== dir.end) throw new ArchiveError("corrupt zip archive (central directory size does not match its entry count)");
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
