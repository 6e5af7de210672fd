// What every route handler can reach: the store, the settings and the logger.
import type { Logger } from "pino";
import type { Store } from "../database/index.js";

export interface CoderdOptions {
  store: Store;
  logger: Logger;
  accessUrl: string;
  deploymentId: string;
  sessionDurationMs: number;
  maxTokenLifetimeMs: number;
  secureAuthCookie: boolean;
  maxRequestBodyBytes: number;
}

export type Ctx = CoderdOptions;
