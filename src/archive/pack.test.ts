// The happy path end to end: `coder templates push` packs, coderd lists, the provisioner extracts.
import { createServer } from "node:net";
import { chmod, lstat, mkdir, readFile, readlink, rm, stat, symlink, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ArchiveError, extractArchive, listArchive, packDirectory, type ArchiveEntry } from "./index.js";
import { zipOf } from "./testutil/builders.js";
import { makeSandbox, tree, type Sandbox } from "./testutil/sandbox.js";

let sb: Sandbox;
let src: string;
beforeEach(async () => {
  sb = await makeSandbox();
  src = join(sb.root, "template");
  await mkdir(src);
});
afterEach(async () => {
  await sb.cleanup();
});

const binary = Uint8Array.from({ length: 100_000 }, (_, i) => (i * 7919) & 0xff);
const longDir = `modules/${"m".repeat(70)}`;
const longFile = `${longDir}/${"f".repeat(70)}.tf`;

/** A typical template: nested modules, a script, links inside the tree, odd names. */
async function writeTemplate(dir: string): Promise<void> {
  const w = async (rel: string, content: string | Uint8Array, mode = 0o644): Promise<void> => {
    await mkdir(join(dir, rel, ".."), { recursive: true });
    await writeFile(join(dir, rel), content);
    await chmod(join(dir, rel), mode);
  };
  await w("main.tf", 'resource "coder_agent" "main" {}\n');
  await w("README.md", "# template\n");
  await w("scripts/start.sh", "#!/bin/sh\nexec code-server\n", 0o755);
  await w("scripts/lib.sh", "helper() { :; }\n", 0o600);
  await w("modules/net/main.tf", "variable \"cidr\" {}\n");
  await w("images/logo.png", binary);
  await w("ünïcödé.txt", "utf-8 name\n");
  await w(longFile, "long path\n");
  await w(".git/HEAD", "ref: refs/heads/main\n");
  await mkdir(join(dir, "empty"));
  await symlink("../../main.tf", join(dir, "modules/net/root.tf"));
  await symlink("modules/net", join(dir, "net"));
  await symlink("missing-but-inside", join(dir, "dangling"));
}

const ignoreGit = (rel: string): boolean => rel === ".git";

const EXPECTED: ArchiveEntry[] = [
  { path: "README.md", type: "file", size: 11, mode: 0o644 },
  { path: "dangling", type: "symlink", size: 0, mode: 0o777, linkTarget: "missing-but-inside" },
  { path: "empty", type: "directory", size: 0, mode: 0o755 },
  { path: "images", type: "directory", size: 0, mode: 0o755 },
  { path: "images/logo.png", type: "file", size: binary.length, mode: 0o644 },
  { path: "main.tf", type: "file", size: 33, mode: 0o644 },
  { path: "modules", type: "directory", size: 0, mode: 0o755 },
  { path: longDir, type: "directory", size: 0, mode: 0o755 },
  { path: longFile, type: "file", size: 10, mode: 0o644 },
  { path: "modules/net", type: "directory", size: 0, mode: 0o755 },
  { path: "modules/net/main.tf", type: "file", size: 19, mode: 0o644 },
  { path: "modules/net/root.tf", type: "symlink", size: 0, mode: 0o777, linkTarget: "../../main.tf" },
  { path: "net", type: "symlink", size: 0, mode: 0o777, linkTarget: "modules/net" },
  { path: "scripts", type: "directory", size: 0, mode: 0o755 },
  { path: "scripts/lib.sh", type: "file", size: 16, mode: 0o644 },
  { path: "scripts/start.sh", type: "file", size: 27, mode: 0o755 },
  { path: "ünïcödé.txt", type: "file", size: 11, mode: 0o644 },
];

/** dest holds exactly src (minus .git): same tree, bytes, link targets and execute bits. */
async function expectSameTree(dest: string): Promise<void> {
  const want = (await tree(src)).filter((p) => !p.startsWith(".git/"));
  expect(await tree(dest)).toEqual(want);
  for (const rel of want) {
    const a = await lstat(join(src, rel));
    const b = await lstat(join(dest, rel));
    if (a.isDirectory()) {
      expect(b.isDirectory()).toBe(true);
      expect(b.mode & 0o7777).toBe(0o755);
    } else if (a.isSymbolicLink()) {
      expect(b.isSymbolicLink()).toBe(true);
      expect(await readlink(join(dest, rel))).toBe(await readlink(join(src, rel)));
    } else {
      expect(b.isFile()).toBe(true);
      expect(Buffer.compare(await readFile(join(dest, rel)), await readFile(join(src, rel)))).toBe(0);
      expect(b.mode & 0o7777).toBe(a.mode & 0o100 ? 0o755 : 0o644);
    }
  }
}

describe("packDirectory → listArchive → extractArchive", () => {
  it("round-trips a template byte for byte, executable bit included", async () => {
    await writeTemplate(src);
    const tar = await packDirectory(src, { ignore: ignoreGit });
    expect(await listArchive(tar)).toEqual(EXPECTED);
    const dest = join(sb.root, "work", "job-1");
    expect(await extractArchive(tar, dest)).toEqual(EXPECTED);
    await expectSameTree(dest);
    expect((await stat(join(dest, "scripts/start.sh"))).mode & 0o777).toBe(0o755);
    // A link inside the tree resolves to the extracted file, not to anything outside.
    expect(await readFile(join(dest, "net/root.tf"), "utf8")).toBe('resource "coder_agent" "main" {}\n');
  });

  it("round-trips through gzip", async () => {
    await writeTemplate(src);
    const tgz = gzipSync(await packDirectory(src, { ignore: ignoreGit }));
    expect(await listArchive(tgz)).toEqual(EXPECTED);
    await extractArchive(tgz, join(sb.root, "dest"));
    await expectSameTree(join(sb.root, "dest"));
  });

  it("is deterministic: same bytes twice, whatever the mtimes and group bits", async () => {
    await writeTemplate(src);
    const first = await packDirectory(src, { ignore: ignoreGit });
    expect((await packDirectory(src, { ignore: ignoreGit })).equals(first)).toBe(true);
    await utimes(join(src, "main.tf"), new Date(2001, 1, 1), new Date(2001, 1, 1));
    await chmod(join(src, "README.md"), 0o664);
    expect((await packDirectory(src, { ignore: ignoreGit })).equals(first)).toBe(true);
    await chmod(join(src, "README.md"), 0o744);
    expect((await packDirectory(src, { ignore: ignoreGit })).equals(first)).toBe(false);
  });

  it("skips only what ignore() says, with /-separated relative paths", async () => {
    await writeTemplate(src);
    const seen: string[] = [];
    const all = await listArchive(
      await packDirectory(src, {
        ignore: (rel) => {
          seen.push(rel);
          return rel === "images" || rel.endsWith(".md");
        },
      }),
    );
    expect(seen).toContain("modules/net/main.tf");
    expect(seen).not.toContain("images/logo.png"); // not descended into
    expect(all.map((e) => e.path)).toContain(".git/HEAD");
    expect(all.map((e) => e.path).filter((p) => p.startsWith("images") || p.endsWith(".md"))).toEqual([]);
  });

  it("packs an empty directory to an empty archive", async () => {
    expect(await listArchive(await packDirectory(src))).toEqual([]);
  });
});

describe("packDirectory refuses", () => {
  it.each([
    ["an absolute symlink", "/etc", "is an absolute path"],
    ["a symlink out of the directory", "../outside", "escapes the archive root"],
    ["a deeper symlink out of the directory", "a/../../outside", "escapes the archive root"],
  ])("%s", async (_title, target, reason) => {
    await writeFile(join(src, "ok.tf"), "x");
    await symlink(target, join(src, "link"));
    const err = await packDirectory(src).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain('"link"');
    expect((err as Error).message).toContain(reason);
    // The same link is fine once ignored.
    expect(await listArchive(await packDirectory(src, { ignore: (p) => p === "link" }))).toHaveLength(1);
  });

  it("a symlink that escapes through another symlink", async () => {
    await mkdir(join(src, "d"));
    await symlink("../x", join(src, "d", "s"));
    await symlink("d/s/../..", join(src, "t"));
    await expect(packDirectory(src)).rejects.toThrow(/"t".*escapes the archive root through other symlinks/);
  });

  it("names that the server would refuse", async () => {
    await writeFile(join(src, "C:evil"), "x");
    await expect(packDirectory(src)).rejects.toThrow('cannot pack "C:evil": absolute path');
    await rm(join(src, "C:evil"));
    await writeFile(join(src, "Makefile"), "x");
    await writeFile(join(src, "makefile"), "x");
    await expect(packDirectory(src)).rejects.toThrow('cannot pack "makefile": conflicts with "Makefile" on a case-insensitive filesystem');
  });

  it("a socket, naming it", async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(join(src, "agent.sock"), resolve));
    try {
      await expect(packDirectory(src)).rejects.toThrow('cannot pack "agent.sock": sockets are not supported');
      expect(await packDirectory(src, { ignore: (p) => p.endsWith(".sock") })).toBeInstanceOf(Buffer);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("something that is not a directory", async () => {
    await writeFile(join(src, "f"), "x");
    await expect(packDirectory(join(src, "f"))).rejects.toThrow("is not a directory");
  });
});

describe("extractArchive destinations", () => {
  it("refuses a non-empty destination, writing nothing", async () => {
    const tar = await packDirectory(src);
    const dest = join(sb.root, "dest");
    await mkdir(dest);
    await writeFile(join(dest, "keep"), "mine");
    const err = await extractArchive(tar, dest).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(ArchiveError);
    expect((err as Error).message).toContain("is not empty");
    expect(await tree(dest)).toEqual(["keep"]);
  });

  it("refuses a destination that is a file or a symlink", async () => {
    const tar = await packDirectory(src);
    await writeFile(join(sb.root, "file"), "");
    await expect(extractArchive(tar, join(sb.root, "file"))).rejects.toThrow("is not a directory");
    await symlink(sb.outside, join(sb.root, "link"));
    await expect(extractArchive(tar, join(sb.root, "link"))).rejects.toThrow("is not a directory");
  });

  it("creates a missing destination, private to its owner", async () => {
    await writeFile(join(src, "a"), "x");
    const dest = join(sb.root, "a", "b", "c");
    await extractArchive(await packDirectory(src), dest);
    expect((await stat(dest)).mode & 0o777).toBe(0o700);
    expect(await readFile(join(dest, "a"), "utf8")).toBe("x");
  });

  it("extracts a zip with directories, an executable, a symlink and both compression methods", async () => {
    for (const level of [0, 6] as const) {
      const zip = zipOf(
        [
          { name: "bin/", type: "directory" },
          { name: "bin/run", content: "#!/bin/sh\n", mode: 0o755 },
          { name: "conf/app.yaml", content: "a: 1\n" },
          { name: "run", type: "symlink", target: "bin/run" },
        ],
        level,
      );
      const dest = join(sb.root, `zip-${level}`);
      await extractArchive(zip, dest);
      expect(await tree(dest)).toEqual(["bin/", "bin/run", "conf/", "conf/app.yaml", "run"]);
      expect((await stat(join(dest, "bin/run"))).mode & 0o777).toBe(0o755);
      expect((await stat(join(dest, "conf/app.yaml"))).mode & 0o777).toBe(0o644);
      expect(await readlink(join(dest, "run"))).toBe("bin/run");
      expect(await readFile(join(dest, "run"), "utf8")).toBe("#!/bin/sh\n");
    }
  });

  it("accepts a directory entry listed after files inside it", async () => {
    const zip = zipOf([{ name: "d/f", content: "x" }, { name: "d/", type: "directory" }]);
    await extractArchive(zip, join(sb.root, "dest"));
    expect(await tree(join(sb.root, "dest"))).toEqual(["d/", "d/f"]);
  });
});
