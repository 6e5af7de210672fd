-- What coderd knows of a running agent: its connection and lifecycle, and its logs.
ALTER TABLE workspace_agents
    ADD COLUMN first_connected_at timestamptz,
    ADD COLUMN last_connected_at timestamptz,
    ADD COLUMN disconnected_at timestamptz,
    ADD COLUMN lifecycle_state text NOT NULL DEFAULT 'created',
    ADD COLUMN started_at timestamptz,
    ADD COLUMN ready_at timestamptz,
    ADD COLUMN version text NOT NULL DEFAULT '',
    ADD COLUMN operating_system text NOT NULL DEFAULT '',
    ADD COLUMN expanded_directory text NOT NULL DEFAULT '',
    -- key -> { value, error, collected_at } of each metadata command, as last reported.
    ADD COLUMN metadata_values jsonb NOT NULL DEFAULT '{}',
    -- [{ port, network, process_name }] the agent found listening.
    ADD COLUMN listening_ports jsonb NOT NULL DEFAULT '[]',
    -- The agent's SSH host key ("ssh-ed25519 AAAA…"), generated once by the agent, so clients can pin it.
    ADD COLUMN ssh_host_public_key text NOT NULL DEFAULT '';

ALTER TABLE workspace_apps ADD COLUMN health text NOT NULL DEFAULT 'initializing';

CREATE TABLE workspace_agent_logs (
    id bigserial PRIMARY KEY,
    agent_id uuid NOT NULL REFERENCES workspace_agents (id) ON DELETE CASCADE,
    -- The agent numbers its lines; a batch re-sent after a reconnect is stored once.
    seq bigint NOT NULL,
    created_at timestamptz NOT NULL,
    source text NOT NULL,
    level text NOT NULL,
    output text NOT NULL,
    UNIQUE (agent_id, seq)
);
CREATE INDEX workspace_agent_logs_agent ON workspace_agent_logs (agent_id, id);
