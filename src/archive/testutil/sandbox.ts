// Temporary directories for extraction tests, and the check that a refused archive left no trace.
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "vitest";
import { ArchiveError } from "../errors.js";
import { extractArchive, listArchive, type ArchiveLimits } from "../index.js";

export interface Sandbox {
  root: string;
  /** A sibling of the destinations: escapes land here, so it must stay empty. */
  outside: string;
  cleanup(): Promise<void>;
}

export async function makeSandbox(): Promise<Sandbox> {
  const root = await mkdtemp(join(tmpdir(), "coder-archive-test-"));
  const outside = join(root, "outside");
  await mkdir(outside);
  return { root, outside, cleanup: () => rm(root, { recursive: true, force: true }) };
}

/** Every path under dir, relative, sorted; directories end with "/". */
export async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        out.push(`${r}/`);
        await walk(r);
      } else out.push(r);
    }
  };
  await walk("");
  return out.sort();
}

export interface Refusal {
  /** The entry the error must name; omit for archive-level errors. */
  entry?: string;
  reason: string | RegExp;
}

function checkError(err: unknown, want: Refusal): void {
  expect(err).toBeInstanceOf(ArchiveError);
  const e = err as ArchiveError;
  if (typeof want.reason === "string") expect(e.reason).toContain(want.reason);
  else expect(e.reason).toMatch(want.reason);
  if (want.entry === undefined) {
    expect(e.entry).toBeUndefined();
  } else {
    expect(e.entry).toBe(want.entry);
    expect(e.message).toContain(JSON.stringify(want.entry));
  }
}

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error("expected the archive to be refused");
}

/**
 * The archive is refused by listArchive and by extractArchive with the same error, and
 * extraction wrote nothing: not into an existing empty destination, not by creating a missing
 * one, and not next to them.
 */
export async function expectRefused(data: Uint8Array, want: Refusal, limits?: Partial<ArchiveLimits>, sandbox?: Sandbox): Promise<ArchiveError> {
  const listed = await caught(listArchive(data, limits));
  checkError(listed, want);
  const sb = sandbox ?? (await makeSandbox());
  try {
    const existing = join(sb.root, "dest");
    await mkdir(existing);
    checkError(await caught(extractArchive(data, existing, limits)), want);
    checkError(await caught(extractArchive(data, join(sb.root, "missing", "dest"), limits)), want);
    expect(await tree(sb.root)).toEqual(["dest/", "outside/"]);
  } finally {
    if (!sandbox) await sb.cleanup();
  }
  return listed as ArchiveError;
}
