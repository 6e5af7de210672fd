// The Store: every query of queries/ bound to a connection (the pool, or one transaction).
// Callers see plain async methods named after their query, which is also the name metrics and
// logs use for them.
import { sql, type Kysely, type Transaction } from "kysely";
import type { DB } from "./schema.js";
import * as apiKeys from "./queries/api-keys.js";
import * as files from "./queries/files.js";
import * as organizations from "./queries/organizations.js";
import * as provisionerDaemons from "./queries/provisioner-daemons.js";
import * as provisionerJobs from "./queries/provisioner-jobs.js";
import * as replicas from "./queries/replicas.js";
import * as siteConfigs from "./queries/site-configs.js";
import * as tailnet from "./queries/tailnet.js";
import * as templates from "./queries/templates.js";
import * as users from "./queries/users.js";
import * as workspaceAgents from "./queries/workspace-agents.js";
import * as workspaceResources from "./queries/workspace-resources.js";
import * as workspaces from "./queries/workspaces.js";

const queries = {
  ...apiKeys,
  ...files,
  ...organizations,
  ...provisionerDaemons,
  ...provisionerJobs,
  ...replicas,
  ...siteConfigs,
  ...tailnet,
  ...templates,
  ...users,
  ...workspaceAgents,
  ...workspaceResources,
  ...workspaces,
};
type Queries = typeof queries;

type Bound<T> = {
  [K in keyof T]: T[K] extends (db: Kysely<DB>, ...args: infer A) => infer R ? (...args: A) => R : never;
};

export type Store = Bound<Queries> & {
  /** Runs fn in one transaction; it commits when fn resolves and rolls back when it throws. */
  inTx<T>(fn: (tx: Store) => Promise<T>): Promise<T>;
  /** Takes a transaction-scoped advisory lock (only meaningful inside inTx). */
  advisoryXactLock(key: number): Promise<void>;
  readonly kysely: Kysely<DB>;
};

function bind(db: Kysely<DB>): Store {
  const store = { kysely: db } as Store;
  for (const [name, fn] of Object.entries(queries)) {
    (store as unknown as Record<string, unknown>)[name] = (...args: unknown[]) =>
      (fn as (db: Kysely<DB>, ...a: unknown[]) => unknown)(db, ...args);
  }
  store.inTx = (fn) =>
    db.isTransaction ? fn(store) : db.transaction().execute((tx: Transaction<DB>) => fn(bind(tx)));
  store.advisoryXactLock = async (key) => {
    await sql`SELECT pg_advisory_xact_lock(${key})`.execute(db);
  };
  return store;
}

export function createStore(db: Kysely<DB>): Store {
  return bind(db);
}
