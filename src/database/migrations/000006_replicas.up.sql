-- Every `coder server` process on this database (a replica). Each inserts its row at start,
-- heartbeats it (updated_at) every few seconds with what it measured, and sets stopped_at on a
-- clean shutdown. A replica that missed three heartbeats is gone; the others ignore its row and
-- the oldest rows are deleted eventually. Times are the database's clock, never a replica's.
CREATE TABLE replicas (
    id uuid PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz NOT NULL DEFAULT now(),
    stopped_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    hostname text NOT NULL,
    region_id integer NOT NULL,
    -- CODER_DERP_SERVER_RELAY_URL: where the other replicas' relays reach this one's ('' unset).
    relay_address text NOT NULL,
    -- Round trip to Postgres at the last heartbeat, in microseconds.
    database_latency integer NOT NULL DEFAULT 0,
    version text NOT NULL,
    -- What is wrong as this replica sees it (unreachable or slow peers), '' when nothing.
    error text NOT NULL DEFAULT ''
);
CREATE INDEX replicas_updated_at ON replicas (updated_at);

-- A built-in daemon runs inside one replica: when that replica is gone, the jobs it was running
-- are failed by the others at once instead of after the hang timeout. NULL for external daemons.
ALTER TABLE provisioner_daemons ADD COLUMN replica_id uuid;

-- The replica an agent's control connection last reached: a replica records a disconnect only
-- for the agents still connected through it (the agent may already be back through another).
ALTER TABLE workspace_agents ADD COLUMN last_connected_replica_id uuid;
