-- The agent's latest stats report: { connections, sessions: { ssh, reconnecting_pty, speedtest, tcp }, rx_bytes, tx_bytes }.
ALTER TABLE workspace_agents
    ADD COLUMN stats jsonb,
    ADD COLUMN stats_updated_at timestamptz;
