// What the agent must tell coderd, in order: lifecycle changes and batches of log lines. An
// item leaves the outbox only once coderd has acknowledged it, so nothing is lost when the
// connection drops; a log batch re-sent after a reconnect is stored once (lines carry a seq).

export interface LogLine {
  seq: number;
  created_at: string;
  source: string;
  level: "info" | "warn" | "error";
  output: string;
}

export type OutboxItem = { method: "lifecycle"; params: { state: string; changed_at: string } } | { method: "logs"; params: { logs: LogLine[] } };

const MAX_BATCH = 100;
/** Beyond this many unsent lines the oldest are dropped (and that is said): memory stays bounded. */
const MAX_PENDING_LINES = 100_000;

export class Outbox {
  private readonly items: Array<OutboxItem & { sending?: boolean }> = [];
  private pendingLines = 0;
  // Unique across restarts of the agent process, so a new process's lines never collide with
  // lines an earlier one stored.
  private seq = Date.now() * 1000;
  private wake: (() => void) | undefined;

  get size(): number {
    return this.items.length;
  }

  lifecycle(state: string): void {
    this.push({ method: "lifecycle", params: { state, changed_at: new Date().toISOString() } });
  }

  log(source: string, level: LogLine["level"], output: string): void {
    const line: LogLine = { seq: ++this.seq, created_at: new Date().toISOString(), source, level, output };
    const tail = this.items.at(-1);
    if (tail?.method === "logs" && !tail.sending && tail.params.logs.length < MAX_BATCH) tail.params.logs.push(line);
    else this.push({ method: "logs", params: { logs: [line] } });
    if (++this.pendingLines > MAX_PENDING_LINES) this.dropOldestLine();
  }

  /** Lines dropped because the outbox was full (coderd unreachable for a long time). */
  dropped = 0;

  private dropOldestLine(): void {
    const first = this.items.find((i) => i.method === "logs" && !i.sending) as Extract<OutboxItem, { method: "logs" }> | undefined;
    if (!first?.params.logs.shift()) return;
    this.pendingLines--;
    this.dropped++;
  }

  private push(item: OutboxItem): void {
    this.items.push(item);
    this.wake?.();
  }

  /** The next item to send (it stays until ack()); waits while there is none. */
  async next(signal: AbortSignal): Promise<OutboxItem | undefined> {
    if (signal.aborted) return undefined;
    while (this.items.length === 0) {
      if (signal.aborted) return undefined;
      await new Promise<void>((res) => {
        this.wake = res;
        signal.addEventListener("abort", () => res(), { once: true });
        if (signal.aborted) res();
      });
      this.wake = undefined;
    }
    const first = this.items[0]!;
    first.sending = true;
    return first;
  }

  ack(item: OutboxItem): void {
    if (this.items[0] !== item) return;
    this.items.shift();
    if (item.method === "logs") this.pendingLines -= item.params.logs.length;
  }
}
