"""SQLite schema versions. Times are REAL Unix seconds; bodies are the exact webhook bytes."""

MIGRATIONS: list[str] = [
    # 1: events (the idempotency key), deliveries (the outbox), checkpoints.
    """
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        trigger TEXT NOT NULL,
        event_id TEXT NOT NULL,
        record_id TEXT,
        change TEXT NOT NULL DEFAULT '',
        occurred_at REAL NOT NULL,
        body BLOB NOT NULL,
        created_at REAL NOT NULL,
        UNIQUE (trigger, event_id)
    );
    CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        event_seq INTEGER NOT NULL REFERENCES events (seq),
        endpoint TEXT NOT NULL,
        -- trigger + record id when the endpoint delivers each record's changes in order
        order_key TEXT,
        status TEXT NOT NULL
            CHECK (status IN ('pending', 'in_flight', 'delivered', 'dead')),
        attempts INTEGER NOT NULL DEFAULT 0,
        -- pending: when to try next, in_flight: when the lease runs out
        next_attempt_at REAL,
        lease_token TEXT,
        last_status INTEGER,
        last_error TEXT,
        created_at REAL NOT NULL,
        retry_since REAL NOT NULL,
        finished_at REAL
    );
    CREATE INDEX events_record ON events (trigger, record_id, seq);
    CREATE INDEX deliveries_due ON deliveries (endpoint, status, next_attempt_at);
    CREATE INDEX deliveries_order ON deliveries (endpoint, order_key, id)
        WHERE status IN ('pending', 'in_flight') AND order_key IS NOT NULL;
    CREATE INDEX deliveries_finished ON deliveries (status, finished_at);
    CREATE INDEX deliveries_event ON deliveries (event_seq);
    CREATE TABLE checkpoints (
        trigger TEXT PRIMARY KEY,
        position TEXT NOT NULL,
        event_time REAL,
        updated_at REAL NOT NULL
    );
    """,
    # 2: the claim's queue: pending deliveries per endpoint in id order, with what the claim
    # filters on, so claiming from a long backlog reads only the rows it takes.
    """
    CREATE INDEX deliveries_pending ON deliveries (endpoint, id, next_attempt_at, order_key)
        WHERE status = 'pending';
    """,
    # 3: fewer index writes per delivery, and none for what only a finished row needs. A
    # claim (pending to in flight) now rewrites 3 index entries instead of 7, a delivered
    # outcome 3 instead of 5; the outbox counts read open and dead rows only, not history.
    # `finished_at IS NULL` holds exactly while a delivery is pending or in flight, and a
    # claim does not change it, so the per-record order index is left alone by claims; the
    # two updates make it hold for every row an older version wrote.
    """
    UPDATE deliveries SET finished_at = NULL
        WHERE status IN ('pending', 'in_flight') AND finished_at IS NOT NULL;
    UPDATE deliveries SET finished_at = created_at
        WHERE status IN ('delivered', 'dead') AND finished_at IS NULL;
    DROP INDEX deliveries_due;
    DROP INDEX deliveries_order;
    DROP INDEX deliveries_finished;
    CREATE INDEX deliveries_open ON deliveries (endpoint, status, next_attempt_at)
        WHERE finished_at IS NULL;
    CREATE INDEX deliveries_order ON deliveries (endpoint, order_key, id)
        WHERE finished_at IS NULL AND order_key IS NOT NULL;
    CREATE INDEX deliveries_dead ON deliveries (status, id) WHERE status = 'dead';
    CREATE INDEX deliveries_delivered ON deliveries (finished_at) WHERE status = 'delivered';
    """,
    # 4: poison events: messages from Salesforce that could not be turned into events, kept
    # with their reason while the source moves past them.
    """
    CREATE TABLE poison (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        trigger TEXT NOT NULL,
        reason TEXT NOT NULL,
        message TEXT NOT NULL,
        received_at REAL NOT NULL
    );
    CREATE INDEX poison_trigger ON poison (trigger, id);
    """,
    # 5: every attempt of a delivery, kept until the delivery is pruned: when, how long, the
    # status, the error, the start of the answer, and when the next attempt was set for.
    """
    CREATE TABLE attempts (
        id INTEGER PRIMARY KEY,
        delivery_id INTEGER NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
        at REAL NOT NULL,
        duration_ms INTEGER,
        status INTEGER,
        error TEXT,
        answer TEXT,
        next_attempt_at REAL
    );
    CREATE INDEX attempts_delivery ON attempts (delivery_id, id);
    """,
    # 6: what a delivery's columns must agree on, as CHECK constraints, so no bug (and no
    # second process running other code) can write a row the claim, the counts or the
    # pruner would misread: finished_at is set exactly when the delivery is finished, an open
    # delivery has a time it comes due, a lease token exactly while in flight, attempts >= 0.
    # SQLite adds constraints only by rebuilding the table: rows an older version (or a hand)
    # left contradicting them are first made to agree, the ids and their sequence are kept,
    # and the indexes are made again.
    """
    UPDATE deliveries SET finished_at = NULL
        WHERE status IN ('pending', 'in_flight') AND finished_at IS NOT NULL;
    UPDATE deliveries SET finished_at = created_at
        WHERE status IN ('delivered', 'dead') AND finished_at IS NULL;
    UPDATE deliveries SET status = 'pending' WHERE status = 'in_flight' AND lease_token IS NULL;
    UPDATE deliveries SET lease_token = NULL
        WHERE status <> 'in_flight' AND lease_token IS NOT NULL;
    UPDATE deliveries SET next_attempt_at = created_at
        WHERE status IN ('pending', 'in_flight') AND next_attempt_at IS NULL;
    UPDATE deliveries SET attempts = 0 WHERE attempts < 0;
    CREATE TABLE deliveries_checked (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        event_seq INTEGER NOT NULL REFERENCES events (seq),
        endpoint TEXT NOT NULL,
        order_key TEXT,
        status TEXT NOT NULL
            CHECK (status IN ('pending', 'in_flight', 'delivered', 'dead')),
        attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        next_attempt_at REAL,
        lease_token TEXT,
        last_status INTEGER,
        last_error TEXT,
        created_at REAL NOT NULL,
        retry_since REAL NOT NULL,
        finished_at REAL,
        CONSTRAINT finished_exactly_when_done
            CHECK ((finished_at IS NULL) = (status IN ('pending', 'in_flight'))),
        CONSTRAINT open_has_a_due_time
            CHECK (status NOT IN ('pending', 'in_flight') OR next_attempt_at IS NOT NULL),
        CONSTRAINT leased_exactly_in_flight
            CHECK ((lease_token IS NOT NULL) = (status = 'in_flight'))
    );
    INSERT INTO deliveries_checked (id, event_seq, endpoint, order_key, status, attempts,
        next_attempt_at, lease_token, last_status, last_error, created_at, retry_since,
        finished_at)
        SELECT id, event_seq, endpoint, order_key, status, attempts, next_attempt_at,
            lease_token, last_status, last_error, created_at, retry_since, finished_at
        FROM deliveries;
    DELETE FROM sqlite_sequence WHERE name = 'deliveries_checked';
    INSERT INTO sqlite_sequence (name, seq)
        SELECT 'deliveries_checked', seq FROM sqlite_sequence WHERE name = 'deliveries';
    DROP TABLE deliveries;
    ALTER TABLE deliveries_checked RENAME TO deliveries;
    CREATE INDEX deliveries_event ON deliveries (event_seq);
    CREATE INDEX deliveries_pending ON deliveries (endpoint, id, next_attempt_at, order_key)
        WHERE status = 'pending';
    CREATE INDEX deliveries_open ON deliveries (endpoint, status, next_attempt_at)
        WHERE finished_at IS NULL;
    CREATE INDEX deliveries_order ON deliveries (endpoint, order_key, id)
        WHERE finished_at IS NULL AND order_key IS NOT NULL;
    CREATE INDEX deliveries_dead ON deliveries (status, id) WHERE status = 'dead';
    CREATE INDEX deliveries_delivered ON deliveries (finished_at) WHERE status = 'delivered';
    """,
    # 7: leadership: one lease per trigger (its holder, and the epoch that fences a holder
    # that lost it), and the replicas sharing the store, known by their heartbeats.
    """
    CREATE TABLE trigger_leases (
        trigger TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        epoch INTEGER NOT NULL CHECK (epoch > 0),
        acquired_at REAL NOT NULL,
        expires_at REAL NOT NULL
    );
    CREATE TABLE replicas (
        name TEXT PRIMARY KEY,
        started_at REAL NOT NULL,
        heartbeat_at REAL NOT NULL
    );
    """,
    # 8: reads a large backlog made slow. The in-flight deliveries, newest first, without
    # reading the rest: the status page asks for them, and with fewer in flight than it asks
    # for (always, below 200 in flight) SQLite read the whole table backwards, 60 ms at a
    # million pending; only leased rows are in this index. And the open deliveries by when
    # their max_age clock started, so the expiry sweep (at start and every 30 s) reads the
    # overdue ones, not every open one: 250 - 550 ms at a million, none of them overdue.
    """
    CREATE INDEX deliveries_in_flight ON deliveries (id) WHERE status = 'in_flight';
    CREATE INDEX deliveries_overdue ON deliveries (endpoint, retry_since)
        WHERE finished_at IS NULL;
    """,
    # 9: the trace context (a W3C traceparent) of the trace begun when an event arrived,
    # handed back with each claim of its deliveries, so an attempt made after a restart or by
    # another replica continues that trace. NULL when the event came with none, and for every
    # event stored before: adding a nullable column rewrites no row. And the dead deliveries
    # by finish time, so the status page's last hour reads the dead rows of the hour only:
    # through deliveries_dead it walked every dead row however old (25 ms a read with 100 000
    # dead a week old, on the thread every claim and outcome waits for).
    """
    ALTER TABLE events ADD COLUMN trace_context TEXT;
    CREATE INDEX deliveries_dead_finished ON deliveries (finished_at) WHERE status = 'dead';
    """,
]
