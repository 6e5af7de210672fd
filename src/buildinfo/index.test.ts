import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { coderCommand, nodeFlags, proxyCommand } from "./index.js";

const root = new URL("../../", import.meta.url);

describe("nodeFlags", () => {
  it("are what every way of starting coder passes to node, except OpenSSH's ProxyCommand", () => {
    expect(nodeFlags.length).toBeGreaterThan(0);
    expect(coderCommand.slice(1, 1 + nodeFlags.length)).toEqual(nodeFlags);
    expect(proxyCommand).toEqual([coderCommand[0], coderCommand.at(-1)]);
    const [shebang, exec] = readFileSync(new URL("bin/coder.js", root), "utf8").split("\n");
    expect(shebang).toBe("#!/bin/sh");
    expect(exec).toBe(`":" //; exec node ${nodeFlags.join(" ")} "$0" "$@"`);
    const scripts = (JSON.parse(readFileSync(new URL("package.json", root), "utf8")) as { scripts: Record<string, string> }).scripts;
    expect(scripts.start).toContain(`node ${nodeFlags.join(" ")} bin/coder.js server`);
    expect(scripts.bench).toContain(`node ${nodeFlags.join(" ")} dist-bench/`);
  });

  it("reach node when bin/coder.js runs as a program (sh execs node with them)", async () => {
    const { execFileSync } = await import("node:child_process");
    const help = execFileSync(new URL("bin/coder.js", root).pathname, ["--help"], { encoding: "utf8" });
    expect(help).toContain("Usage: coder");
  });

  it("are accepted by this node", async () => {
    const { execFileSync } = await import("node:child_process");
    expect(execFileSync(process.execPath, [...nodeFlags, "-e", "process.stdout.write('ok')"], { encoding: "utf8" })).toBe("ok");
  });
});
