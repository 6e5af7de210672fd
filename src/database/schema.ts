// Row types of the tables, as Kysely sees them. Keep in step with migrations/.
import type { ColumnType, Generated, Insertable, Selectable, Updateable } from "kysely";

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;

export type UserStatus = "active" | "suspended";
export type LoginType = "password" | "token" | "none";

export interface SiteConfigsTable {
  key: string;
  value: string;
}

export interface OrganizationsTable {
  id: string;
  name: string;
  display_name: string;
  description: Generated<string>;
  is_default: Generated<boolean>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface UsersTable {
  id: string;
  email: string;
  username: string;
  name: Generated<string>;
  hashed_password: string | null;
  login_type: Generated<LoginType>;
  status: Generated<UserStatus>;
  rbac_roles: Generated<string[]>;
  deleted: Generated<boolean>;
  created_at: Timestamp;
  updated_at: Timestamp;
  last_seen_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}

export interface OrganizationMembersTable {
  organization_id: string;
  user_id: string;
  roles: Generated<string[]>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface ApiKeysTable {
  id: string;
  hashed_secret: Buffer;
  user_id: string;
  login_type: LoginType;
  token_name: Generated<string>;
  scope: Generated<string>;
  lifetime_seconds: number;
  expires_at: ColumnType<Date, Date | string, Date | string>;
  last_used: Timestamp;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface SchemaMigrationsTable {
  version: number;
  name: string;
  applied_at: Timestamp;
}

export type JobType = "template_version_import" | "workspace_build";
export type JobStatus = "pending" | "running" | "succeeded" | "canceling" | "canceled" | "failed";
export type WorkspaceTransition = "start" | "stop" | "delete";

type Json<T> = ColumnType<T, T | string, T | string>;
/** A JSON column the database fills with a default when an insert leaves it out. */
type JsonWithDefault<T> = ColumnType<T, T | string | undefined, T | string>;
type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;

export interface FilesTable {
  id: string;
  hash: string;
  mimetype: string;
  data: Buffer;
  created_by: string;
  created_at: Timestamp;
}

export interface ProvisionerJobsTable {
  id: string;
  created_at: Timestamp;
  updated_at: Timestamp;
  started_at: NullableTimestamp;
  canceled_at: NullableTimestamp;
  completed_at: NullableTimestamp;
  heartbeat_at: NullableTimestamp;
  error: string | null;
  organization_id: string;
  initiator_id: string;
  provisioner: string;
  type: JobType;
  file_id: string;
  input: Json<Record<string, unknown>>;
  tags: Json<Record<string, string>>;
  worker_id: string | null;
  job_status: ColumnType<JobStatus, never, never>;
}

export interface ProvisionerJobLogsTable {
  id: Generated<number>;
  job_id: string;
  created_at: Timestamp;
  source: string;
  level: string;
  stage: Generated<string>;
  output: string;
}

export interface ProvisionerDaemonsTable {
  id: string;
  organization_id: string;
  name: string;
  tags: Json<Record<string, string>>;
  provisioners: string[];
  version: Generated<string>;
  created_at: Timestamp;
  last_seen_at: NullableTimestamp;
  current_job_id: string | null;
  disconnected_at: NullableTimestamp;
  /** The replica a built-in daemon runs in (null: an external daemon). */
  replica_id: string | null;
}

export interface TemplatesTable {
  id: string;
  organization_id: string;
  name: string;
  display_name: Generated<string>;
  description: Generated<string>;
  active_version_id: string;
  created_by: string;
  created_at: Timestamp;
  updated_at: Timestamp;
  deleted: Generated<boolean>;
}

export interface TemplateVersionsTable {
  id: string;
  template_id: string | null;
  organization_id: string;
  name: string;
  message: Generated<string>;
  readme: Generated<string>;
  job_id: string;
  created_by: string;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface TemplateVersionParametersTable {
  template_version_id: string;
  name: string;
  display_name: Generated<string>;
  description: Generated<string>;
  type: string;
  default_value: string | null;
  mutable: Generated<boolean>;
  required: Generated<boolean>;
  options: Json<Array<{ name: string; value: string; description?: string }>>;
  validation_regex: string | null;
  validation_min: number | null;
  validation_max: number | null;
  validation_error: Generated<string>;
  ordering: Generated<number>;
}

export interface WorkspacesTable {
  id: string;
  organization_id: string;
  owner_id: string;
  template_id: string;
  name: string;
  deleted: Generated<boolean>;
  created_at: Timestamp;
  updated_at: Timestamp;
  last_used_at: Timestamp;
}

export interface WorkspaceBuildsTable {
  id: string;
  workspace_id: string;
  template_version_id: string;
  build_number: number;
  transition: WorkspaceTransition;
  initiator_id: string;
  reason: Generated<string>;
  job_id: string;
  provisioner_state: Buffer | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface WorkspaceBuildParametersTable {
  workspace_build_id: string;
  name: string;
  value: string;
}

export interface WorkspaceResourcesTable {
  id: string;
  job_id: string;
  transition: WorkspaceTransition;
  type: string;
  name: string;
  created_at: Timestamp;
}

export interface WorkspaceAgentsTable {
  id: string;
  resource_id: string;
  name: string;
  auth_token_hash: Buffer | null;
  directory: Generated<string>;
  environment: Json<Record<string, string>>;
  startup_script: Generated<string>;
  startup_script_behavior: Generated<string>;
  startup_script_timeout_seconds: Generated<number>;
  shutdown_script: Generated<string>;
  connection_timeout_seconds: Generated<number>;
  metadata: Json<unknown[]>;
  created_at: Timestamp;
  updated_at: Timestamp;
  first_connected_at: NullableTimestamp;
  last_connected_at: NullableTimestamp;
  disconnected_at: NullableTimestamp;
  /** The replica the agent's control connection last reached. */
  last_connected_replica_id: string | null;
  lifecycle_state: Generated<string>;
  started_at: NullableTimestamp;
  ready_at: NullableTimestamp;
  version: Generated<string>;
  operating_system: Generated<string>;
  expanded_directory: Generated<string>;
  metadata_values: JsonWithDefault<Record<string, { value: string; error: string; collected_at: string }>>;
  listening_ports: JsonWithDefault<Array<{ port: number; network: string; process_name: string }>>;
  ssh_host_public_key: Generated<string>;
  stats: JsonWithDefault<AgentStatsReport | null>;
  stats_updated_at: NullableTimestamp;
}

export interface TailnetCoordinatorsTable {
  id: string;
  heartbeat_at: Generated<Date>;
}

export interface TailnetPeersTable {
  id: string;
  kind: "agent" | "client";
  agent_id: string;
  coordinator_id: string;
  /** { key, preferred_relay, endpoints } as the peer last described itself. */
  node: ColumnType<unknown, string | null, string | null> | null;
  updated_at: Generated<Date>;
}

export type TailnetPeer = Selectable<TailnetPeersTable>;

export interface ReplicasTable {
  id: string;
  created_at: Generated<Date>;
  started_at: Generated<Date>;
  stopped_at: Date | null;
  updated_at: Generated<Date>;
  hostname: string;
  region_id: number;
  relay_address: string;
  /** Microseconds. */
  database_latency: Generated<number>;
  version: string;
  error: Generated<string>;
}

export type Replica = Selectable<ReplicasTable>;

/** What an agent reports of its peers' use of it, every stats interval. */
export interface AgentStatsReport {
  connections: number;
  sessions: { ssh: number; reconnecting_pty: number; speedtest: number; tcp: number };
  rx_bytes: number;
  tx_bytes: number;
}

export interface WorkspaceAgentLogsTable {
  id: Generated<number>;
  agent_id: string;
  seq: number;
  created_at: Timestamp;
  source: string;
  level: string;
  output: string;
}

export interface WorkspaceAppsTable {
  id: string;
  agent_id: string;
  slug: string;
  display_name: Generated<string>;
  url: Generated<string>;
  command: Generated<string>;
  subdomain: Generated<boolean>;
  sharing_level: Generated<string>;
  healthcheck: Json<{ url: string; interval: number; threshold: number } | null>;
  health: Generated<string>;
  created_at: Timestamp;
}

export interface DB {
  files: FilesTable;
  provisioner_jobs: ProvisionerJobsTable;
  provisioner_job_logs: ProvisionerJobLogsTable;
  provisioner_daemons: ProvisionerDaemonsTable;
  templates: TemplatesTable;
  template_versions: TemplateVersionsTable;
  template_version_parameters: TemplateVersionParametersTable;
  workspaces: WorkspacesTable;
  workspace_builds: WorkspaceBuildsTable;
  workspace_build_parameters: WorkspaceBuildParametersTable;
  workspace_resources: WorkspaceResourcesTable;
  workspace_agents: WorkspaceAgentsTable;
  workspace_apps: WorkspaceAppsTable;
  workspace_agent_logs: WorkspaceAgentLogsTable;
  site_configs: SiteConfigsTable;
  tailnet_coordinators: TailnetCoordinatorsTable;
  tailnet_peers: TailnetPeersTable;
  replicas: ReplicasTable;
  organizations: OrganizationsTable;
  users: UsersTable;
  organization_members: OrganizationMembersTable;
  api_keys: ApiKeysTable;
  schema_migrations: SchemaMigrationsTable;
}

export type User = Selectable<UsersTable>;
export type NewUser = Insertable<UsersTable>;
export type UserUpdate = Updateable<UsersTable>;
export type Organization = Selectable<OrganizationsTable>;
export type OrganizationMember = Selectable<OrganizationMembersTable>;
export type ApiKey = Selectable<ApiKeysTable>;
export type NewApiKey = Insertable<ApiKeysTable>;
export type File = Selectable<FilesTable>;
export type ProvisionerJob = Selectable<ProvisionerJobsTable>;
export type ProvisionerJobLog = Selectable<ProvisionerJobLogsTable>;
export type ProvisionerDaemon = Selectable<ProvisionerDaemonsTable>;
export type Template = Selectable<TemplatesTable>;
export type TemplateVersion = Selectable<TemplateVersionsTable>;
export type TemplateVersionParameter = Selectable<TemplateVersionParametersTable>;
export type NewTemplateVersionParameter = Insertable<TemplateVersionParametersTable>;
export type Workspace = Selectable<WorkspacesTable>;
export type WorkspaceBuild = Selectable<WorkspaceBuildsTable>;
export type WorkspaceResource = Selectable<WorkspaceResourcesTable>;
export type WorkspaceAgent = Selectable<WorkspaceAgentsTable>;
export type WorkspaceApp = Selectable<WorkspaceAppsTable>;
export type WorkspaceAgentLog = Selectable<WorkspaceAgentLogsTable>;
