// The SFTP subsystem on ssh2's SFTP server protocol: the file operations OpenSSH's sftp and scp
// (which speaks SFTP since OpenSSH 9) and VS Code use. Relative paths start at the session's
// directory, as sftp-server's do at the user's home.
import { constants, type Stats } from "node:fs";
import { chmod, chown, lstat, mkdir, open, readdir, readlink, realpath, rename, rmdir, stat, symlink, truncate, unlink, utimes, type FileHandle } from "node:fs/promises";
import { resolve } from "node:path";
import ssh2, { type Attributes, type FileEntry, type SFTPWrapper } from "ssh2";
import type { Scope } from "./scope.js";

const { OPEN_MODE, STATUS_CODE } = ssh2.utils.sftp;

/** Reads are capped so that one reply stays a modest packet; clients ask again for the rest. */
const MAX_READ = 64 * 1024;
/** Directory listings go out in slices, for the same reason. */
const NAMES_PER_REPLY = 128;

type Open = { kind: "file"; fh: FileHandle } | { kind: "dir"; path: string; pending: FileEntry[] | undefined };

function toAttrs(s: Stats): Attributes {
  return { mode: s.mode, uid: s.uid, gid: s.gid, size: s.size, atime: Math.floor(s.atimeMs / 1000), mtime: Math.floor(s.mtimeMs / 1000) };
}

/** An `ls -l` line, which `sftp`'s `ls -l` shows as is. */
function longname(name: string, s: Stats): string {
  const type = s.isDirectory() ? "d" : s.isSymbolicLink() ? "l" : s.isFIFO() ? "p" : s.isSocket() ? "s" : s.isCharacterDevice() ? "c" : s.isBlockDevice() ? "b" : "-";
  let perms = "";
  for (let shift = 6; shift >= 0; shift -= 3) {
    const bits = (s.mode >> shift) & 7;
    perms += (bits & 4 ? "r" : "-") + (bits & 2 ? "w" : "-") + (bits & 1 ? "x" : "-");
  }
  const date = s.mtime.toDateString().slice(4, 10) + " " + s.mtime.toTimeString().slice(0, 5);
  return `${type}${perms} ${String(s.nlink).padStart(4)} ${String(s.uid).padEnd(8)} ${String(s.gid).padEnd(8)} ${String(s.size).padStart(8)} ${date} ${name}`;
}

function openFlags(pflags: number): number {
  const rw = pflags & OPEN_MODE.READ && pflags & OPEN_MODE.WRITE ? constants.O_RDWR : pflags & OPEN_MODE.WRITE ? constants.O_WRONLY : constants.O_RDONLY;
  return (
    rw |
    (pflags & OPEN_MODE.APPEND ? constants.O_APPEND : 0) |
    (pflags & OPEN_MODE.CREAT ? constants.O_CREAT : 0) |
    (pflags & OPEN_MODE.TRUNC ? constants.O_TRUNC : 0) |
    (pflags & OPEN_MODE.EXCL ? constants.O_EXCL : 0)
  );
}

function statusOf(err: unknown): number {
  switch ((err as NodeJS.ErrnoException).code) {
    case "ENOENT":
    case "ENOTDIR":
      return STATUS_CODE.NO_SUCH_FILE;
    case "EACCES":
    case "EPERM":
      return STATUS_CODE.PERMISSION_DENIED;
    default:
      return STATUS_CODE.FAILURE;
  }
}

async function setAttrs(path: string, a: Partial<Attributes>): Promise<void> {
  if (a.size !== undefined) await truncate(path, a.size);
  if (a.uid !== undefined && a.gid !== undefined) {
    const s = await stat(path);
    if (s.uid !== a.uid || s.gid !== a.gid) await chown(path, a.uid, a.gid);
  }
  if (a.mode !== undefined) await chmod(path, a.mode & 0o7777);
  if (a.atime !== undefined && a.mtime !== undefined) await utimes(path, a.atime, a.mtime);
}

export function serveSftp(sftp: SFTPWrapper, directory: string, scope: Scope): void {
  const handles = new Map<number, Open>();
  let nextHandle = 1;
  const abs = (p: string) => resolve(directory, p || ".");

  scope.defer(() => {
    for (const h of handles.values()) if (h.kind === "file") void h.fh.close().catch(() => {});
    handles.clear();
  });
  sftp.on("close", () => scope.end());
  // The client's EOF is sftp-server's cue to exit: like sshd then, report status 0 (scp checks
  // ssh's exit code, which without an exit-status is 255) and close the channel.
  sftp.on("end", () => {
    const chan = sftp as unknown as { outgoing: { id: number; state: string }; _protocol: { exitStatus(id: number, status: number): void } };
    if (chan.outgoing.state === "open") chan._protocol.exitStatus(chan.outgoing.id, 0);
    sftp.end();
  });

  const newHandle = (h: Open): Buffer => {
    const id = nextHandle++;
    handles.set(id, h);
    const buf = Buffer.alloc(4);
    buf.writeUInt32BE(id);
    return buf;
  };
  const lookup = (buf: Buffer): [number, Open | undefined] => {
    const id = buf.length === 4 ? buf.readUInt32BE(0) : -1;
    return [id, handles.get(id)];
  };
  const fileOf = (buf: Buffer): FileHandle => {
    const h = lookup(buf)[1];
    if (h?.kind !== "file") throw Object.assign(new Error("invalid handle"), { code: "EBADF" });
    return h.fh;
  };

  // Requests run one at a time, in order: OpenSSH's client (like its sftp-server) expects replies
  // in request order, and when reads come back reordered, scp truncates the download at the
  // last contiguous byte. Pipelining still keeps the channel busy: the client sends ahead.
  let queue = Promise.resolve();
  /** Queues a request; whatever it throws becomes its error status. */
  const serve = <A extends unknown[]>(event: string, fn: (reqid: number, ...args: A) => Promise<void>) => {
    sftp.on(event, (reqid: number, ...args: A) => {
      queue = queue.then(() =>
        fn(reqid, ...args).catch((err: unknown) => {
          try {
            sftp.status(reqid, statusOf(err), (err as Error).message);
          } catch {
            // the channel is gone
          }
        }),
      );
    });
  };
  const ok = (reqid: number) => sftp.status(reqid, STATUS_CODE.OK);

  serve("OPEN", async (reqid, filename: string, pflags: number, attrs: Partial<Attributes>) => {
    const fh = await open(abs(filename), openFlags(pflags), attrs.mode !== undefined ? attrs.mode & 0o7777 : 0o666);
    sftp.handle(reqid, newHandle({ kind: "file", fh }));
  });
  serve("READ", async (reqid, handle: Buffer, offset: number, length: number) => {
    const fh = fileOf(handle);
    const buf = Buffer.allocUnsafe(Math.min(length, MAX_READ));
    const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
    if (bytesRead === 0) sftp.status(reqid, STATUS_CODE.EOF);
    else sftp.data(reqid, buf.subarray(0, bytesRead));
  });
  serve("WRITE", async (reqid, handle: Buffer, offset: number, view: Buffer) => {
    const fh = fileOf(handle);
    // ssh2 hands out a view of its packet buffer, which it reuses before the write is done.
    const data = Buffer.from(view);
    for (let done = 0; done < data.length; ) done += (await fh.write(data, done, data.length - done, offset + done)).bytesWritten;
    ok(reqid);
  });
  serve("CLOSE", async (reqid, handle: Buffer) => {
    const [id, h] = lookup(handle);
    if (!h) throw Object.assign(new Error("invalid handle"), { code: "EBADF" });
    handles.delete(id);
    if (h.kind === "file") await h.fh.close();
    ok(reqid);
  });
  serve("FSTAT", async (reqid, handle: Buffer) => {
    sftp.attrs(reqid, toAttrs(await fileOf(handle).stat()));
  });
  serve("FSETSTAT", async (reqid, handle: Buffer, attrs: Partial<Attributes>) => {
    const fh = fileOf(handle);
    if (attrs.size !== undefined) await fh.truncate(attrs.size);
    if (attrs.uid !== undefined && attrs.gid !== undefined) {
      const s = await fh.stat();
      if (s.uid !== attrs.uid || s.gid !== attrs.gid) await fh.chown(attrs.uid, attrs.gid);
    }
    if (attrs.mode !== undefined) await fh.chmod(attrs.mode & 0o7777);
    if (attrs.atime !== undefined && attrs.mtime !== undefined) await fh.utimes(attrs.atime, attrs.mtime);
    ok(reqid);
  });
  serve("STAT", async (reqid, path: string) => sftp.attrs(reqid, toAttrs(await stat(abs(path)))));
  serve("LSTAT", async (reqid, path: string) => sftp.attrs(reqid, toAttrs(await lstat(abs(path)))));
  serve("SETSTAT", async (reqid, path: string, attrs: Partial<Attributes>) => {
    await setAttrs(abs(path), attrs);
    ok(reqid);
  });
  serve("OPENDIR", async (reqid, path: string) => {
    const dir = abs(path);
    if (!(await stat(dir)).isDirectory()) throw Object.assign(new Error("not a directory"), { code: "ENOTDIR" });
    sftp.handle(reqid, newHandle({ kind: "dir", path: dir, pending: undefined }));
  });
  serve("READDIR", async (reqid, handle: Buffer) => {
    const h = lookup(handle)[1];
    if (h?.kind !== "dir") throw Object.assign(new Error("invalid handle"), { code: "EBADF" });
    if (!h.pending) {
      const names = [".", "..", ...(await readdir(h.path))];
      const entries = await Promise.all(
        names.map(async (filename) => {
          try {
            const s = await lstat(resolve(h.path, filename));
            return { filename, longname: longname(filename, s), attrs: toAttrs(s) };
          } catch {
            return undefined; // removed meanwhile
          }
        }),
      );
      h.pending = entries.filter((e) => e !== undefined);
    }
    if (h.pending.length === 0) return sftp.status(reqid, STATUS_CODE.EOF);
    sftp.name(reqid, h.pending.splice(0, NAMES_PER_REPLY));
  });
  serve("REALPATH", async (reqid, path: string) => {
    let p = abs(path);
    try {
      p = await realpath(p);
    } catch {
      // Not there (yet): the normalized path still tells the client where it would be.
    }
    sftp.name(reqid, [{ filename: p, longname: p, attrs: {} as Attributes }]);
  });
  serve("MKDIR", async (reqid, path: string, attrs: Partial<Attributes>) => {
    await mkdir(abs(path), { mode: attrs.mode !== undefined ? attrs.mode & 0o7777 : 0o777 });
    ok(reqid);
  });
  serve("RMDIR", async (reqid, path: string) => {
    await rmdir(abs(path));
    ok(reqid);
  });
  serve("REMOVE", async (reqid, path: string) => {
    await unlink(abs(path));
    ok(reqid);
  });
  // POSIX semantics (replaces an existing target), which is what clients mean in practice.
  serve("RENAME", async (reqid, from: string, to: string) => {
    await rename(abs(from), abs(to));
    ok(reqid);
  });
  serve("READLINK", async (reqid, path: string) => {
    const target = await readlink(abs(path));
    sftp.name(reqid, [{ filename: target, longname: target, attrs: {} as Attributes }]);
  });
  // ssh2 undoes OpenSSH's swapped order on the wire and hands out (link, target) from either
  // kind of client (its typings name them the other way round); the target is stored as given.
  serve("SYMLINK", async (reqid, link: string, target: string) => {
    await symlink(target, abs(link));
    ok(reqid);
  });
  serve("EXTENDED", async (reqid) => sftp.status(reqid, STATUS_CODE.OP_UNSUPPORTED));
}
