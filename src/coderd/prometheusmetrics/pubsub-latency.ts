// Pubsub latency as Coder measures it: at scrape time, publish a probe on a channel of this
// process's own and time the NOTIFY round trip: "send" until pg_notify returned, "receive" until
// this process's LISTEN connection delivered the probe back. Each measurement has a payload of its
// own, so overlapping measurements (and other replicas, which listen on their own channels) never
// take each other's probes; a probe that does not come back within the timeout counts as an error.
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { Pubsub } from "../../database/index.js";

export interface LatencyMeasurement {
  /** Seconds until the publish returned (undefined when it failed). */
  send?: number;
  /** Seconds until the probe came back (undefined when it failed or timed out). */
  receive?: number;
  error?: Error;
}

/** Bounded by the usual 10 s Prometheus scrape timeout, with room for the rest of the scrape. */
export const DEFAULT_LATENCY_TIMEOUT_MS = 5_000;

export class PubsubLatencyProbe {
  /** 22 + 36 characters: within the pubsub's 60-character channel names. */
  readonly channel = `coder_pubsub_latency:${randomUUID()}`;
  private readonly waiting = new Map<string, () => void>();
  private subscription: Promise<() => void> | undefined;
  private closed = false;

  constructor(
    private readonly pubsub: Pubsub,
    private readonly timeoutMs = DEFAULT_LATENCY_TIMEOUT_MS,
  ) {}

  /** LISTENs on the probe channel once, at the first measurement; kept until close(). */
  private subscribe(): Promise<() => void> {
    if (!this.subscription) {
      const s = this.pubsub.subscribe(this.channel, {
        onMessage: (payload) => this.waiting.get(payload)?.(),
      });
      this.subscription = s;
      // A failed LISTEN (database down) is tried again at the next measurement.
      s.catch(() => {
        if (this.subscription === s) this.subscription = undefined;
      });
    }
    return this.subscription;
  }

  async measure(): Promise<LatencyMeasurement> {
    if (this.closed) return { error: new Error("the latency probe is closed") };
    const deadline = performance.now() + this.timeoutMs;
    const payload = randomUUID();
    let receivedAt = 0;
    const received = new Promise<void>((resolve) => {
      this.waiting.set(payload, () => {
        receivedAt ||= performance.now();
        resolve();
      });
    });
    let start = 0;
    let send: number | undefined;
    try {
      await within(this.subscribe(), deadline, "subscribing to the probe channel");
      start = performance.now();
      await within(this.pubsub.publish(this.channel, payload), deadline, "publishing the probe");
      send = (performance.now() - start) / 1000;
      await within(received, deadline, "the probe coming back");
      return { send, receive: (receivedAt - start) / 1000 };
    } catch (err) {
      return { send, error: err as Error };
    } finally {
      this.waiting.delete(payload);
    }
  }

  close(): void {
    this.closed = true;
    const s = this.subscription;
    this.subscription = undefined;
    s?.then((unsubscribe) => unsubscribe(), () => {});
  }
}

/** `p`, or a rejection once the deadline passed (the timer never outlives the race). */
function within<T>(p: Promise<T>, deadline: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const ms = Math.max(0, deadline - performance.now());
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within the measurement's time limit`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
