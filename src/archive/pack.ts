// `coder templates push`: a directory to a tar. The output depends only on names, contents,
// symlink targets and executable bits, so pushing an unchanged template uploads the same bytes
// (and the same hash) every time.
import { lstat, readdir, readFile, readlink, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { pack } from "tar-stream";
import { EntryTree } from "./entry-tree.js";
import { ArchiveError } from "./errors.js";
import { checkLinkTarget, normalizeEntryPath } from "./paths.js";

export interface PackOptions {
  /** Called with each "/"-separated relative path; true leaves it (and, for a directory, everything under it) out. */
  ignore?: (relPath: string) => boolean;
}

interface Item {
  rel: string;
  abs: string;
  kind: "file" | "directory" | "symlink";
  mode: number;
  target?: string;
}

function fileKind(st: Awaited<ReturnType<typeof lstat>>): string {
  if (st.isFIFO()) return "FIFO";
  if (st.isSocket()) return "socket";
  if (st.isCharacterDevice()) return "character device";
  if (st.isBlockDevice()) return "block device";
  return "special file";
}

async function walk(root: string, rel: string, ignore: PackOptions["ignore"], out: Item[]): Promise<void> {
  const names = (await readdir(rel === "" ? root : join(root, rel))).sort();
  for (const name of names) {
    const childRel = rel === "" ? name : `${rel}/${name}`;
    if (ignore?.(childRel)) continue;
    // Our reader treats a backslash as a separator; such a name would not come back as itself.
    if (name.includes("\\")) throw new Error(`cannot pack ${JSON.stringify(childRel)}: names containing a backslash are not supported`);
    const abs = join(root, childRel);
    const st = await lstat(abs);
    if (st.isDirectory()) {
      out.push({ rel: childRel, abs, kind: "directory", mode: 0o755 });
      await walk(root, childRel, ignore, out);
    } else if (st.isFile()) {
      out.push({ rel: childRel, abs, kind: "file", mode: st.mode & 0o100 ? 0o755 : 0o644 });
    } else if (st.isSymbolicLink()) {
      out.push({ rel: childRel, abs, kind: "symlink", mode: 0o777, target: await readlink(abs) });
    } else {
      throw new Error(`cannot pack ${JSON.stringify(childRel)}: ${fileKind(st)}s are not supported`);
    }
  }
}

/**
 * The rules extraction applies (names, symlink targets, case collisions), so that the CLI
 * fails with a clear message instead of uploading an archive the server refuses.
 */
function checkLikeExtraction(items: Item[]): void {
  const tree = new EntryTree();
  try {
    for (const item of items) {
      normalizeEntryPath(item.rel);
      const target = item.target === undefined ? undefined : checkLinkTarget(item.rel, item.target, item.rel);
      tree.add(item.rel, item.kind, item.rel, target);
    }
    tree.checkSymlinks();
  } catch (err) {
    if (err instanceof ArchiveError) throw new Error(`cannot pack ${JSON.stringify(err.entry)}: ${err.reason}`);
    throw err;
  }
}

export async function packDirectory(dir: string, opts: PackOptions = {}): Promise<Buffer> {
  const root = resolve(dir);
  if (!(await stat(root)).isDirectory()) throw new Error(`${dir} is not a directory`);
  const items: Item[] = [];
  await walk(root, "", opts.ignore, items);
  checkLikeExtraction(items);

  const tar = pack();
  const chunks: Buffer[] = [];
  const finished = new Promise<void>((resolveDone, reject) => {
    tar.on("data", (chunk) => {
      chunks.push(chunk as Buffer);
    });
    tar.on("end", () => resolveDone());
    tar.on("error", reject);
  });
  const add = (header: Parameters<typeof tar.entry>[0], body?: Uint8Array): Promise<void> =>
    new Promise((resolveEntry, reject) => {
      const done = (err?: Error | null): void => (err ? reject(err) : resolveEntry());
      if (body === undefined) tar.entry(header, done);
      else tar.entry(header, body, done);
    });

  // Fixed owner, time and modes: only what the template is made of goes into the bytes.
  const fixed = { mtime: new Date(0), uid: 0, gid: 0, uname: "", gname: "" };
  for (const item of items) {
    if (item.kind === "directory") await add({ ...fixed, name: `${item.rel}/`, type: "directory", mode: item.mode });
    else if (item.kind === "symlink") await add({ ...fixed, name: item.rel, type: "symlink", mode: item.mode, linkname: item.target! });
    else await add({ ...fixed, name: item.rel, type: "file", mode: item.mode }, await readFile(item.abs));
  }
  tar.finalize();
  await finished;
  return Buffer.concat(chunks);
}
