import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { coderCommand, nodeFlags } from "./index.js";

const root = new URL("../../", import.meta.url);

describe("nodeFlags", () => {
  it("are what every way of starting coder passes to node", () => {
    expect(nodeFlags.length).toBeGreaterThan(0);
    expect(coderCommand.slice(1, 1 + nodeFlags.length)).toEqual(nodeFlags);
    const shebang = readFileSync(new URL("bin/coder.js", root), "utf8").split("\n")[0];
    expect(shebang).toBe(`#!/usr/bin/env -S node ${nodeFlags.join(" ")}`);
    const scripts = (JSON.parse(readFileSync(new URL("package.json", root), "utf8")) as { scripts: Record<string, string> }).scripts;
    expect(scripts.start).toContain(`node ${nodeFlags.join(" ")} bin/coder.js server`);
    expect(scripts.bench).toContain(`node ${nodeFlags.join(" ")} dist-bench/`);
  });

  it("are accepted by this node", async () => {
    const { execFileSync } = await import("node:child_process");
    expect(execFileSync(process.execPath, [...nodeFlags, "-e", "process.stdout.write('ok')"], { encoding: "utf8" })).toBe("ok");
  });
});
