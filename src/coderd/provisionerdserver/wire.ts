// Shapes an external daemon may send, checked before anything reaches the database: a daemon
// holds a key, but its messages are still input.
import { z } from "zod";

const str = (max: number) => z.string().max(max);

export const jobLogSchema = z.object({
  created_at: z.string().datetime({ offset: true }),
  source: z.enum(["provisioner_daemon", "provisioner"]),
  level: z.enum(["trace", "debug", "info", "warn", "error"]),
  stage: str(128),
  output: str(64 * 1024).transform((s) => s.replaceAll("\0", "")),
});

const app = z.object({
  slug: str(64),
  display_name: str(128),
  url: str(2048),
  command: str(4096),
  subdomain: z.boolean(),
  share: z.enum(["owner", "authenticated", "public"]),
  healthcheck: z.object({ url: str(2048), interval: z.number().int().positive(), threshold: z.number().int().positive() }).nullable(),
});

const agent = z.object({
  id: z.string().uuid(),
  name: str(64),
  token: str(256).optional(),
  directory: str(4096),
  env: z.record(str(256), str(64 * 1024)),
  startup_script: str(256 * 1024),
  startup_script_behavior: z.enum(["blocking", "non-blocking"]),
  startup_script_timeout_seconds: z.number().int().nonnegative(),
  shutdown_script: str(256 * 1024),
  connection_timeout_seconds: z.number().int().nonnegative(),
  metadata: z.array(z.object({ key: str(128), display_name: str(128), script: str(64 * 1024), interval: z.number().int().positive(), timeout: z.number().int().positive() })).max(100),
  apps: z.array(app).max(100),
});

const resource = z.object({ type: str(128), name: str(128), agents: z.array(agent).max(32) });

const parameter = z.object({
  name: str(64),
  display_name: str(128),
  description: str(4096),
  type: z.enum(["string", "number", "bool", "list(string)"]),
  default_value: str(4096).nullable(),
  mutable: z.boolean(),
  required: z.boolean(),
  options: z.array(z.object({ name: str(128), value: str(4096), description: str(4096).optional() })).max(256),
  validation_regex: str(1024).nullable(),
  validation_min: z.number().nullable(),
  validation_max: z.number().nullable(),
  validation_error: str(1024),
  ordering: z.number().int(),
});

const state = z.string().max(16 * 1024 * 1024).nullable();

export const completedJobSchema = z.object({
  job_id: z.string().uuid(),
  template_import: z
    .object({ parameters: z.array(parameter).max(256), start_resources: z.array(resource).max(64), stop_resources: z.array(resource).max(64), readme: str(1024 * 1024) })
    .optional(),
  workspace_build: z.object({ state, resources: z.array(resource).max(64) }).optional(),
});

export const failedJobSchema = z.object({ job_id: z.string().uuid(), error: str(64 * 1024), state: state.optional() });
