// What every route handler can reach: the store, the settings and the logger.
import type { Logger } from "pino";
import type { Pubsub, Store } from "../database/index.js";
import type { ApiKeyCache } from "./auth/api-key-cache.js";

export interface CoderdOptions {
  store: Store;
  pubsub: Pubsub;
  logger: Logger;
  accessUrl: string;
  deploymentId: string;
  sessionDurationMs: number;
  maxTokenLifetimeMs: number;
  secureAuthCookie: boolean;
  maxRequestBodyBytes: number;
}

export type Ctx = CoderdOptions & {
  /** Token lookups; call invalidateUser after changing anything it caches. */
  authCache: ApiKeyCache;
};
