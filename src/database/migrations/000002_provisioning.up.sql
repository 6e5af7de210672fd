-- Uploaded archives, content-addressed: the same bytes are stored once.
CREATE TABLE files (
    id uuid PRIMARY KEY,
    hash text NOT NULL UNIQUE,
    mimetype text NOT NULL,
    data bytea NOT NULL,
    created_by uuid NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TYPE provisioner_job_type AS ENUM ('template_version_import', 'workspace_build');

CREATE TABLE provisioner_jobs (
    id uuid PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    canceled_at timestamptz,
    completed_at timestamptz,
    -- The running daemon's last sign of life; the reaper fails running jobs whose heartbeat stopped.
    heartbeat_at timestamptz,
    error text,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    initiator_id uuid NOT NULL REFERENCES users (id),
    provisioner text NOT NULL,
    type provisioner_job_type NOT NULL,
    file_id uuid NOT NULL REFERENCES files (id),
    input jsonb NOT NULL DEFAULT '{}',
    tags jsonb NOT NULL DEFAULT '{}',
    worker_id uuid,
    job_status text GENERATED ALWAYS AS (
        CASE
            WHEN completed_at IS NOT NULL AND canceled_at IS NOT NULL THEN 'canceled'
            WHEN completed_at IS NOT NULL AND error IS NOT NULL THEN 'failed'
            WHEN completed_at IS NOT NULL THEN 'succeeded'
            WHEN canceled_at IS NOT NULL THEN 'canceling'
            WHEN started_at IS NOT NULL THEN 'running'
            ELSE 'pending'
        END
    ) STORED
);
-- Acquisition scans only pending jobs, oldest first.
CREATE INDEX provisioner_jobs_pending ON provisioner_jobs (created_at) WHERE started_at IS NULL AND canceled_at IS NULL;
CREATE INDEX provisioner_jobs_running ON provisioner_jobs (heartbeat_at) WHERE started_at IS NOT NULL AND completed_at IS NULL;

CREATE TABLE provisioner_job_logs (
    id bigserial PRIMARY KEY,
    job_id uuid NOT NULL REFERENCES provisioner_jobs (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    source text NOT NULL,
    level text NOT NULL,
    stage text NOT NULL DEFAULT '',
    output text NOT NULL
);
CREATE INDEX provisioner_job_logs_job ON provisioner_job_logs (job_id, id);

CREATE TABLE provisioner_daemons (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name text NOT NULL,
    tags jsonb NOT NULL DEFAULT '{}',
    provisioners text[] NOT NULL DEFAULT '{}',
    version text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz,
    current_job_id uuid REFERENCES provisioner_jobs (id) ON DELETE SET NULL,
    disconnected_at timestamptz
);

CREATE TABLE templates (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name text NOT NULL,
    display_name text NOT NULL DEFAULT '',
    description text NOT NULL DEFAULT '',
    active_version_id uuid NOT NULL,
    created_by uuid NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX templates_org_name ON templates (organization_id, lower(name)) WHERE NOT deleted;

CREATE TABLE template_versions (
    id uuid PRIMARY KEY,
    template_id uuid REFERENCES templates (id) ON DELETE CASCADE,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name text NOT NULL,
    message text NOT NULL DEFAULT '',
    readme text NOT NULL DEFAULT '',
    job_id uuid NOT NULL REFERENCES provisioner_jobs (id),
    created_by uuid NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX template_versions_template_name ON template_versions (template_id, lower(name)) WHERE template_id IS NOT NULL;
ALTER TABLE templates ADD CONSTRAINT templates_active_version FOREIGN KEY (active_version_id) REFERENCES template_versions (id) DEFERRABLE INITIALLY DEFERRED;

CREATE TABLE template_version_parameters (
    template_version_id uuid NOT NULL REFERENCES template_versions (id) ON DELETE CASCADE,
    name text NOT NULL,
    display_name text NOT NULL DEFAULT '',
    description text NOT NULL DEFAULT '',
    type text NOT NULL,
    default_value text,
    mutable boolean NOT NULL DEFAULT false,
    required boolean NOT NULL DEFAULT false,
    options jsonb NOT NULL DEFAULT '[]',
    validation_regex text,
    validation_min double precision,
    validation_max double precision,
    validation_error text NOT NULL DEFAULT '',
    ordering integer NOT NULL DEFAULT 0,
    PRIMARY KEY (template_version_id, name)
);

CREATE TABLE workspaces (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    owner_id uuid NOT NULL REFERENCES users (id),
    template_id uuid NOT NULL REFERENCES templates (id),
    name text NOT NULL,
    deleted boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX workspaces_owner_name ON workspaces (owner_id, lower(name)) WHERE NOT deleted;
CREATE INDEX workspaces_template ON workspaces (template_id) WHERE NOT deleted;

CREATE TYPE workspace_transition AS ENUM ('start', 'stop', 'delete');

CREATE TABLE workspace_builds (
    id uuid PRIMARY KEY,
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    template_version_id uuid NOT NULL REFERENCES template_versions (id),
    build_number integer NOT NULL,
    transition workspace_transition NOT NULL,
    initiator_id uuid NOT NULL REFERENCES users (id),
    reason text NOT NULL DEFAULT 'initiator',
    job_id uuid NOT NULL UNIQUE REFERENCES provisioner_jobs (id),
    -- Opaque driver state, handed to the next build of the workspace.
    provisioner_state bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, build_number)
);

CREATE TABLE workspace_build_parameters (
    workspace_build_id uuid NOT NULL REFERENCES workspace_builds (id) ON DELETE CASCADE,
    name text NOT NULL,
    value text NOT NULL,
    PRIMARY KEY (workspace_build_id, name)
);

-- What a job produced: resources, their agents and apps (import jobs: a preview; builds: real).
CREATE TABLE workspace_resources (
    id uuid PRIMARY KEY,
    job_id uuid NOT NULL REFERENCES provisioner_jobs (id) ON DELETE CASCADE,
    transition workspace_transition NOT NULL,
    type text NOT NULL,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workspace_resources_job ON workspace_resources (job_id);

CREATE TABLE workspace_agents (
    id uuid PRIMARY KEY,
    resource_id uuid NOT NULL REFERENCES workspace_resources (id) ON DELETE CASCADE,
    name text NOT NULL,
    -- SHA-256 of the agent's secret token; the token itself exists only in the workspace.
    auth_token_hash bytea,
    directory text NOT NULL DEFAULT '',
    environment jsonb NOT NULL DEFAULT '{}',
    startup_script text NOT NULL DEFAULT '',
    startup_script_behavior text NOT NULL DEFAULT 'non-blocking',
    startup_script_timeout_seconds integer NOT NULL DEFAULT 0,
    shutdown_script text NOT NULL DEFAULT '',
    connection_timeout_seconds integer NOT NULL DEFAULT 120,
    metadata jsonb NOT NULL DEFAULT '[]',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workspace_agents_resource ON workspace_agents (resource_id);
CREATE UNIQUE INDEX workspace_agents_token ON workspace_agents (auth_token_hash) WHERE auth_token_hash IS NOT NULL;

CREATE TABLE workspace_apps (
    id uuid PRIMARY KEY,
    agent_id uuid NOT NULL REFERENCES workspace_agents (id) ON DELETE CASCADE,
    slug text NOT NULL,
    display_name text NOT NULL DEFAULT '',
    url text NOT NULL DEFAULT '',
    command text NOT NULL DEFAULT '',
    subdomain boolean NOT NULL DEFAULT false,
    sharing_level text NOT NULL DEFAULT 'owner',
    healthcheck jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (agent_id, slug)
);
CREATE UNIQUE INDEX provisioner_daemons_org_name ON provisioner_daemons (organization_id, name);

-- The default organization exists from the start, so built-in provisioner daemons (which serve
-- an organization) can start with the server; first-user setup makes its user the admin.
INSERT INTO organizations (id, name, display_name, is_default)
SELECT gen_random_uuid(), 'coder', 'Coder', true
WHERE NOT EXISTS (SELECT 1 FROM organizations WHERE is_default);
