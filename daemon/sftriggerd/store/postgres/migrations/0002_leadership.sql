-- Leadership: one lease per trigger (its holder, and the epoch that fences a holder that
-- lost it), and the replicas sharing the store, known by their heartbeats.
CREATE TABLE trigger_leases (
    trigger text PRIMARY KEY,
    holder text NOT NULL,
    epoch bigint NOT NULL CHECK (epoch > 0),
    acquired_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    CHECK (expires_at >= acquired_at)
);
CREATE TABLE replicas (
    name text PRIMARY KEY,
    started_at timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL
);
