// `coder ssh --stdio` is started by OpenSSH for every connection, so what it loads is its start-up
// time. The server-side parts (zod schemas) and the UDP addon (used only once a session is up on
// the relay) must stay out of that path.
import { execFileSync } from "node:child_process";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "../..");
const dist = (p: string) => pathToFileURL(resolve(root, "dist", p)).href;

/** Runs `code` (ESM) in a fresh node at the repository root and says which heavy dependencies got loaded. */
function loads(code: string): { zod: boolean; udx: boolean; ssh2: boolean } {
  const script = `
    import { createRequire } from "node:module";
    ${code}
    const cached = Object.keys(createRequire(import.meta.url).cache);
    process.stdout.write(JSON.stringify({
      zod: globalThis.__zod_globalRegistry !== undefined,
      udx: cached.some((f) => f.includes("/node_modules/udx-native/")),
      ssh2: cached.some((f) => f.includes("/node_modules/ssh2/")),
    }));`;
  return JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", cwd: root })) as { zod: boolean; udx: boolean; ssh2: boolean };
}

describe("coder ssh --stdio start-up", () => {
  it("loads neither zod, nor the UDP addon, nor the SSH client library", () => {
    const imports = ["cli/index.js", "cli/commands/ssh.js", "codersdk/agent-conn.js"].map((m) => `await import(${JSON.stringify(dist(m))});`).join("\n");
    expect(loads(imports)).toEqual({ zod: false, udx: false, ssh2: false });
  });

  it("would notice each of them (the check itself works)", () => {
    const code = `await import("zod"); await import("ssh2"); (await import(${JSON.stringify(dist("tailnet/udx/wire.js"))})).udx();`;
    expect(loads(code)).toEqual({ zod: true, udx: true, ssh2: true });
  });
});
