// The shape the archive would leave on disk, built before anything is written, so that every
// rule about how entries relate to each other (duplicates, writing through a symlink, links
// that escape via other links) is decided on the whole archive.
//
// A trie rather than a map of joined paths: with names up to 4 KiB deep, joining or hashing
// every prefix of every entry would be quadratic, which a hostile archive could exploit.
import { ArchiveError } from "./errors.js";
import { foldPath } from "./paths.js";

export type NodeKind = "file" | "directory" | "symlink";

interface Node {
  kind: NodeKind;
  /** False for a directory that exists only because a deeper entry needs it. */
  explicit: boolean;
  seg: string;
  parent?: Node;
  /** The stored name of the entry that created the node, for errors. */
  name: string;
  /** Symlinks only: "/"-separated and relative (absolute targets are refused before this). */
  target?: string;
  /**
   * Keyed by folded segment: what macOS or Windows would open. One node per key is enough,
   * because add() refuses every case-variant pair except two directories, which it merges.
   */
  children?: Map<string, Node>;
}

/** Linux's limit on links followed while resolving one path. */
const MAX_LINK_HOPS = 40;
/** Total path steps spent resolving all symlinks; honest archives use a tiny fraction. */
const MAX_RESOLVE_STEPS = 1_000_000;

function pathOf(node: Node): string {
  const segs: string[] = [];
  for (let n: Node | undefined = node; n?.parent; n = n.parent) segs.push(n.seg);
  return segs.reverse().join("/");
}

function childOf(dir: Node, seg: string): Node | undefined {
  return dir.children?.get(foldPath(seg));
}

function attach(dir: Node, node: Node): void {
  (dir.children ??= new Map()).set(foldPath(node.seg), node);
}

export class EntryTree {
  private readonly root: Node = { kind: "directory", explicit: true, seg: "", name: "" };
  private readonly symlinks: Node[] = [];

  /** `path` is normalised and non-empty; `name` is the stored name, for errors. */
  add(path: string, kind: NodeKind, name: string, target?: string): void {
    const segs = path.split("/");
    let dir = this.root;
    for (let i = 0; i < segs.length - 1; i++) {
      const seg = segs[i]!;
      const child = childOf(dir, seg);
      if (child === undefined) {
        const implied: Node = { kind: "directory", explicit: false, seg, parent: dir, name };
        attach(dir, implied);
        dir = implied;
        continue;
      }
      if (child.kind !== "directory") {
        const where = `${JSON.stringify(pathOf(child))}${child.seg === seg ? "" : " on a case-insensitive filesystem"}`;
        // The classic escape: "link" -> somewhere, then "link/x" writes through it.
        if (child.kind === "symlink") throw new ArchiveError(`path goes through the symlink ${where}`, name);
        throw new ArchiveError(`parent ${where} is a file`, name);
      }
      dir = child;
    }

    const seg = segs[segs.length - 1]!;
    const existing = childOf(dir, seg);
    if (existing === undefined) {
      const node: Node = { kind, explicit: true, seg, parent: dir, name, ...(target === undefined ? {} : { target }) };
      attach(dir, node);
      if (kind === "symlink") this.symlinks.push(node);
      return;
    }
    if (existing.kind === "directory" && kind === "directory") {
      // A directory listed after files inside it, or two spellings of one directory on a
      // case-insensitive filesystem: mkdir copes with both.
      if (!existing.explicit || existing.seg !== seg) {
        existing.explicit = true;
        return;
      }
      throw new ArchiveError("duplicate entry", name);
    }
    if (existing.seg !== seg) throw new ArchiveError(`conflicts with ${JSON.stringify(pathOf(existing))} on a case-insensitive filesystem`, name);
    if (existing.explicit) throw new ArchiveError("duplicate entry", name);
    throw new ArchiveError(`a ${kind} cannot replace the directory created for ${JSON.stringify(existing.name)}`, name);
  }

  /**
   * Follows every symlink's target through the links the archive creates, the way the kernel
   * would after extraction. A lexical check alone is not enough: with "d/s" -> "../x", the
   * target "d/s/../.." looks like "." but resolves to the parent of the root.
   */
  checkSymlinks(): void {
    let budget = MAX_RESOLVE_STEPS;
    for (const link of this.symlinks) {
      const at: (Node | undefined)[] = [];
      for (let n = link.parent; n?.parent; n = n.parent) at.push(n);
      at.reverse();
      const pending = link.target!.split("/").reverse();
      let hops = 0;
      while (pending.length > 0) {
        if (--budget < 0) throw new ArchiveError("symlinks are too complex to verify", link.name);
        const seg = pending.pop()!;
        if (seg === "" || seg === ".") continue;
        if (seg === "..") {
          if (at.length === 0) throw new ArchiveError(`symlink target ${JSON.stringify(link.target)} escapes the archive root through other symlinks`, link.name);
          at.pop();
          continue;
        }
        // Below a component the archive does not create, nothing can be followed: the kernel
        // would fail there, so treating the rest lexically only errs on the safe side.
        const dir = at.length === 0 ? this.root : at[at.length - 1];
        const child = dir === undefined ? undefined : childOf(dir, seg);
        if (child?.kind === "symlink") {
          if (++hops > MAX_LINK_HOPS) throw new ArchiveError(`symlink target ${JSON.stringify(link.target)} goes through too many symlinks`, link.name);
          pending.push(...child.target!.split("/").reverse());
        } else {
          at.push(child);
        }
      }
    }
  }
}
