import { describe, expect, it } from "vitest";
import { GroupCommit } from "./group-commit.js";

describe("GroupCommit", () => {
  it("writes the first call at once and groups what arrives during a write", async () => {
    const writes: number[][] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const gc = new GroupCommit<number, number>(async (items) => {
      writes.push(items);
      if (writes.length === 1) await gate;
      return items.map((i) => i * 10);
    });
    const first = gc.submit(1);
    const rest = [gc.submit(2), gc.submit(3), gc.submit(4)];
    release();
    expect(await first).toBe(10);
    expect(await Promise.all(rest)).toEqual([20, 30, 40]);
    expect(writes).toEqual([[1], [2, 3, 4]]);
  });

  it("fails every call of a failed write and goes on with the next", async () => {
    let fail = true;
    const gc = new GroupCommit<number, number>(async (items) => {
      if (fail) {
        fail = false;
        throw new Error("database gone");
      }
      return items;
    });
    await expect(gc.submit(1)).rejects.toThrow("database gone");
    expect(await gc.submit(2)).toBe(2);
  });

  it("splits a long queue into batches of at most maxBatch", async () => {
    const sizes: number[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const gc = new GroupCommit<number, number>(async (items) => {
      sizes.push(items.length);
      if (sizes.length === 1) await gate;
      return items;
    }, 3);
    const all = Array.from({ length: 8 }, (_, i) => gc.submit(i));
    release();
    expect(await Promise.all(all)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(sizes).toEqual([1, 3, 3, 1]);
  });
});
