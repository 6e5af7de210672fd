// The shape the archive would leave on disk, built before anything is written, so that every
// rule about how entries relate to each other (duplicates, writing through a symlink, links
// that escape via other links) is decided on the whole archive.
import { ArchiveError } from "./errors.js";
import { foldPath, parentSegments } from "./paths.js";

export type NodeKind = "file" | "directory" | "symlink";

interface Node {
  kind: NodeKind;
  /** False for a directory that exists only because a deeper entry needs it. */
  explicit: boolean;
  /** Slash-separated, relative (absolute targets are refused before they get here). */
  target?: string;
  name: string;
}

/** Linux's limit on links followed while resolving one path. */
const MAX_LINK_HOPS = 40;

export class EntryTree {
  private readonly nodes = new Map<string, Node>();
  /** Folded path to the first exact path seen with that fold. */
  private readonly folded = new Map<string, string>();

  /** `path` is normalised and non-empty; `name` is the stored name, for errors. */
  add(path: string, kind: NodeKind, name: string, target?: string): void {
    const segs = path.split("/");
    for (let i = 1; i < segs.length; i++) {
      const prefix = segs.slice(0, i).join("/");
      const existing = this.lookup(prefix);
      if (existing === undefined) {
        this.insert(prefix, { kind: "directory", explicit: false, name });
      } else if (existing.node.kind === "symlink") {
        // The classic escape: "link" -> somewhere, then "link/x" writes through it.
        throw new ArchiveError(`path goes through the symlink ${JSON.stringify(existing.path)}${caseNote(existing.path, prefix)}`, name);
      } else if (existing.node.kind === "file") {
        throw new ArchiveError(`parent ${JSON.stringify(existing.path)} is a file${caseNote(existing.path, prefix)}`, name);
      }
    }

    const existing = this.lookup(path);
    if (existing === undefined) {
      this.insert(path, { kind, explicit: true, name, ...(target === undefined ? {} : { target }) });
      return;
    }
    const { node } = existing;
    if (existing.path !== path && !(node.kind === "directory" && kind === "directory")) {
      throw new ArchiveError(`conflicts with ${JSON.stringify(existing.path)} on a case-insensitive filesystem`, name);
    }
    if (node.kind === "directory" && !node.explicit && kind === "directory") {
      node.explicit = true;
      return;
    }
    if (existing.path !== path) return; // two spellings of one directory: harmless, mkdir is idempotent for us
    if (node.explicit) throw new ArchiveError("duplicate entry", name);
    throw new ArchiveError(`a ${kind} cannot replace the directory created for ${JSON.stringify(node.name)}`, name);
  }

  /**
   * Follows every symlink's target through the links the archive creates, the way the kernel
   * would after extraction. A lexical check alone is not enough: with "d/s" -> "../x", the
   * target "d/s/../.." looks like "." but resolves to the parent of the root.
   */
  checkSymlinks(): void {
    for (const [path, node] of this.nodes) {
      if (node.kind !== "symlink" || node.target === undefined) continue;
      const result = this.resolve(path, node.target);
      if (result === "escapes") throw new ArchiveError(`symlink target ${JSON.stringify(node.target)} escapes the archive root through other symlinks`, node.name);
      if (result === "loop") throw new ArchiveError(`symlink target ${JSON.stringify(node.target)} goes through too many symlinks`, node.name);
    }
  }

  private resolve(linkPath: string, target: string): "inside" | "escapes" | "loop" {
    const at = parentSegments(linkPath);
    const pending = target.split("/").reverse();
    let hops = 0;
    while (pending.length > 0) {
      const seg = pending.pop()!;
      if (seg === "" || seg === ".") continue;
      if (seg === "..") {
        if (at.length === 0) return "escapes";
        at.pop();
        continue;
      }
      at.push(seg);
      const found = this.lookup(at.join("/"));
      if (found?.node.kind === "symlink" && found.node.target !== undefined) {
        if (++hops > MAX_LINK_HOPS) return "loop";
        at.pop();
        pending.push(...found.node.target.split("/").reverse());
      }
    }
    return "inside";
  }

  /** Exact match first, then a case-insensitive one: on macOS or Windows either would be hit. */
  private lookup(path: string): { path: string; node: Node } | undefined {
    const exact = this.nodes.get(path);
    if (exact) return { path, node: exact };
    const other = this.folded.get(foldPath(path));
    const node = other === undefined ? undefined : this.nodes.get(other);
    return other !== undefined && node ? { path: other, node } : undefined;
  }

  private insert(path: string, node: Node): void {
    this.nodes.set(path, node);
    const key = foldPath(path);
    if (!this.folded.has(key)) this.folded.set(key, path);
  }
}

function caseNote(found: string, wanted: string): string {
  return found === wanted ? "" : " on a case-insensitive filesystem";
}
