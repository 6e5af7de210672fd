// Extraction into a fresh directory. Everything is validated first, so a bad archive writes
// nothing; then entries are created with calls that never follow a symlink at the final
// component (mkdir, open with O_EXCL, symlink), under directories this function made itself.
import { chmod, lstat, mkdir, open, readdir, symlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { ArchiveLimits } from "./limits.js";
import { checkArchive, type ArchiveEntry } from "./read.js";

function isErrno(err: unknown, code: string): boolean {
  return (err as { code?: unknown } | null)?.code === code;
}

/** Whether destDir exists; throws unless it is absent or an empty real directory. */
async function checkDestination(destDir: string): Promise<boolean> {
  let st;
  try {
    st = await lstat(destDir);
  } catch (err) {
    if (isErrno(err, "ENOENT")) return false;
    throw err;
  }
  // lstat, not stat: a symlinked destination could point anywhere.
  if (!st.isDirectory()) throw new Error(`extraction destination ${destDir} is not a directory`);
  if ((await readdir(destDir)).length > 0) throw new Error(`extraction destination ${destDir} is not empty`);
  return true;
}

/** mkdir that accepts an existing real directory (an implied parent listed later) but nothing else. */
async function makeDir(abs: string): Promise<void> {
  try {
    await mkdir(abs, { mode: 0o755 });
  } catch (err) {
    if (!isErrno(err, "EEXIST")) throw err;
    const st = await lstat(abs);
    if (!st.isDirectory()) throw new Error(`refusing to extract into ${abs}: it exists and is not a directory`);
  }
  await chmod(abs, 0o755); // mkdir's mode is filtered by the umask
}

/**
 * Validates the whole archive, then writes it under destDir (created if missing; it must be
 * empty if present). Throws ArchiveError for a bad archive, having written nothing.
 */
export async function extractArchive(data: Uint8Array, destDir: string, limits?: Partial<ArchiveLimits>): Promise<ArchiveEntry[]> {
  const root = resolve(destDir);
  const existed = await checkDestination(root);
  const entries = await checkArchive(data, limits);
  // The work directory may receive secrets from the template (tfvars), so it starts private.
  if (!existed) await mkdir(root, { recursive: true, mode: 0o700 });

  const made = new Set<string>([""]);
  const ensureDir = async (rel: string): Promise<void> => {
    if (made.has(rel)) return;
    const cut = rel.lastIndexOf("/");
    if (cut > 0) await ensureDir(rel.slice(0, cut));
    await makeDir(join(root, ...rel.split("/")));
    made.add(rel);
  };

  for (const { entry, read } of entries) {
    const cut = entry.path.lastIndexOf("/");
    if (cut > 0) await ensureDir(entry.path.slice(0, cut));
    const abs = join(root, ...entry.path.split("/"));
    if (entry.type === "directory") {
      await makeDir(abs);
      made.add(entry.path);
    } else if (entry.type === "symlink") {
      await symlink(entry.linkTarget!, abs);
    } else {
      // "wx" is O_CREAT|O_EXCL: it fails on anything already there, including a dangling symlink.
      const fh = await open(abs, "wx", 0o600);
      try {
        await fh.writeFile(await read());
        await fh.chmod(entry.mode);
      } finally {
        await fh.close();
      }
    }
  }
  return entries.map((c) => c.entry);
}
