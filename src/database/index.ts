// The database module: the only place that talks to Postgres.
export { createPool, createKysely, ping, describePgError, redactConnectionString, validateConnectionString, DatabaseConnectError } from "./connect.js";
export { migrate, loadMigrations, SchemaTooNewError, type Migration, type MigrateResult } from "./migrate.js";
export { startEmbedded, embeddedDir, type EmbeddedInstance } from "./embedded.js";
export { createStore, type Store } from "./store.js";
export { openDatabase, type Database } from "./open.js";
export { PgPubsub, MAX_PAYLOAD_BYTES, type Pubsub, type PubsubObserver, type PubsubStats, type Subscriber } from "./pubsub.js";
export { isUniqueViolation } from "./errors.js";
export type * from "./schema.js";
export type { NewResource, ResourceWithAgents } from "./queries/workspace-resources.js";
export type { UserSearch } from "./queries/users.js";
