// The validator: turns raw entries from either format into checked ArchiveEntries, applying
// every rule before the caller writes a single byte.
import { isGzip, detectFormat, isTar } from "./detect.js";
import { EntryTree } from "./entry-tree.js";
import { ArchiveError } from "./errors.js";
import { gunzipBounded } from "./gzip.js";
import { resolveLimits, type ArchiveLimits } from "./limits.js";
import { MAX_NAME_BYTES, checkLinkTarget, decodeText, normalizeEntryPath } from "./paths.js";
import type { RawEntry } from "./raw-entry.js";
import { readTar } from "./tar-reader.js";
import { readZip } from "./zip-reader.js";

export interface ArchiveEntry {
  /** Root-relative, "/"-separated, no "./" and no trailing slash. */
  path: string;
  type: "file" | "directory" | "symlink";
  /** Content bytes; 0 for directories and symlinks. */
  size: number;
  /** The mode extraction applies: 0o755 or 0o644 for files, 0o755 for directories, 0o777 for symlinks. */
  mode: number;
  linkTarget?: string;
}

export interface CheckedEntry {
  entry: ArchiveEntry;
  /** File content (re-read on each call: for zip that means inflating again, not holding it). */
  read(): Promise<Uint8Array>;
}

/** Room for tar headers and padding on top of the content limit when gunzipping. */
const GZIP_OVERHEAD = 1024 * 1024;
/** Yield to the event loop every so often: coderd validates uploads on its request path. */
const YIELD_EVERY = 256;

function fileMode(stored: number): number {
  // Only the owner's execute bit survives: setuid/setgid/sticky and odd permissions are dropped.
  return stored & 0o100 ? 0o755 : 0o644;
}

async function open(data: Uint8Array, limits: ArchiveLimits): Promise<Generator<RawEntry>> {
  if (data.length === 0) throw new ArchiveError("not a tar or zip archive (empty input)");
  const format = detectFormat(data);
  if (format === undefined) throw new ArchiveError("not a tar or zip archive");
  if (format === "zip") return readZip(data);
  if (!isGzip(data)) return readTar(data);
  const tar = await gunzipBounded(data, limits.maxTotalBytes + GZIP_OVERHEAD);
  if (!isTar(tar)) throw new ArchiveError("gzip data does not contain a tar archive");
  return readTar(tar);
}

export async function checkArchive(data: Uint8Array, partialLimits?: Partial<ArchiveLimits>): Promise<CheckedEntry[]> {
  const limits = resolveLimits(partialLimits);
  const raw = await open(data, limits);
  const tree = new EntryTree();
  const out: CheckedEntry[] = [];
  let count = 0;
  let total = 0;

  for (const r of raw) {
    const { name } = r;
    if (++count > limits.maxEntries) throw new ArchiveError(`archive has more than ${limits.maxEntries} entries`, name);
    if (count % YIELD_EVERY === 0) await new Promise((resolve) => setImmediate(resolve));
    if (r.kind === "unsupported") throw new ArchiveError(`${r.typeName ?? "unknown"} entries are not allowed`, name);

    const path = normalizeEntryPath(name);
    if (path === "") {
      // "./" from `tar -C dir .`: the destination itself, which extraction creates anyway.
      if (r.kind === "directory") continue;
      throw new ArchiveError("name refers to the archive root", name);
    }
    if (r.kind !== "directory" && /[/\\]$/.test(name)) throw new ArchiveError(`a ${r.kind} name cannot end with a slash`, name);

    if (r.kind === "directory") {
      tree.add(path, "directory", name);
      out.push({ entry: { path, type: "directory", size: 0, mode: 0o755 }, read: async () => new Uint8Array(0) });
    } else if (r.kind === "symlink") {
      let target = r.linkTarget;
      if (target === undefined) {
        if (r.size > MAX_NAME_BYTES) throw new ArchiveError(`symlink target is longer than ${MAX_NAME_BYTES} bytes`, name);
        target = decodeText(await r.read(), "symlink target", name);
      }
      const linkTarget = checkLinkTarget(path, target, name);
      tree.add(path, "symlink", name, linkTarget);
      out.push({ entry: { path, type: "symlink", size: 0, mode: 0o777, linkTarget }, read: async () => new Uint8Array(0) });
    } else {
      // Declared sizes first, so that nothing is decompressed for an entry that is refused anyway.
      if (r.size > limits.maxFileBytes) throw new ArchiveError(`file is ${r.size} bytes, more than the limit of ${limits.maxFileBytes}`, name);
      total += r.size;
      if (total > limits.maxTotalBytes) throw new ArchiveError(`archive content exceeds the limit of ${limits.maxTotalBytes} bytes`, name);
      tree.add(path, "file", name);
      // The actual bytes: the reader refuses anything but exactly the declared size.
      await r.read();
      out.push({ entry: { path, type: "file", size: r.size, mode: fileMode(r.mode) }, read: r.read });
    }
  }
  tree.checkSymlinks();
  return out;
}

/** Validates the whole archive without writing anything; throws ArchiveError. */
export async function listArchive(data: Uint8Array, limits?: Partial<ArchiveLimits>): Promise<ArchiveEntry[]> {
  return (await checkArchive(data, limits)).map((c) => c.entry);
}
