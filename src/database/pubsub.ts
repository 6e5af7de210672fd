// Pubsub over Postgres LISTEN/NOTIFY: one listening connection per process, re-established with
// backoff when it drops. After a reconnect every subscriber is told that messages may have
// been missed, so it can resync from the database. Payloads are small (ids, not bodies).
import pg from "pg";

export const MAX_PAYLOAD_BYTES = 7900; // Postgres refuses NOTIFY payloads of 8000 bytes or more

export interface Subscriber {
  onMessage(payload: string): void;
  /** Called after the listener reconnected: messages may have been lost meanwhile. */
  onDrop?(): void;
}

/** Told about traffic and connection loss, for metrics (kept cheap: called on every message). */
export interface PubsubObserver {
  published(bytes: number, ok: boolean): void;
  received(bytes: number): void;
  disconnected(): void;
}

export interface PubsubStats {
  connected: boolean;
  channels: number;
  subscribers: number;
}

export interface Pubsub {
  publish(channel: string, payload: string): Promise<void>;
  /** Several notifications in one round trip (the agents' batched writes announce many at once). */
  publishMany(messages: Array<{ channel: string; payload: string }>): Promise<void>;
  /** Resolves once the LISTEN is in effect; the returned function unsubscribes. */
  subscribe(channel: string, subscriber: Subscriber): Promise<() => void>;
  close(): Promise<void>;
  /** Adds an observer (metrics); the returned function removes it. */
  observe?(observer: PubsubObserver): () => void;
  stats?(): PubsubStats;
}

const ident = (channel: string) => {
  if (!/^[a-z0-9_:.-]{1,60}$/i.test(channel)) throw new Error(`invalid pubsub channel name "${channel}"`);
  return `"${channel}"`;
};

export class PgPubsub implements Pubsub {
  private client: pg.Client | undefined;
  private connecting: Promise<pg.Client> | undefined;
  private readonly channels = new Map<string, Set<Subscriber>>();
  private closed = false;
  private backoffMs = 100;
  private listenChain: Promise<void> = Promise.resolve();
  private readonly observers = new Set<PubsubObserver>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly connectionString: string,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  async publish(channel: string, payload: string): Promise<void> {
    if (Buffer.byteLength(payload) > MAX_PAYLOAD_BYTES) throw new Error(`pubsub payload on ${channel} exceeds ${MAX_PAYLOAD_BYTES} bytes`);
    ident(channel);
    if (this.observers.size === 0) {
      await this.pool.query("SELECT pg_notify($1, $2)", [channel, payload]);
      return;
    }
    const bytes = Buffer.byteLength(payload);
    try {
      await this.pool.query("SELECT pg_notify($1, $2)", [channel, payload]);
    } catch (err) {
      for (const o of this.observers) o.published(bytes, false);
      throw err;
    }
    for (const o of this.observers) o.published(bytes, true);
  }

  observe(observer: PubsubObserver): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  stats(): PubsubStats {
    let subscribers = 0;
    for (const s of this.channels.values()) subscribers += s.size;
    return { connected: this.client !== undefined, channels: this.channels.size, subscribers };
  }

  async publishMany(messages: Array<{ channel: string; payload: string }>): Promise<void> {
    if (messages.length === 0) return;
    for (const m of messages) {
      if (Buffer.byteLength(m.payload) > MAX_PAYLOAD_BYTES) throw new Error(`pubsub payload on ${m.channel} exceeds ${MAX_PAYLOAD_BYTES} bytes`);
      ident(m.channel);
    }
    const run = this.pool.query("SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS t(c, p)", [messages.map((m) => m.channel), messages.map((m) => m.payload)]);
    if (this.observers.size === 0) {
      await run;
      return;
    }
    let ok = false;
    try {
      await run;
      ok = true;
    } finally {
      for (const m of messages) for (const o of this.observers) o.published(Buffer.byteLength(m.payload), ok);
    }
  }

  async subscribe(channel: string, subscriber: Subscriber): Promise<() => void> {
    const q = ident(channel);
    let set = this.channels.get(channel);
    const first = !set;
    if (!set) {
      set = new Set();
      this.channels.set(channel, set);
    }
    set.add(subscriber);
    if (first) await this.listenQuery(`LISTEN ${q}`);
    return () => {
      const s = this.channels.get(channel);
      if (!s) return;
      s.delete(subscriber);
      if (s.size === 0) {
        this.channels.delete(channel);
        this.listenQuery(`UNLISTEN ${q}`).catch(() => {});
      }
    };
  }

  /** LISTEN/UNLISTEN one at a time: pg deprecates overlapping queries on one client. */
  private listenQuery(text: string): Promise<void> {
    if (this.closed) return Promise.resolve();
    const run = this.listenChain.then(async () => {
      await (await this.connection()).query(text);
    });
    this.listenChain = run.catch(() => {});
    return run;
  }

  private connection(): Promise<pg.Client> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= this.connect().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async connect(): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: this.connectionString, application_name: "coderd-pubsub" });
    client.on("notification", (n) => {
      if (this.observers.size) for (const o of this.observers) o.received(Buffer.byteLength(n.payload ?? ""));
      const subs = this.channels.get(n.channel);
      if (!subs) return;
      for (const s of subs) {
        try {
          s.onMessage(n.payload ?? "");
        } catch (err) {
          this.onError(err);
        }
      }
    });
    const lost = (err?: unknown) => {
      if (this.client !== client) return;
      this.client = undefined;
      for (const o of this.observers) o.disconnected();
      client.removeAllListeners("end");
      client.end().catch(() => {});
      if (err) this.onError(err);
      if (!this.closed) void this.reconnect();
    };
    client.on("error", lost);
    client.on("end", () => lost());
    await client.connect();
    this.client = client;
    return client;
  }

  private async reconnect(): Promise<void> {
    while (!this.closed) {
      await new Promise((r) => setTimeout(r, this.backoffMs * (0.5 + Math.random())));
      try {
        const client = await this.connection();
        for (const channel of this.channels.keys()) await client.query(`LISTEN ${ident(channel)}`);
        this.backoffMs = 100;
        for (const subs of this.channels.values()) for (const s of subs) s.onDrop?.();
        return;
      } catch (err) {
        this.onError(err);
        this.backoffMs = Math.min(this.backoffMs * 2, 5000);
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.channels.clear();
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => {});
  }
}
