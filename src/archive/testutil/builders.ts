// Archive builders for tests, including the malformed and malicious ones that ordinary tools
// refuse to produce. Test-only: excluded from the build by tsconfig.build.json.
import { deflateRawSync, gzipSync, constants as zlibConstants } from "node:zlib";
import { zipSync, type Zippable } from "fflate";
import { pack } from "tar-stream";
import { crc32 } from "../crc32.js";

export type SpecType = "file" | "directory" | "symlink" | "link" | "character-device" | "block-device" | "fifo" | "contiguous-file";

export interface Spec {
  name: string;
  type?: SpecType;
  content?: string | Uint8Array;
  target?: string;
  mode?: number;
}

const enc = new TextEncoder();
function bytes(content: string | Uint8Array | undefined): Uint8Array {
  return typeof content === "string" ? enc.encode(content) : (content ?? new Uint8Array(0));
}

/** A tar through tar-stream, which writes whatever names and types it is given. */
export async function tarOf(specs: Spec[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    p.on("data", (c) => {
      chunks.push(c as Buffer);
    });
    p.on("end", () => resolve());
    p.on("error", reject);
  });
  for (const s of specs) {
    const type = s.type ?? "file";
    const header = { name: s.name, type, mode: s.mode ?? (type === "directory" ? 0o755 : 0o644), mtime: new Date(0), ...(s.target === undefined ? {} : { linkname: s.target }) };
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (type === "file" || type === "contiguous-file") p.entry(header, bytes(s.content), cb);
      else p.entry(header, cb);
    });
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

export async function tgzOf(specs: Spec[]): Promise<Buffer> {
  return gzipSync(await tarOf(specs));
}

const UNIX_TYPE: Record<SpecType, number | undefined> = {
  file: 0o100000,
  directory: 0o040000,
  symlink: 0o120000,
  "character-device": 0o020000,
  "block-device": 0o060000,
  fifo: 0o010000,
  link: undefined,
  "contiguous-file": undefined,
};

/** A zip through fflate, with Unix attributes so that symlinks and devices can be expressed. */
export function zipOf(specs: Spec[], level: 0 | 6 = 6): Uint8Array {
  const z: Zippable = {};
  for (const s of specs) {
    const type = s.type ?? "file";
    const unixType = UNIX_TYPE[type];
    if (unixType === undefined) throw new Error(`zip cannot express ${type}`);
    if (s.name in z) throw new Error(`zipOf: duplicate key ${s.name}`);
    const mode = unixType | (s.mode ?? (type === "directory" ? 0o755 : type === "symlink" ? 0o777 : 0o644));
    const body = type === "symlink" ? enc.encode(s.target ?? "") : bytes(s.content);
    z[s.name] = [body, { os: 3, attrs: (mode << 16) >>> 0, level, mtime: new Date(2020, 0, 1) }];
  }
  return zipSync(z);
}

export type Format = "tar" | "tgz" | "zip";
export async function archiveOf(format: Format, specs: Spec[]): Promise<Uint8Array> {
  if (format === "tar") return tarOf(specs);
  if (format === "tgz") return tgzOf(specs);
  return zipOf(specs);
}

// ---- hand-made tar ----

export interface RawTarHeader {
  name: string | Uint8Array;
  typeflag?: string;
  size?: number;
  /** Written into the size field verbatim instead of `size` (for malformed sizes). */
  sizeField?: Uint8Array;
  mode?: number;
  linkname?: string | Uint8Array;
  prefix?: string;
  /** Default POSIX ustar; "v7" leaves the magic empty. */
  magic?: "ustar" | "gnu" | "v7";
  badChecksum?: boolean;
}

export function tarHeader(h: RawTarHeader): Uint8Array {
  const b = new Uint8Array(512);
  const put = (s: string | Uint8Array, off: number, max: number): void => b.set(bytes(s).subarray(0, max), off);
  const oct = (n: number, off: number, len: number): void => put(n.toString(8).padStart(len - 1, "0"), off, len - 1);
  put(h.name, 0, 100);
  oct(h.mode ?? 0o644, 100, 8);
  oct(0, 108, 8);
  oct(0, 116, 8);
  if (h.sizeField) b.set(h.sizeField, 124);
  else oct(h.size ?? 0, 124, 12);
  oct(0, 136, 12);
  b[156] = (h.typeflag ?? "0").charCodeAt(0);
  if (h.typeflag === "\0") b[156] = 0;
  put(h.linkname ?? "", 157, 100);
  const magic = h.magic ?? "ustar";
  if (magic === "ustar") put("ustar\u000000", 257, 8);
  if (magic === "gnu") put("ustar  \u0000", 257, 8);
  if (h.prefix) put(h.prefix, 345, 155);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of b) sum += x;
  if (h.badChecksum) sum += 1;
  put(`${sum.toString(8).padStart(6, "0")}\u0000 `, 148, 8);
  return b;
}

function padTo512(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(data.length / 512) * 512);
  out.set(data);
  return out;
}

/** One entry: header plus padded data. */
export function tarEntry(h: RawTarHeader, content?: string | Uint8Array): Uint8Array {
  const body = bytes(content);
  return Buffer.concat([tarHeader({ size: body.length, ...h }), padTo512(body)]);
}

export function paxEntry(records: Record<string, string>, global = false, name: string | Uint8Array = "PaxHeader"): Uint8Array {
  let text = "";
  for (const [k, v] of Object.entries(records)) {
    const rest = ` ${k}=${v}\n`;
    let len = Buffer.byteLength(rest) + 1;
    while (String(len).length + Buffer.byteLength(rest) !== len) len++;
    text += `${len}${rest}`;
  }
  return tarEntry({ name, typeflag: global ? "g" : "x" }, text);
}

/** Concatenates parts and appends the end-of-archive marker. */
export function rawTar(...parts: Uint8Array[]): Buffer {
  return Buffer.concat([...parts, new Uint8Array(1024)]);
}

// ---- hand-made zip ----

export interface RawZipEntry {
  name: string | Uint8Array;
  /** Stored bytes (already compressed when method is 8). */
  data: Uint8Array;
  method?: number;
  /** Declared uncompressed size and CRC; default: right for `content`. */
  size?: number;
  crc?: number;
  /** The uncompressed content, used for default size and CRC. */
  content?: Uint8Array;
  unixMode?: number;
  flags?: number;
  localName?: string;
  zip64?: boolean;
  /** Overrides the central directory's compressed size. */
  compressedSize?: number;
}

/** A zip with full control over every field, for lies tools will not tell. */
export function rawZip(entries: RawZipEntry[], opts: { zip64Eocd?: boolean } = {}): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(bytes(e.name));
    const localName = e.localName === undefined ? name : Buffer.from(e.localName);
    const content = e.content ?? e.data;
    const size = e.size ?? content.length;
    const crc = e.crc ?? crc32(content);
    const method = e.method ?? 0;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(e.flags ?? 0, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(e.zip64 ? 0xffffffff : e.data.length, 18);
    local.writeUInt32LE(e.zip64 ? 0xffffffff : size, 22);
    local.writeUInt16LE(localName.length, 26);
    const extra = Buffer.alloc(e.zip64 ? 28 : 0);
    if (e.zip64) {
      extra.writeUInt16LE(1, 0);
      extra.writeUInt16LE(24, 2);
      extra.writeBigUInt64LE(BigInt(size), 4);
      extra.writeBigUInt64LE(BigInt(e.data.length), 12);
      extra.writeBigUInt64LE(BigInt(offset), 20);
    }
    const localExtra = Buffer.alloc(e.zip64 ? 20 : 0);
    if (e.zip64) {
      localExtra.writeUInt16LE(1, 0);
      localExtra.writeUInt16LE(16, 2);
      localExtra.writeBigUInt64LE(BigInt(size), 4);
      localExtra.writeBigUInt64LE(BigInt(e.data.length), 12);
    }
    local.writeUInt16LE(localExtra.length, 28);
    locals.push(local, localName, localExtra, Buffer.from(e.data));

    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE((3 << 8) | 45, 4);
    c.writeUInt16LE(e.zip64 ? 45 : 20, 6);
    c.writeUInt16LE(e.flags ?? 0, 8);
    c.writeUInt16LE(method, 10);
    c.writeUInt32LE(crc, 16);
    c.writeUInt32LE(e.zip64 ? 0xffffffff : (e.compressedSize ?? e.data.length), 20);
    c.writeUInt32LE(e.zip64 ? 0xffffffff : size, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt16LE(extra.length, 30);
    c.writeUInt32LE(((e.unixMode ?? 0o100644) << 16) >>> 0, 38);
    c.writeUInt32LE(e.zip64 ? 0xffffffff : offset, 42);
    centrals.push(c, name, extra);
    offset += local.length + localName.length + localExtra.length + e.data.length;
  }
  const cd = Buffer.concat(centrals);
  const tail: Buffer[] = [];
  if (opts.zip64Eocd) {
    const z = Buffer.alloc(56);
    z.writeUInt32LE(0x06064b50, 0);
    z.writeBigUInt64LE(44n, 4);
    z.writeUInt16LE(45, 12);
    z.writeUInt16LE(45, 14);
    z.writeBigUInt64LE(BigInt(entries.length), 24);
    z.writeBigUInt64LE(BigInt(entries.length), 32);
    z.writeBigUInt64LE(BigInt(cd.length), 40);
    z.writeBigUInt64LE(BigInt(offset), 48);
    const loc = Buffer.alloc(20);
    loc.writeUInt32LE(0x07064b50, 0);
    loc.writeBigUInt64LE(BigInt(offset + cd.length), 8);
    loc.writeUInt32LE(1, 16);
    tail.push(z, loc);
  }
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(opts.zip64Eocd ? 0xffff : entries.length, 8);
  eocd.writeUInt16LE(opts.zip64Eocd ? 0xffff : entries.length, 10);
  eocd.writeUInt32LE(opts.zip64Eocd ? 0xffffffff : cd.length, 12);
  eocd.writeUInt32LE(opts.zip64Eocd ? 0xffffffff : offset, 16);
  return Buffer.concat([...locals, cd, ...tail, eocd]);
}

export function deflated(content: Uint8Array): RawZipEntry {
  return { name: "", data: deflateRawSync(content), method: 8, content };
}

// ---- bombs ----

/**
 * A raw deflate stream of `mib` MiB of zeros, built by repeating one compressed MiB, so the test
 * never holds the expanded data itself (1 GiB costs about 1 MiB here).
 */
export function deflateBomb(mib: number): Buffer {
  const oneMib = deflateRawSync(Buffer.alloc(1024 * 1024), { finishFlush: zlibConstants.Z_SYNC_FLUSH });
  const end = deflateRawSync(Buffer.alloc(0)); // an empty final block
  return Buffer.concat([...Array.from({ length: mib }, () => oneMib), end]);
}

/** Wraps raw deflate data in a gzip member with a (deliberately unverifiable) trailer. */
export function gzipOfRaw(raw: Uint8Array, isize: number): Buffer {
  const header = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(isize >>> 0, 4);
  return Buffer.concat([header, raw, trailer]);
}
