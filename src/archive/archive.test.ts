// The safety rules, each exercised for tar, tar.gz and zip: every refusal must name the entry,
// and a refused archive must leave the filesystem untouched (see expectRefused).
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ArchiveError, listArchive } from "./index.js";
import { archiveOf, tarOf, zipOf, type Format, type Spec } from "./testutil/builders.js";
import { expectRefused, makeSandbox } from "./testutil/sandbox.js";

const FORMATS: Format[] = ["tar", "tgz", "zip"];

interface Case {
  title: string;
  /** Built from the sandbox's "outside" directory, for attacks that aim there. */
  specs: (outside: string) => Spec[];
  entry: string | ((outside: string) => string);
  reason: string | RegExp;
  formats?: Format[];
}

const file = (name: string, content = "x"): Spec => ({ name, content });

const CASES: Case[] = [
  // Names
  { title: "../x", specs: () => [file("../x")], entry: "../x", reason: "path escapes the archive root" },
  { title: "a/../../x", specs: () => [file("a/../../x")], entry: "a/../../x", reason: "path escapes the archive root" },
  { title: "../outside/x (lands next to destDir)", specs: () => [file("../outside/x")], entry: "../outside/x", reason: "path escapes the archive root" },
  { title: "a/../b (.. that stays inside)", specs: () => [file("a/../b")], entry: "a/../b", reason: 'path contains a ".." segment' },
  { title: "..\\x (backslash traversal)", specs: () => [file("..\\x")], entry: "..\\x", reason: "path escapes the archive root" },
  { title: "a\\..\\..\\x", specs: () => [file("a\\..\\..\\x")], entry: "a\\..\\..\\x", reason: "path escapes the archive root" },
  { title: "/etc/passwd", specs: () => [file("/etc/passwd")], entry: "/etc/passwd", reason: "absolute path" },
  { title: "absolute path into the sandbox", specs: (o) => [file(join(o, "abs"))], entry: (o) => join(o, "abs"), reason: "absolute path" },
  { title: "C:\\x", specs: () => [file("C:\\x")], entry: "C:\\x", reason: "absolute path" },
  { title: "c:/x", specs: () => [file("c:/x")], entry: "c:/x", reason: "absolute path" },
  { title: "\\x (leading backslash)", specs: () => [file("\\x")], entry: "\\x", reason: "absolute path" },
  { title: "\\\\server\\share\\x (UNC)", specs: () => [file("\\\\server\\share\\x")], entry: "\\\\server\\share\\x", reason: "absolute path" },
  { title: "a NUL byte in a name", specs: () => [file("a\0b")], entry: "a\0b", reason: "NUL byte", formats: ["zip"] },
  { title: "an empty name", specs: () => [file("")], entry: "", reason: "empty name", formats: ["zip"] },
  { title: "a file named .", specs: () => [file(".")], entry: ".", reason: "name refers to the archive root" },

  // Symlinks
  { title: "symlink to /etc", specs: () => [{ name: "etc", type: "symlink", target: "/etc" }], entry: "etc", reason: 'symlink target "/etc" is an absolute path' },
  { title: "symlink to C:\\Windows", specs: () => [{ name: "win", type: "symlink", target: "C:\\Windows" }], entry: "win", reason: "absolute path" },
  { title: "symlink to ../../x", specs: () => [{ name: "link", type: "symlink", target: "../../x" }], entry: "link", reason: "escapes the archive root" },
  { title: "nested symlink to ../../x", specs: () => [{ name: "a/link", type: "symlink", target: "../../x" }], entry: "a/link", reason: "escapes the archive root" },
  { title: "symlink with ..\\ target", specs: () => [{ name: "link", type: "symlink", target: "..\\x" }], entry: "link", reason: "escapes the archive root" },
  {
    title: "symlink escaping only through another symlink",
    // Lexically "d/s/../.." is ".", but d/s resolves to "x" at the root, so ".." twice leaves it.
    specs: () => [
      { name: "d/", type: "directory" },
      { name: "d/s", type: "symlink", target: "../x" },
      { name: "t", type: "symlink", target: "d/s/../.." },
    ],
    entry: "t",
    reason: "escapes the archive root through other symlinks",
  },
  {
    title: "symlink loop",
    specs: () => [
      { name: "a", type: "symlink", target: "b" },
      { name: "b", type: "symlink", target: "a" },
    ],
    entry: "a",
    reason: "too many symlinks",
  },
  {
    title: "symlink then write through it (target inside)",
    specs: () => [{ name: "sub/", type: "directory" }, { name: "link", type: "symlink", target: "sub" }, file("link/x")],
    entry: "link/x",
    reason: 'path goes through the symlink "link"',
  },
  {
    title: "symlink then write through it (target outside)",
    specs: (o) => [{ name: "link", type: "symlink", target: o }, file("link/x")],
    entry: "link",
    reason: "is an absolute path",
  },
  {
    title: "symlink then write through it (differently cased)",
    specs: () => [{ name: "sub/", type: "directory" }, { name: "LINK", type: "symlink", target: "sub" }, file("link/x")],
    entry: "link/x",
    reason: "case-insensitive",
  },
  {
    title: "symlink then a directory through it",
    specs: () => [{ name: "link", type: "symlink", target: "." }, { name: "link/d/", type: "directory" }],
    entry: "link/d/",
    reason: "goes through the symlink",
  },
  {
    title: "directory replaced by a symlink after use",
    specs: () => [file("link/x"), { name: "link", type: "symlink", target: "." }],
    entry: "link",
    reason: "cannot replace the directory",
  },
  { title: "a file under a file", specs: () => [file("f"), file("f/x")], entry: "f/x", reason: 'parent "f" is a file' },

  // Types
  { title: "hard link", specs: () => [file("a"), { name: "h", type: "link", target: "/etc/passwd" }], entry: "h", reason: "hard link entries are not allowed", formats: ["tar", "tgz"] },
  { title: "character device", specs: () => [{ name: "null", type: "character-device" }], entry: "null", reason: "character device entries are not allowed" },
  { title: "block device", specs: () => [{ name: "sda", type: "block-device" }], entry: "sda", reason: "block device entries are not allowed" },
  { title: "FIFO", specs: () => [{ name: "pipe", type: "fifo" }], entry: "pipe", reason: "FIFO entries are not allowed" },
  { title: "contiguous file", specs: () => [{ name: "c", type: "contiguous-file", content: "x" }], entry: "c", reason: "contiguous file entries are not allowed", formats: ["tar", "tgz"] },

  // Duplicates
  { title: "duplicate file", specs: () => [file("a.txt"), file("./a.txt")], entry: "./a.txt", reason: "duplicate entry" },
  { title: "duplicate directory", specs: () => [{ name: "d/", type: "directory" }, { name: "./d/", type: "directory" }], entry: "./d/", reason: "duplicate entry" },
  { title: "file then symlink at the same path", specs: () => [file("a"), { name: "./a", type: "symlink", target: "b" }], entry: "./a", reason: "duplicate entry" },
  { title: "names colliding on case-insensitive filesystems", specs: () => [file("README"), file("readme")], entry: "readme", reason: "case-insensitive" },
];

describe.each(FORMATS)("%s: refused archives", (format) => {
  it.each(CASES.filter((c) => (c.formats ?? FORMATS).includes(format)))("$title", async (c) => {
    const sb = await makeSandbox();
    try {
      const data = await archiveOf(format, c.specs(sb.outside));
      const entry = typeof c.entry === "function" ? c.entry(sb.outside) : c.entry;
      await expectRefused(data, { entry, reason: c.reason }, undefined, sb);
    } finally {
      await sb.cleanup();
    }
  });

  it("too many entries (names the first one over)", async () => {
    const data = await archiveOf(format, [file("a"), file("b"), file("c"), file("d")]);
    await expectRefused(data, { entry: "d", reason: "more than 3 entries" }, { maxEntries: 3 });
    expect(await listArchive(data, { maxEntries: 4 })).toHaveLength(4);
  });

  it("a file over maxFileBytes", async () => {
    const data = await archiveOf(format, [file("small", "x".repeat(100)), file("big", "x".repeat(101))]);
    await expectRefused(data, { entry: "big", reason: "file is 101 bytes, more than the limit of 100" }, { maxFileBytes: 100 });
  });

  it("content over maxTotalBytes", async () => {
    const data = await archiveOf(format, [file("a", "x".repeat(100)), file("b", "x".repeat(100)), file("c", "x".repeat(100))]);
    await expectRefused(data, { entry: "c", reason: "exceeds the limit of 250 bytes" }, { maxTotalBytes: 250 });
  });

  it("a highly compressible 10 MiB entry against a 1 MiB budget", async () => {
    const data = await archiveOf(format, [file("bomb", "\0".repeat(10 * 1024 * 1024))]);
    if (format !== "tar") expect(data.length).toBeLessThan(64 * 1024);
    // tar.gz hits the gunzip cap (no entry yet); tar and zip hit the entry's declared size.
    const want = format === "tgz" ? { reason: "decompressed archive is larger than" } : { entry: "bomb", reason: "exceeds the limit of 1048576 bytes" };
    await expectRefused(data, want, { maxTotalBytes: 1024 * 1024 });
  });

  it("a symlink that stays inside, and a tar made with `tar -C dir .`, are accepted", async () => {
    const data = await archiveOf(format, [
      { name: "./", type: "directory" },
      { name: "./sub/", type: "directory" },
      file("./sub/f"),
      { name: "./sub/up", type: "symlink", target: "../sub/./f" },
      { name: "./self", type: "symlink", target: "." },
    ]);
    expect(await listArchive(data)).toEqual([
      { path: "sub", type: "directory", size: 0, mode: 0o755 },
      { path: "sub/f", type: "file", size: 1, mode: 0o644 },
      { path: "sub/up", type: "symlink", size: 0, mode: 0o777, linkTarget: "../sub/./f" },
      { path: "self", type: "symlink", size: 0, mode: 0o777, linkTarget: "." },
    ]);
  });
});

describe("refused input that is not an archive", () => {
  it("empty input", async () => {
    await expectRefused(new Uint8Array(0), { reason: "not a tar or zip archive (empty input)" });
  });

  it("random garbage", async () => {
    // Deterministic bytes, checked not to start with any magic number.
    let seed = 42;
    const garbage = Uint8Array.from({ length: 4096 }, () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 24) & 0xff);
    expect([garbage[0], garbage[1]]).not.toEqual([0x1f, 0x8b]);
    await expectRefused(garbage, { reason: "not a tar or zip archive" });
  });

  it("text", async () => {
    await expectRefused(new TextEncoder().encode("resource \"null_resource\" \"x\" {}\n".repeat(50)), { reason: "not a tar or zip archive" });
  });

  it("garbage behind a zip signature", async () => {
    const data = Buffer.concat([Buffer.from("PK\x03\x04"), Buffer.alloc(2000, 0x41)]);
    await expectRefused(data, { reason: "end of central directory not found" });
  });

  it("garbage behind a gzip signature", async () => {
    const data = Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0]), Buffer.alloc(2000, 0x41)]);
    await expectRefused(data, { reason: /gzip data/ });
  });

  it("garbage with a ustar magic", async () => {
    const data = Buffer.alloc(1024, 0x41);
    data.write("ustar\u000000", 257, "latin1");
    await expectRefused(data, { reason: "checksum mismatch" });
  });

  it("a gzip that does not hold a tar", async () => {
    const { gzipSync } = await import("node:zlib");
    await expectRefused(gzipSync(Buffer.from("hello world ".repeat(100))), { reason: "gzip data does not contain a tar archive" });
    await expectRefused(gzipSync(zipOf([file("a")])), { reason: "gzip data does not contain a tar archive" });
  });
});

describe("truncated archives", () => {
  it("tar cut inside a file's data", async () => {
    const tar = await tarOf([file("a", "x".repeat(2000))]);
    await expectRefused(tar.subarray(0, 512 + 1000), { entry: "a", reason: "truncated tar archive" });
  });

  it("tar cut inside a header", async () => {
    const tar = await tarOf([file("a", "x"), file("b", "y")]);
    await expectRefused(tar.subarray(0, 1024 + 300), { reason: "truncated tar archive" });
  });

  it("tar cut at an entry boundary (no end-of-archive marker)", async () => {
    const tar = await tarOf([file("a", "x"), file("b", "y")]);
    await expectRefused(tar.subarray(0, 1024), { reason: "no end-of-archive marker" });
  });

  it("tar.gz cut short", async () => {
    const { gzipSync } = await import("node:zlib");
    const tgz = gzipSync(await tarOf([file("a", "some text ".repeat(1000))]));
    await expectRefused(tgz.subarray(0, tgz.length - 20), { reason: "truncated gzip data" });
  });

  it("zip cut short", async () => {
    const zip = zipOf([file("a", "some text ".repeat(1000))]);
    await expectRefused(zip.subarray(0, zip.length - 10), { reason: "end of central directory not found" });
    await expectRefused(zip.subarray(0, 100), { reason: "end of central directory not found" });
  });

  it("an archive is never half-accepted: a bad last entry writes none of the good ones", async () => {
    for (const format of FORMATS) {
      const specs = [{ name: "ok/", type: "directory" as const }, ...Array.from({ length: 50 }, (_, i) => file(`ok/f${i}`)), file("../evil")];
      await expectRefused(await archiveOf(format, specs), { entry: "../evil", reason: "escapes" });
    }
  });
});

describe("ArchiveError", () => {
  it("names the entry and the reason", () => {
    const e = new ArchiveError("path escapes the archive root", "../evil");
    expect(e.message).toBe('entry "../evil": path escapes the archive root');
    expect(e.entry).toBe("../evil");
    expect(e).toBeInstanceOf(Error);
    expect(new ArchiveError("not a tar or zip archive").entry).toBeUndefined();
  });

  it("keeps control characters in a name visible", () => {
    expect(new ArchiveError("bad", "a\nb\0").message).toBe('entry "a\\nb\\u0000": bad');
  });
});
