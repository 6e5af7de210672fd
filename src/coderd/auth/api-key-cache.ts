// A short-lived cache of token lookups (key + user + memberships), so an authenticated request
// need not wait on Postgres. Revocation stays immediate: whatever changes a user's keys, status,
// roles or memberships calls invalidateUser(), which clears this process at once and every other
// replica through pubsub. A lookup that raced with an invalidation is not cached (generations),
// and a lost pubsub connection clears everything.
import type { ApiKey, Pubsub, User } from "../../database/index.js";

export interface CachedAuth {
  key: ApiKey;
  user: User;
  orgRoles: Array<{ organization_id: string; roles: string[] }>;
}

export const AUTH_INVALIDATE_CHANNEL = "auth_invalidate";
const CHANNEL = AUTH_INVALIDATE_CHANNEL;
const TTL_MS = 10_000;
const MAX_ENTRIES = 50_000;

export class ApiKeyCache {
  private readonly entries = new Map<string, { value: CachedAuth; expires: number }>();
  private generation = 0;
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly pubsub: Pubsub) {}

  async start(): Promise<void> {
    this.unsubscribe = await this.pubsub.subscribe(CHANNEL, {
      onMessage: (userId) => this.clearUser(userId),
      onDrop: () => this.clearAll(),
    });
  }

  stop(): void {
    this.unsubscribe?.();
    this.clearAll();
  }

  /** Looks up through the cache; `load` reads the database on a miss. */
  async get(keyId: string, load: (id: string) => Promise<CachedAuth | undefined>): Promise<CachedAuth | undefined> {
    const hit = this.entries.get(keyId);
    if (hit && hit.expires > Date.now()) return hit.value;
    const generation = this.generation;
    const value = await load(keyId);
    if (value && generation === this.generation) {
      if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
      this.entries.set(keyId, { value, expires: Date.now() + TTL_MS });
    }
    return value;
  }

  /** After a change to the user's keys, status, roles, profile or memberships has committed. */
  async invalidateUser(userId: string): Promise<void> {
    this.clearUser(userId);
    await this.pubsub.publish(CHANNEL, userId);
  }

  private clearUser(userId: string): void {
    this.generation++;
    for (const [id, e] of this.entries) if (e.value.user.id === userId) this.entries.delete(id);
  }

  private clearAll(): void {
    this.generation++;
    this.entries.clear();
  }
}
