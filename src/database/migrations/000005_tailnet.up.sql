-- The coordinator's state, shared by every replica so that any one can serve any peer.
-- A replica that coordinates peers heartbeats here; the peers of a replica whose heartbeat
-- stopped are removed by the others.
CREATE TABLE tailnet_coordinators (
    id uuid PRIMARY KEY,
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);

-- One row per connected peer: an agent (id = the agent's id) or a client connection that asked
-- for one agent. node is what the peer said of itself (key, home relay, direct endpoints).
CREATE TABLE tailnet_peers (
    id uuid PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('agent', 'client')),
    agent_id uuid NOT NULL REFERENCES workspace_agents (id) ON DELETE CASCADE,
    coordinator_id uuid NOT NULL REFERENCES tailnet_coordinators (id) ON DELETE CASCADE,
    node jsonb,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tailnet_peers_agent ON tailnet_peers (agent_id);
