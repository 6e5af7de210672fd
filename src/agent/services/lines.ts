// Splits a byte stream into newline-terminated lines, refusing a line longer than a limit so a
// peer that never sends a newline cannot make us buffer without bound.
export class LineTooLongError extends Error {
  constructor(limit: number) {
    super(`line longer than ${limit} bytes`);
  }
}

export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly maxLineBytes: number) {}

  /** The lines this chunk completes (without their newline); throws LineTooLongError. */
  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl === -1) break;
      const part = chunk.subarray(start, nl);
      if (this.pendingBytes + part.length > this.maxLineBytes) throw new LineTooLongError(this.maxLineBytes);
      // Splitting UTF-8 at a newline byte never cuts a character, so each line decodes alone.
      lines.push(this.pendingBytes === 0 ? part.toString("utf8") : Buffer.concat([...this.pending, part]).toString("utf8"));
      this.pending = [];
      this.pendingBytes = 0;
      start = nl + 1;
    }
    if (start < chunk.length) {
      this.pendingBytes += chunk.length - start;
      if (this.pendingBytes > this.maxLineBytes) throw new LineTooLongError(this.maxLineBytes);
      this.pending.push(chunk.subarray(start));
    }
    return lines;
  }
}
