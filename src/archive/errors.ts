// One error type for everything wrong with an archive, so callers can tell "the upload is bad"
// (a 400 for coderd, a failed job for the provisioner) from an I/O or programming error.

export class ArchiveError extends Error {
  /** The entry's name as stored in the archive, when the problem belongs to one entry. */
  readonly entry?: string;
  /** The message without the entry prefix, for callers that phrase their own. */
  readonly reason: string;

  constructor(reason: string, entry?: string) {
    // JSON quoting keeps control characters (a NUL, a newline) in a hostile name visible and
    // stops them from forging a second line in logs.
    super(entry === undefined ? reason : `entry ${JSON.stringify(entry)}: ${reason}`);
    this.name = "ArchiveError";
    this.reason = reason;
    if (entry !== undefined) this.entry = entry;
  }
}
