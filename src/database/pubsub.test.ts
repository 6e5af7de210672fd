import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { createTestDatabase } from "../../test/helpers/database.js";
import { MAX_PAYLOAD_BYTES, PgPubsub } from "./pubsub.js";

const opened: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (opened.length) await opened.pop()!();
});

async function open(url: string): Promise<{ pubsub: PgPubsub; pool: pg.Pool }> {
  const pool = new pg.Pool({ connectionString: url, max: 3 });
  const pubsub = new PgPubsub(pool, url);
  opened.push(async () => {
    await pubsub.close();
    await pool.end();
  });
  return { pubsub, pool };
}

/** A queue of received payloads with a way to await the next one. */
function inbox() {
  const items: string[] = [];
  const waiters: Array<(v: string) => void> = [];
  return {
    push: (v: string) => (waiters.length ? waiters.shift()!(v) : items.push(v)),
    next: () => (items.length ? Promise.resolve(items.shift()!) : new Promise<string>((r) => waiters.push(r))),
    pending: () => items.length,
  };
}

describe("PgPubsub", () => {
  it("delivers between processes' connections and stops after unsubscribe", async () => {
    const url = await createTestDatabase({ empty: true });
    const a = await open(url);
    const b = await open(url);
    const box = inbox();
    const unsubscribe = await b.pubsub.subscribe("jobs", { onMessage: box.push });
    await a.pubsub.publish("jobs", "job-1");
    expect(await box.next()).toBe("job-1");
    unsubscribe();
    const other = inbox();
    await b.pubsub.subscribe("other", { onMessage: other.push });
    await a.pubsub.publish("jobs", "job-2");
    await a.pubsub.publish("other", "marker");
    // Ordered delivery: the marker arrives after job-2 would have.
    expect(await other.next()).toBe("marker");
    expect(box.pending()).toBe(0);
  });

  it("refuses payloads Postgres would reject", async () => {
    const { pubsub } = await open(await createTestDatabase({ empty: true }));
    await expect(pubsub.publish("jobs", "x".repeat(MAX_PAYLOAD_BYTES + 1))).rejects.toThrow(/exceeds/);
    await expect(pubsub.publish("bad channel!", "x")).rejects.toThrow(/invalid pubsub channel/);
  });

  it("reconnects when the listening connection dies, resubscribes, and reports the gap", async () => {
    const url = await createTestDatabase({ empty: true });
    const { pubsub, pool } = await open(url);
    const box = inbox();
    let dropped!: () => void;
    const gap = new Promise<void>((r) => (dropped = r));
    await pubsub.subscribe("jobs", { onMessage: box.push, onDrop: () => dropped() });
    await pool.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'coderd-pubsub'");
    await gap;
    await pubsub.publish("jobs", "after");
    expect(await box.next()).toBe("after");
  });
});
