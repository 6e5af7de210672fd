// Format-level details: detection, tar and zip header tricks that need hand-made archives,
// decompression bombs with lying headers, and interoperability with the usual tools.
import { execFileSync } from "node:child_process";
import { lstat, mkdir, readFile, readlink, stat, symlink, writeFile, chmod } from "node:fs/promises";
import { join } from "node:path";
import { deflateRawSync, gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { detectFormat, extractArchive, listArchive, packDirectory } from "./index.js";
import { deflateBomb, gzipOfRaw, paxEntry, rawTar, rawZip, tarEntry, tarHeader, tarOf, zipOf } from "./testutil/builders.js";
import { expectRefused, makeSandbox, tree } from "./testutil/sandbox.js";

const MiB = 1024 * 1024;
const enc = new TextEncoder();

describe("detectFormat", () => {
  it("recognises tar, old-style tar, zip, empty zip and gzip by content", async () => {
    expect(detectFormat(await tarOf([{ name: "a", content: "x" }]))).toBe("tar");
    expect(detectFormat(rawTar(tarEntry({ name: "a", magic: "v7" }, "x")))).toBe("tar");
    expect(detectFormat(zipOf([{ name: "a", content: "x" }]))).toBe("zip");
    expect(detectFormat(Buffer.concat([Buffer.from("PK\x05\x06"), Buffer.alloc(18)]))).toBe("zip");
    expect(detectFormat(gzipSync(await tarOf([])))).toBe("tar");
    expect(detectFormat(Buffer.alloc(10240))).toBe("tar"); // an empty tar: only the end marker
  });

  it("recognises nothing else", () => {
    expect(detectFormat(new Uint8Array(0))).toBeUndefined();
    expect(detectFormat(Buffer.alloc(512))).toBeUndefined();
    expect(detectFormat(enc.encode("hello"))).toBeUndefined();
    expect(detectFormat(rawTar(tarEntry({ name: "a", magic: "v7", badChecksum: true }, "x")))).toBeUndefined();
  });

  it("lists empty archives as empty", async () => {
    expect(await listArchive(Buffer.concat([Buffer.from("PK\x05\x06"), Buffer.alloc(18)]))).toEqual([]);
    expect(await listArchive(Buffer.alloc(10240))).toEqual([]);
    expect(await listArchive(gzipSync(Buffer.alloc(1024)))).toEqual([]);
  });
});

describe("tar headers", () => {
  it("a NUL byte in a pax path", async () => {
    await expectRefused(rawTar(paxEntry({ path: "a\0b" }), tarEntry({ name: "innocent" }, "x")), { entry: "a\0b", reason: "name contains a NUL byte" });
  });

  it("an empty name", async () => {
    await expectRefused(rawTar(tarEntry({ name: "" }, "x")), { entry: "", reason: "empty name" });
  });

  it("a pax path overrides a harmless header name", async () => {
    await expectRefused(rawTar(paxEntry({ path: "../evil" }), tarEntry({ name: "innocent" }, "x")), { entry: "../evil", reason: "path escapes the archive root" });
  });

  it("a GNU long name", async () => {
    const long = `../${"a".repeat(200)}`;
    await expectRefused(rawTar(tarEntry({ name: "././@LongLink", typeflag: "L", magic: "gnu" }, `${long}\0`), tarEntry({ name: "short", magic: "gnu" }, "x")), {
      entry: long,
      reason: "path escapes the archive root",
    });
  });

  it("a pax linkpath overrides a harmless link target", async () => {
    await expectRefused(rawTar(paxEntry({ linkpath: "/etc" }), tarEntry({ name: "l", typeflag: "2", linkname: "ok" })), { entry: "l", reason: "absolute path" });
  });

  it("a ustar prefix that climbs", async () => {
    await expectRefused(rawTar(tarEntry({ name: "x", prefix: "../.." }, "x")), { entry: "../../x", reason: "path escapes the archive root" });
  });

  it("unknown and sparse entry types", async () => {
    await expectRefused(rawTar(tarEntry({ name: "s", typeflag: "S" }, "x")), { entry: "s", reason: "GNU sparse file entries are not allowed" });
    await expectRefused(rawTar(paxEntry({ "GNU.sparse.major": "1", "GNU.sparse.minor": "0" }), tarEntry({ name: "s" }, "x")), { entry: "s", reason: "GNU sparse file" });
    await expectRefused(rawTar(tarEntry({ name: "z", typeflag: "Z" })), { entry: "z", reason: "unknown tar entry type 'Z'" });
  });

  it("a declared size far over the limit, with no data behind it", async () => {
    const huge = 2 * 1024 * MiB;
    await expectRefused(rawTar(tarHeader({ name: "big", size: huge })), { entry: "big", reason: `file is ${huge} bytes, more than the limit of ${100 * MiB}` });
    const base256 = Buffer.alloc(12);
    base256[0] = 0x80;
    base256.writeUIntBE(10 * 1024 * MiB, 6, 6);
    await expectRefused(rawTar(tarHeader({ name: "big256", sizeField: base256 })), { entry: "big256", reason: "file is 10737418240 bytes" });
    await expectRefused(rawTar(paxEntry({ size: "99999999999" }), tarHeader({ name: "bigpax" })), { entry: "bigpax", reason: "file is 99999999999 bytes" });
  });

  it("malformed numbers and headers", async () => {
    const negative = Buffer.alloc(12, 0xff);
    await expectRefused(rawTar(tarHeader({ name: "neg", sizeField: negative })), { entry: "neg", reason: "invalid size field" });
    await expectRefused(rawTar(tarHeader({ name: "txt", sizeField: enc.encode("12abc") })), { entry: "txt", reason: "invalid size field" });
    await expectRefused(rawTar(paxEntry({ size: "0x10" }), tarHeader({ name: "hex" })), { entry: "hex", reason: "invalid pax size" });
    await expectRefused(rawTar(tarEntry({ name: "a" }, "x"), tarHeader({ name: "b", badChecksum: true })), { reason: "invalid tar header at offset 1024 (checksum mismatch)" });
    await expectRefused(rawTar(tarEntry({ name: "PaxHeader", typeflag: "x" }, "5 a=b\n99 broken\n")), { reason: "malformed pax header" });
    await expectRefused(rawTar(paxEntry({ path: "orphan" })), { reason: "extended header without an entry" });
    await expectRefused(Buffer.concat([tarEntry({ name: "a" }, "x"), Buffer.alloc(512), tarEntry({ name: "hidden" }, "x"), Buffer.alloc(1024)]), {
      reason: "after a zero block",
    });
    await expectRefused(rawTar(tarEntry({ name: Uint8Array.from([0x61, 0xff, 0xfe]) }, "x")), { entry: "a\ufffd\ufffd", reason: "name is not valid UTF-8" });
  });

  it("bounds the work a hostile but well-formed archive can cause", async () => {
    const deep = Array.from({ length: 65 }, (_, i) => `d${i}`).join("/");
    await expectRefused(rawTar(paxEntry({ path: deep }), tarEntry({ name: "x" }, "x")), { entry: deep, reason: "more than 64 levels deep" });
    // 600 links of 2,000 no-op steps each: more resolution work than any template needs.
    const busy = "./".repeat(2000);
    const links = Array.from({ length: 600 }, (_, i) => [paxEntry({ linkpath: busy }), tarEntry({ name: `l${i}`, typeflag: "2", linkname: "x" })]).flat();
    const started = Date.now();
    await expectRefused(rawTar(...links), { entry: "l499", reason: "symlinks are too complex to verify" });
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("accepts old-style, GNU and pax headers, and ignores global pax headers", async () => {
    const longName = `${"d".repeat(120)}/${"f".repeat(120)}`;
    const data = rawTar(
      paxEntry({ comment: "commit abc" }, true),
      tarEntry({ name: "old/", typeflag: "\0", magic: "v7", mode: 0o755 }),
      tarEntry({ name: "old/f", typeflag: "\0", magic: "v7" }, "v7"),
      tarEntry({ name: "././@LongLink", typeflag: "L", magic: "gnu" }, `${longName}\0`),
      tarEntry({ name: "truncated-name", magic: "gnu" }, "gnu"),
      paxEntry({ path: "ünï", mtime: "1.5" }),
      tarEntry({ name: "x" }, "pax"),
      tarEntry({ name: "f", prefix: "pre/fix" }, "prefix"),
      // Writers cut header names at 100 bytes, possibly inside a UTF-8 character; only the
      // name that counts has to be valid.
      paxEntry({ path: "é".repeat(60) }, false, Buffer.from("PaxHeaders/" + "é".repeat(60)).subarray(0, 100)),
      tarEntry({ name: Buffer.from("é".repeat(60)).subarray(0, 99) }, "cut"),
    );
    expect((await listArchive(data)).map((e) => e.path)).toEqual(["old", "old/f", longName, "ünï", "pre/fix/f", "é".repeat(60)]);
  });

  it("names the entry when a link target is not UTF-8", async () => {
    const badTarget = tarEntry({ name: "l", typeflag: "2", linkname: Uint8Array.from([0xff, 0xfe]) });
    await expectRefused(rawTar(badTarget), { entry: "l", reason: "symlink target is not valid UTF-8" });
    await expectRefused(rawZip([{ name: "zl", data: Uint8Array.from([0xff]), unixMode: 0o120777 }]), { entry: "zl", reason: "symlink target is not valid UTF-8" });
  });

  it("never keeps setuid, setgid or sticky bits, and keeps the owner's execute bit", async () => {
    const data = rawTar(
      tarEntry({ name: "suid", mode: 0o4755 }, "x"),
      tarEntry({ name: "sgid", mode: 0o2644 }, "x"),
      tarEntry({ name: "odd", mode: 0o1744 }, "x"),
      tarEntry({ name: "others", mode: 0o607 }, "x"),
      tarEntry({ name: "d/", typeflag: "5", mode: 0o7700 }),
    );
    expect((await listArchive(data)).map((e) => [e.path, e.mode])).toEqual([
      ["suid", 0o755],
      ["sgid", 0o644],
      ["odd", 0o755],
      ["others", 0o644],
      ["d", 0o755],
    ]);
    const sb = await makeSandbox();
    try {
      const dest = join(sb.root, "dest");
      await extractArchive(data, dest);
      for (const [name, mode] of [["suid", 0o755], ["sgid", 0o644], ["odd", 0o755], ["others", 0o644], ["d", 0o755]] as const) {
        expect((await stat(join(dest, name))).mode & 0o7777).toBe(mode);
      }
    } finally {
      await sb.cleanup();
    }
  });
});

describe("zip headers", () => {
  const content = enc.encode("hello, zip\n");

  it("accepts stored, deflated and zip64 entries", async () => {
    const data = rawZip(
      [
        { name: "stored", data: content },
        { name: "deflated", data: deflateRawSync(content), method: 8, content },
        { name: "zip64", data: deflateRawSync(content), method: 8, content, zip64: true },
      ],
      { zip64Eocd: true },
    );
    expect(await listArchive(data)).toEqual(["stored", "deflated", "zip64"].map((path) => ({ path, type: "file", size: content.length, mode: 0o644 })));
  });

  it("a declared size that lies low is stopped while inflating", async () => {
    const big = Buffer.alloc(10 * MiB);
    await expectRefused(rawZip([{ name: "bomb", data: deflateRawSync(big), method: 8, size: 100, content: big }]), {
      entry: "bomb",
      reason: "decompressed data is larger than the declared 100 bytes",
    });
  });

  it("a 1 GiB bomb with a lying header costs neither the time nor the memory to expand it", async () => {
    const raw = deflateBomb(1024);
    expect(raw.length).toBeLessThan(2 * MiB);
    const before = process.memoryUsage().rss;
    const started = Date.now();
    await expectRefused(rawZip([{ name: "bomb", data: raw, method: 8, size: 10, crc: 0 }]), { entry: "bomb", reason: "larger than the declared 10 bytes" });
    // An honest header is refused before inflating at all.
    await expectRefused(rawZip([{ name: "bomb", data: raw, method: 8, size: 1024 * MiB, crc: 0 }]), { entry: "bomb", reason: "more than the limit" });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(process.memoryUsage().rss - before).toBeLessThan(256 * MiB);
  });

  it("a 1 GiB gzip bomb is stopped at the gunzip cap", async () => {
    const before = process.memoryUsage().rss;
    await expectRefused(gzipOfRaw(deflateBomb(1024), 0), { reason: `decompressed archive is larger than ${2 * MiB} bytes` }, { maxTotalBytes: MiB });
    expect(process.memoryUsage().rss - before).toBeLessThan(256 * MiB);
  });

  it("lies and damage", async () => {
    await expectRefused(rawZip([{ name: "short", data: content, size: 1000, content }]), { entry: "short", reason: `data is ${content.length} bytes but the header declares 1000` });
    await expectRefused(rawZip([{ name: "long", data: deflateRawSync(content), method: 8, size: 3, content }]), { entry: "long", reason: "larger than the declared 3 bytes" });
    await expectRefused(rawZip([{ name: "crc", data: content, crc: 1234 }]), { entry: "crc", reason: "CRC-32 mismatch" });
    await expectRefused(rawZip([{ name: "enc", data: content, flags: 1 }]), { entry: "enc", reason: "encrypted entries are not supported" });
    await expectRefused(rawZip([{ name: "bz", data: content, method: 12 }]), { entry: "bz", reason: "unsupported compression method 12" });
    await expectRefused(rawZip([{ name: "good", localName: "../ev", data: content }]), { entry: "good", reason: "local header name does not match" });
    await expectRefused(rawZip([{ name: "cut", data: content, compressedSize: 1 << 30 }]), { entry: "cut", reason: "truncated zip archive" });
    await expectRefused(rawZip([{ name: "bad", data: Buffer.from([0xff, 0xff, 0xff]), method: 8, size: 5, crc: 0 }]), { entry: "bad", reason: "corrupt compressed data" });
    await expectRefused(rawZip([{ name: Uint8Array.from([0xc3, 0x28]), data: content }]), { entry: "\ufffd(", reason: "name is not valid UTF-8" });
    await expectRefused(rawZip([{ name: "a", data: content }, { name: "a", data: content }]), { entry: "a", reason: "duplicate entry" });
    await expectRefused(rawZip([{ name: "l", data: Buffer.alloc(5000, 0x61), unixMode: 0o120777 }]), { entry: "l", reason: "symlink target is longer than 4096 bytes" });
    const miscounted = rawZip([{ name: "a", data: content }, { name: "b", data: content }]);
    miscounted.writeUInt16LE(1, miscounted.length - 22 + 10);
    await expectRefused(miscounted, { reason: "central directory size does not match" });
  });

  it("keeps the execute bit from Unix attributes and treats backslashes as separators", async () => {
    const data = zipOf([
      { name: "bin\\run.sh", content: "#!/bin/sh\n", mode: 0o4755 },
      { name: "bin\\data", content: "d" },
    ]);
    expect(await listArchive(data)).toEqual([
      { path: "bin/run.sh", type: "file", size: 10, mode: 0o755 },
      { path: "bin/data", type: "file", size: 1, mode: 0o644 },
    ]);
  });
});

const hasTool = (tool: string): boolean => {
  try {
    execFileSync(tool, ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
};

async function makeSample(dir: string): Promise<void> {
  // Too long for a ustar name field, short enough to split into prefix and name.
  const deep = join(dir, "sub", "d".repeat(90));
  await mkdir(deep, { recursive: true });
  await writeFile(join(dir, "main.tf"), "terraform {}\n");
  await writeFile(join(dir, "run.sh"), "#!/bin/sh\necho hi\n");
  await chmod(join(dir, "run.sh"), 0o755);
  await writeFile(join(deep, `${"f".repeat(90)}.txt`), "long name\n");
  await symlink("../main.tf", join(dir, "sub", "main.tf"));
}

async function expectSameAsSample(src: string, dest: string): Promise<void> {
  expect(await tree(dest)).toEqual(await tree(src));
  for (const rel of await tree(src)) {
    if (rel.endsWith("/")) continue;
    const a = await lstat(join(src, rel));
    const b = await lstat(join(dest, rel));
    expect(b.isSymbolicLink()).toBe(a.isSymbolicLink());
    if (a.isSymbolicLink()) expect(await readlink(join(dest, rel))).toBe(await readlink(join(src, rel)));
    else {
      expect(await readFile(join(dest, rel))).toEqual(await readFile(join(src, rel)));
      expect(b.mode & 0o100).toBe(a.mode & 0o100);
    }
  }
}

describe.skipIf(!hasTool("tar"))("interoperability with tar(1)", () => {
  it.each(["gnu", "posix", "ustar"])("extracts `tar --format=%s -C dir .`", async (format) => {
    const sb = await makeSandbox();
    try {
      const src = join(sb.root, "src");
      await mkdir(src);
      await makeSample(src);
      const data = execFileSync("tar", [`--format=${format}`, "-C", src, "-cf", "-", "."], { maxBuffer: 64 * MiB });
      await extractArchive(data, join(sb.root, "dest"));
      await expectSameAsSample(src, join(sb.root, "dest"));
      await extractArchive(execFileSync("gzip", ["-c"], { input: data }), join(sb.root, "dest-gz"));
      await expectSameAsSample(src, join(sb.root, "dest-gz"));
    } finally {
      await sb.cleanup();
    }
  });

  it("writes what tar(1) extracts to the same tree", async () => {
    const sb = await makeSandbox();
    try {
      const src = join(sb.root, "src");
      const dest = join(sb.root, "dest");
      await mkdir(src);
      await mkdir(dest);
      await makeSample(src);
      execFileSync("tar", ["-C", dest, "-xf", "-"], { input: await packDirectory(src) });
      await expectSameAsSample(src, dest);
    } finally {
      await sb.cleanup();
    }
  });

  it("refuses what GNU tar writes with -P", async () => {
    const sb = await makeSandbox();
    try {
      await writeFile(join(sb.outside, "f"), "x");
      const data = execFileSync("tar", ["-P", "-cf", "-", join(sb.outside, "f")]);
      await expectRefused(data, { entry: join(sb.outside, "f"), reason: "absolute path" }, undefined);
    } finally {
      await sb.cleanup();
    }
  });
});

describe.skipIf(!hasTool("zip"))("interoperability with zip(1)", () => {
  it.each([[[]], [["-fz"]]])("extracts `zip -r -y %s`", async (extra) => {
    const sb = await makeSandbox();
    try {
      const src = join(sb.root, "src");
      await mkdir(src);
      await makeSample(src);
      execFileSync("zip", ["-q", "-r", "-y", ...extra, join(sb.root, "a.zip"), "."], { cwd: src });
      await extractArchive(await readFile(join(sb.root, "a.zip")), join(sb.root, "dest"));
      await expectSameAsSample(src, join(sb.root, "dest"));
    } finally {
      await sb.cleanup();
    }
  });
});
