// The last N bytes of a terminal's output, replayed to a client that (re)attaches so it sees the
// screen's recent history. A fixed circular buffer: memory stays bounded however chatty the
// program is, and each write is one or two copies.
export class RingBuffer {
  private readonly buf: Buffer;
  private end = 0;
  private full = false;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity <= 0) throw new Error("ring buffer capacity must be a positive integer");
    this.buf = Buffer.alloc(capacity);
  }

  write(data: Uint8Array): void {
    const cap = this.capacity;
    if (data.length >= cap) {
      this.buf.set(data.subarray(data.length - cap));
      this.end = 0;
      this.full = true;
      return;
    }
    const first = Math.min(data.length, cap - this.end);
    this.buf.set(data.subarray(0, first), this.end);
    if (first < data.length) this.buf.set(data.subarray(first), 0);
    if (this.end + data.length >= cap) this.full = true;
    this.end = (this.end + data.length) % cap;
  }

  /** A copy of what is held, oldest byte first. */
  contents(): Buffer {
    if (!this.full) return Buffer.from(this.buf.subarray(0, this.end));
    return Buffer.concat([this.buf.subarray(this.end), this.buf.subarray(0, this.end)], this.capacity);
  }
}
