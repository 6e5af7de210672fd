// What a format reader hands to the validator: the entry as stored, before any policy applies.

export interface RawEntry {
  /** The stored name (extended headers applied), before normalisation. */
  name: string;
  kind: "file" | "directory" | "symlink" | "unsupported";
  /** For "unsupported": what it is, for the error ("hard link", "FIFO", ...). */
  typeName?: string;
  /** Declared content size in bytes; for a zip symlink, the length of its target. */
  size: number;
  /** Permission bits as stored (may include setuid and friends; the validator strips them). */
  mode: number;
  /** Tar keeps symlink targets in the header; zip keeps them as content (then undefined here). */
  linkTarget?: string;
  /**
   * The content, exactly `size` bytes, or an ArchiveError naming the entry when the actual data
   * is shorter, longer, truncated or corrupt. Never produces more than `size` + 1 bytes of
   * output, so a lying header cannot make it allocate more than it declared.
   */
  read(): Promise<Uint8Array>;
}
