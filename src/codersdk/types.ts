// The API's wire types, shared by coderd (which produces them) and every client.
import type { RelayMap } from "../tailnet/index.js";

export interface ValidationError {
  field: string;
  detail: string;
}

/** The body of every error response. */
export interface Response {
  message: string;
  detail?: string;
  validations?: ValidationError[];
}

export interface BuildInfo {
  version: string;
  commit: string;
  external_url: string;
  dashboard_url: string;
  deployment_id: string;
}

export type UserStatus = "active" | "suspended";
export type LoginType = "password" | "token" | "none";

export interface Role {
  name: string;
  display_name: string;
  organization_id?: string;
}

export interface User {
  id: string;
  username: string;
  name: string;
  email: string;
  created_at: string;
  updated_at: string;
  last_seen_at: string | null;
  status: UserStatus;
  login_type: LoginType;
  organization_ids: string[];
  roles: Role[];
}

export interface GetUsersResponse {
  users: User[];
  count: number;
}

export interface CreateFirstUserRequest {
  email: string;
  username: string;
  name?: string;
  password: string;
}

export interface CreateFirstUserResponse {
  user_id: string;
  organization_id: string;
}

export interface CreateUserRequest {
  email: string;
  username: string;
  name?: string;
  password?: string;
  login_type?: LoginType;
  organization_ids?: string[];
}

export interface LoginWithPasswordRequest {
  email: string;
  password: string;
}

export interface LoginWithPasswordResponse {
  session_token: string;
}

export interface UpdateUserPasswordRequest {
  old_password?: string;
  password: string;
}

export interface UpdateUserProfileRequest {
  username: string;
  name?: string;
}

export interface UpdateRoles {
  roles: string[];
}

export interface UserRoles {
  roles: string[];
  organization_roles: Record<string, string[]>;
}

export interface AssignableRole extends Role {
  assignable: boolean;
}

export interface APIKey {
  id: string;
  user_id: string;
  token_name: string;
  login_type: LoginType;
  scope: string;
  lifetime_seconds: number;
  expires_at: string;
  last_used: string;
  created_at: string;
  updated_at: string;
}

export interface CreateTokenRequest {
  token_name?: string;
  /** Seconds; defaults to the deployment's maximum token lifetime. */
  lifetime_seconds?: number;
  scope?: "all";
}

export interface GenerateAPIKeyResponse {
  key: string;
}

export interface Organization {
  id: string;
  name: string;
  display_name: string;
  description: string;
  is_default: boolean;
  created_at: string;
  updated_at: string;
}

export interface CreateOrganizationRequest {
  name: string;
  display_name?: string;
  description?: string;
}

export interface UpdateOrganizationRequest {
  name?: string;
  display_name?: string;
  description?: string;
}

export interface OrganizationMember {
  organization_id: string;
  user_id: string;
  username: string;
  email: string;
  roles: Role[];
  created_at: string;
  updated_at: string;
}

export interface ProvisionerDaemon {
  id: string;
  organization_id: string;
  name: string;
  tags: Record<string, string>;
  provisioners: string[];
  version: string;
  created_at: string;
  last_seen_at: string | null;
  current_job_id: string | null;
  status: "idle" | "busy" | "offline";
}

export type ProvisionerJobStatus = "pending" | "running" | "succeeded" | "canceling" | "canceled" | "failed";

export interface ProvisionerJob {
  id: string;
  type: "template_version_import" | "workspace_build";
  status: ProvisionerJobStatus;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  canceled_at: string | null;
  error: string | null;
  worker_id: string | null;
  file_id: string;
  tags: Record<string, string>;
  /** Pending jobs ahead of this one (0 when it is next or no longer pending). */
  queue_position: number;
  queue_size: number;
  /** Why a pending job is not being picked up, e.g. no daemon with matching tags. */
  status_detail: string;
}

export interface ProvisionerJobLog {
  id: number;
  created_at: string;
  source: string;
  level: string;
  stage: string;
  output: string;
}

export interface UploadResponse {
  id: string;
  hash: string;
}

export interface TemplateVersionParameter {
  name: string;
  display_name: string;
  description: string;
  type: "string" | "number" | "bool" | "list(string)";
  default_value: string | null;
  mutable: boolean;
  required: boolean;
  options: Array<{ name: string; value: string; description?: string }>;
  validation_regex: string | null;
  validation_min: number | null;
  validation_max: number | null;
  validation_error: string;
}

export interface TemplateVersion {
  id: string;
  template_id: string | null;
  organization_id: string;
  name: string;
  message: string;
  readme: string;
  created_at: string;
  created_by: string;
  job: ProvisionerJob;
}

export interface CreateTemplateVersionRequest {
  file_id: string;
  template_id?: string;
  name?: string;
  message?: string;
  provisioner?: "local";
  tags?: Record<string, string>;
}

export interface Template {
  id: string;
  organization_id: string;
  name: string;
  display_name: string;
  description: string;
  active_version_id: string;
  created_by: string;
  created_at: string;
  updated_at: string;
}

export interface CreateTemplateRequest {
  name: string;
  display_name?: string;
  description?: string;
  template_version_id: string;
}

export interface UpdateTemplateRequest {
  name?: string;
  display_name?: string;
  description?: string;
}

export interface WorkspaceApp {
  id: string;
  slug: string;
  display_name: string;
  url: string;
  command: string;
  subdomain: boolean;
  sharing_level: string;
  healthcheck: { url: string; interval: number; threshold: number } | null;
  /** "disabled" without a health check. */
  health: "disabled" | "initializing" | "healthy" | "unhealthy";
}

export type WorkspaceAgentStatus = "connecting" | "connected" | "disconnected" | "timeout";
export type WorkspaceAgentLifecycle =
  | "created"
  | "starting"
  | "ready"
  | "start_error"
  | "start_timeout"
  | "shutting_down"
  | "off"
  | "shutdown_error"
  | "shutdown_timeout";

export interface WorkspaceAgent {
  id: string;
  name: string;
  directory: string;
  environment: Record<string, string>;
  startup_script: string;
  startup_script_behavior: string;
  connection_timeout_seconds: number;
  apps: WorkspaceApp[];
  status: WorkspaceAgentStatus;
  lifecycle_state: WorkspaceAgentLifecycle;
  first_connected_at: string | null;
  last_connected_at: string | null;
  disconnected_at: string | null;
  /** The replica whose API the agent last connected to (HA). */
  last_connected_replica_id: string | null;
  started_at: string | null;
  ready_at: string | null;
  version: string;
  operating_system: string;
  /** "ssh-ed25519 AAAA…": pin it to connect to the agent's SSH server. */
  ssh_host_public_key: string;
  metadata: Array<{ key: string; display_name: string; interval: number; timeout: number; value: string; error: string; collected_at: string | null }>;
  /** The agent's latest stats report (null before the first). */
  stats: (AgentStats & { collected_at: string }) | null;
}

/** What an agent reports every stats interval: its peers' open connections and sessions, and bytes moved. */
export interface AgentStats {
  connections: number;
  sessions: { ssh: number; reconnecting_pty: number; speedtest: number; tcp: number };
  rx_bytes: number;
  tx_bytes: number;
}

/** What a client needs before it connects to agents: the relays, and whether direct paths are allowed. */
export interface AgentConnectionInfo {
  relay_map: RelayMap;
  disable_direct_connections: boolean;
}

export interface ListeningPortsResponse {
  ports: Array<{ port: number; network: string; process_name: string }>;
}

export interface WorkspaceAgentLog {
  id: number;
  created_at: string;
  source: string;
  level: string;
  output: string;
}

/** What an agent needs to know of its workspace, fetched when it connects. */
export interface AgentManifest {
  agent_id: string;
  agent_name: string;
  workspace_id: string;
  workspace_name: string;
  owner_name: string;
  directory: string;
  environment: Record<string, string>;
  startup_script: string;
  startup_script_behavior: "blocking" | "non-blocking";
  startup_script_timeout_seconds: number;
  shutdown_script: string;
  apps: WorkspaceApp[];
  metadata: Array<{ key: string; display_name: string; script: string; interval: number; timeout: number }>;
  /** The relays, and whether direct paths are off deployment-wide. */
  connection: AgentConnectionInfo;
}

export interface WorkspaceResource {
  id: string;
  job_id: string;
  transition: "start" | "stop" | "delete";
  type: string;
  name: string;
  agents: WorkspaceAgent[];
}

export type WorkspaceTransition = "start" | "stop" | "delete";
export type WorkspaceStatus =
  | "pending"
  | "starting"
  | "running"
  | "stopping"
  | "stopped"
  | "failed"
  | "canceling"
  | "canceled"
  | "deleting"
  | "deleted";

export interface WorkspaceBuild {
  id: string;
  workspace_id: string;
  workspace_name: string;
  workspace_owner_id: string;
  workspace_owner_name: string;
  template_version_id: string;
  template_version_name: string;
  build_number: number;
  transition: WorkspaceTransition;
  initiator_id: string;
  initiator_name: string;
  reason: string;
  created_at: string;
  status: WorkspaceStatus;
  job: ProvisionerJob;
  resources: WorkspaceResource[];
}

export interface Workspace {
  id: string;
  organization_id: string;
  owner_id: string;
  owner_name: string;
  template_id: string;
  template_name: string;
  template_active_version_id: string;
  name: string;
  created_at: string;
  updated_at: string;
  last_used_at: string;
  latest_build: WorkspaceBuild;
  outdated: boolean;
}

export interface WorkspacesResponse {
  workspaces: Workspace[];
  count: number;
}

export interface CreateWorkspaceRequest {
  name: string;
  template_id?: string;
  template_version_id?: string;
  rich_parameter_values?: Array<{ name: string; value: string }>;
}

export interface CreateWorkspaceBuildRequest {
  transition: WorkspaceTransition;
  template_version_id?: string;
  rich_parameter_values?: Array<{ name: string; value: string }>;
}

// Deployment health (GET /api/v2/debug/health).
export type HealthSeverity = "ok" | "warning" | "error";

/** Stable codes: operators (and alerting) match on these, never on the message. */
export type HealthCode =
  | "EACS01" // access URL not reachable
  | "EACS02" // access URL answered, but not 200 "OK"
  | "EDB01" // database ping failed
  | "EDB02" // database latency above the threshold
  | "EDERP01" // relay region unreachable
  | "EDERP02" // no relay regions configured
  | "EWS01" // WebSocket to the access URL failed
  | "EPD01" // jobs pending and no provisioner daemon connected
  | "EPD02" // stale provisioner daemons
  | "EPD03" // provisioner daemon version differs from the server's
  | "EREP01" // a replica reports an error (peer relay unreachable, missing relay URL)
  | "EREP02" // a replica's relay or the database is further away than the latency threshold
  | "EUNKNOWN"; // a check failed unexpectedly or timed out

export interface HealthMessage {
  code: HealthCode;
  message: string;
}

export interface HealthSectionBase {
  healthy: boolean;
  severity: HealthSeverity;
  warnings: HealthMessage[];
  /** Why the section is in error, when it is. */
  error?: string;
}

export interface AccessURLHealth extends HealthSectionBase {
  access_url: string;
  reachable: boolean;
  status_code: number;
  healthz_response: string;
  latency_ms: number;
}

export interface DatabaseHealth extends HealthSectionBase {
  reachable: boolean;
  /** Median of the pings. */
  latency_ms: number;
  threshold_ms: number;
  pings_ms: number[];
}

export interface DERPRegionHealth {
  region_id: number;
  region_code: string;
  region_name: string;
  url: string;
  healthy: boolean;
  latency_ms?: number;
  error?: string;
}

export interface DERPHealth extends HealthSectionBase {
  regions: Record<string, DERPRegionHealth>;
}

export interface WebsocketHealth extends HealthSectionBase {
  url: string;
  /** True when the check could not run (the embedded relay is disabled). */
  skipped?: boolean;
  latency_ms?: number;
}

export interface ProvisionerDaemonHealthItem {
  id: string;
  name: string;
  organization_id: string;
  version: string;
  last_seen_at: string | null;
  connected: boolean;
  stale: boolean;
}

export interface ProvisionerDaemonsHealth extends HealthSectionBase {
  server_version: string;
  connected: number;
  pending_jobs: number;
  daemons: ProvisionerDaemonHealthItem[];
}

export interface HealthReport {
  healthy: boolean;
  severity: HealthSeverity;
  /** When the checks ran (RFC 3339). */
  time: string;
  sections: {
    access_url: AccessURLHealth;
    database: DatabaseHealth;
    derp: DERPHealth;
    websocket: WebsocketHealth;
    provisioner_daemons: ProvisionerDaemonsHealth;
    replicas: ReplicasHealth;
  };
}

/** One `coder server` process of an HA deployment (GET /api/v2/replicas). */
export interface Replica {
  id: string;
  hostname: string;
  created_at: string;
  started_at: string;
  updated_at: string;
  /** CODER_DERP_SERVER_RELAY_URL of that replica ("" when unset). */
  relay_address: string;
  region_id: number;
  version: string;
  /** What that replica reports wrong ("" when nothing). */
  error: string;
  /** That replica's last measured round trip to Postgres, in microseconds. */
  database_latency: number;
}

export interface ReplicaPeerHealth {
  id: string;
  hostname: string;
  relay_address: string;
  /** This replica's round trip to that one's relay, when it answered. */
  latency_ms?: number;
  error?: string;
  /** This replica's relay mesh link to that one (absent without the embedded relay). */
  mesh?: { connected: boolean; error?: string };
}

export interface ReplicasHealth extends HealthSectionBase {
  /** This replica. */
  self: Replica;
  /** The other alive replicas, as this one sees them. */
  peers: ReplicaPeerHealth[];
  /** Alive replicas that report an error. */
  replicas_with_errors: Replica[];
  latency_threshold_ms: number;
}
