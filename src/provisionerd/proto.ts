// What a provisioner daemon and coderd say to each other: the same shapes travel over the
// WebSocket of an external daemon and through the in-process link of a built-in one.

export type JobType = "template_version_import" | "workspace_build";
export type Transition = "start" | "stop" | "delete";
export type LogLevel = "trace" | "debug" | "info" | "warn" | "error";

export interface JobLog {
  created_at: string;
  source: "provisioner_daemon" | "provisioner";
  level: LogLevel;
  stage: string;
  output: string;
}

export interface WorkspaceBuildInput {
  transition: Transition;
  workspace_id: string;
  workspace_name: string;
  owner_id: string;
  owner_name: string;
  owner_email: string;
  template_name: string;
  template_version_name: string;
  build_number: number;
  parameters: Array<{ name: string; value: string }>;
  /** The driver state of the last successful build, base64 (small: driver bookkeeping only). */
  state: string | null;
  /** Where agents reach coderd. */
  access_url: string;
}

export interface AcquiredJob {
  job_id: string;
  type: JobType;
  provisioner: string;
  file_id: string;
  file_hash: string;
  tags: Record<string, string>;
  workspace_build?: WorkspaceBuildInput;
}

export interface ParameterSpec {
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
  ordering: number;
}

export interface AppSpec {
  slug: string;
  display_name: string;
  url: string;
  command: string;
  subdomain: boolean;
  share: "owner" | "authenticated" | "public";
  healthcheck: { url: string; interval: number; threshold: number } | null;
}

export interface MetadataSpec {
  key: string;
  display_name: string;
  script: string;
  interval: number;
  timeout: number;
}

export interface AgentSpec {
  id: string;
  name: string;
  /** The agent's secret; only on builds that started it. coderd stores a hash. */
  token?: string;
  directory: string;
  env: Record<string, string>;
  startup_script: string;
  startup_script_behavior: "blocking" | "non-blocking";
  startup_script_timeout_seconds: number;
  shutdown_script: string;
  connection_timeout_seconds: number;
  metadata: MetadataSpec[];
  apps: AppSpec[];
}

export interface ResourceSpec {
  type: string;
  name: string;
  agents: AgentSpec[];
}

export interface CompletedJob {
  job_id: string;
  template_import?: {
    parameters: ParameterSpec[];
    start_resources: ResourceSpec[];
    stop_resources: ResourceSpec[];
    readme: string;
  };
  workspace_build?: {
    state: string | null;
    resources: ResourceSpec[];
  };
}

export interface FailedJob {
  job_id: string;
  error: string;
  /** A build that failed part-way may still have changed things: its state, if any. */
  state?: string | null;
}

export interface DaemonIdentity {
  name: string;
  organization: string;
  tags: Record<string, string>;
  provisioners: string[];
  version: string;
}

/** The daemon's view of coderd. */
export interface ProvisionerdClient {
  /** Waits for a job this daemon may run; undefined when the signal aborts the wait. */
  acquireJob(signal: AbortSignal): Promise<AcquiredJob | undefined>;
  /** Appends logs and heartbeats; says whether the job was canceled. */
  updateJob(jobId: string, logs: JobLog[]): Promise<{ canceled: boolean }>;
  completeJob(job: CompletedJob): Promise<void>;
  failJob(job: FailedJob): Promise<void>;
  fetchFile(fileId: string): Promise<Uint8Array>;
  close(): Promise<void>;
}
