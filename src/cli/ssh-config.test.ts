import { describe, expect, it } from "vitest";
import { BLOCK_END, BLOCK_START, removeBlock, renderBlock, shellQuote, upsertBlock } from "./ssh-config.js";

const block = renderBlock([{ alias: "coder.dev", target: "alice/dev" }], ["/usr/bin/node", "/opt/coder/bin/coder.js", "ssh", "--stdio"], ["ForwardAgent yes"]);

describe("ssh config block", () => {
  it("renders a Host entry with the ProxyCommand and extra options", () => {
    expect(block).toContain("Host coder.dev\n");
    expect(block).toContain("  ProxyCommand /usr/bin/node /opt/coder/bin/coder.js ssh --stdio alice/dev\n");
    expect(block).toContain("  ForwardAgent yes\n");
    expect(block.startsWith(BLOCK_START)).toBe(true);
    expect(block.trimEnd().endsWith(BLOCK_END)).toBe(true);
  });

  it("keeps the user's config around it, and is idempotent", () => {
    const user = "Host github.com\n  User git\n";
    const once = upsertBlock(user, block);
    expect(once.startsWith(user)).toBe(true);
    expect(upsertBlock(once, block)).toBe(once);
    const after = once + "\nHost other\n  Port 2222\n";
    const changed = upsertBlock(after, renderBlock([], ["coder"], []));
    expect(changed).toContain("Host other\n  Port 2222\n");
    expect(changed).not.toContain("coder.dev");
  });

  it("removes exactly what it added", () => {
    const user = "Host github.com\n  User git\n";
    expect(removeBlock(upsertBlock(user, block))).toBe(user);
    expect(removeBlock(upsertBlock("", block))).toBe("");
    expect(removeBlock(user)).toBe(user);
  });

  it("refuses a block whose end marker was deleted", () => {
    expect(() => upsertBlock(`${BLOCK_START}\nHost x\n`, block)).toThrow(/without/);
  });

  it("quotes for the shell", () => {
    expect(shellQuote("/home/a b/coder")).toBe("'/home/a b/coder'");
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    expect(shellQuote("alice/dev.main")).toBe("alice/dev.main");
  });
});
