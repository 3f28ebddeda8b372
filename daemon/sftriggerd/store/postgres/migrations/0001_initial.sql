-- Times are timestamptz from the database clock; bodies are the exact webhook bytes.

-- The store's clock: the database's now(), shifted by the session's `sftriggerd.clock_shift`
-- (an interval) when one is set. Only tests set it, to move time ahead (a lease running
-- out, a retry coming due) without waiting; in service every replica reads the server's
-- clock unshifted, so they agree on what is due whatever their own clocks say.
CREATE FUNCTION sftriggerd_now() RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT now() + coalesce(
        nullif(current_setting('sftriggerd.clock_shift', true), '')::interval, interval '0')
$$;
-- The same clock read as the statement runs (clock_timestamp()), not as the transaction
-- began: for a time that must come after whatever ran before it in the transaction.
CREATE FUNCTION sftriggerd_clock() RETURNS timestamptz
LANGUAGE sql VOLATILE AS $$
    SELECT clock_timestamp() + coalesce(
        nullif(current_setting('sftriggerd.clock_shift', true), '')::interval, interval '0')
$$;

-- The idempotency key of ingest: (trigger, event_id).
CREATE TABLE events (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trigger text NOT NULL,
    event_id text NOT NULL,
    record_id text,
    change text NOT NULL DEFAULT '',
    occurred_at timestamptz NOT NULL,
    body bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT sftriggerd_now(),
    UNIQUE (trigger, event_id)
);
CREATE INDEX events_record ON events (trigger, record_id, seq);

-- The outbox. The CHECKs are the invariants every engine keeps by code; here the database
-- refuses a row that breaks one, whichever replica wrote it.
CREATE TABLE deliveries (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_seq bigint NOT NULL REFERENCES events (seq),
    endpoint text NOT NULL,
    -- set when the endpoint delivers each record's changes in order
    order_key text,
    status text NOT NULL CHECK (status IN ('pending', 'in_flight', 'delivered', 'dead')),
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- pending: when to try next; in_flight: when the lease runs out
    next_attempt_at timestamptz,
    lease_token text,
    last_status integer,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT sftriggerd_now(),
    retry_since timestamptz NOT NULL DEFAULT sftriggerd_now(),
    finished_at timestamptz,
    CONSTRAINT finished_exactly_when_done
        CHECK ((finished_at IS NULL) = (status IN ('pending', 'in_flight'))),
    CONSTRAINT open_deliveries_have_a_time
        CHECK (status NOT IN ('pending', 'in_flight') OR next_attempt_at IS NOT NULL),
    CONSTRAINT leased_exactly_in_flight CHECK ((lease_token IS NOT NULL) = (status = 'in_flight'))
);
-- The claim's queue: pending deliveries per endpoint in id order.
CREATE INDEX deliveries_pending ON deliveries (endpoint, id) INCLUDE (next_attempt_at, order_key)
    WHERE status = 'pending';
CREATE INDEX deliveries_open ON deliveries (endpoint, status, next_attempt_at)
    WHERE finished_at IS NULL;
-- The oldest open change of a record, for per-record order.
CREATE INDEX deliveries_order ON deliveries (endpoint, order_key, id)
    WHERE finished_at IS NULL AND order_key IS NOT NULL;
-- Per-record order, enforced: one record never has two deliveries in flight to one endpoint,
-- whatever two replicas claim at once.
CREATE UNIQUE INDEX deliveries_one_in_flight_per_record ON deliveries (endpoint, order_key)
    WHERE status = 'in_flight' AND order_key IS NOT NULL;
CREATE INDEX deliveries_dead ON deliveries (endpoint, id) WHERE status = 'dead';
CREATE INDEX deliveries_delivered ON deliveries (finished_at) WHERE status = 'delivered';
CREATE INDEX deliveries_event ON deliveries (event_seq);

CREATE TABLE checkpoints (
    trigger text PRIMARY KEY,
    position jsonb NOT NULL,
    event_time timestamptz,
    updated_at timestamptz NOT NULL DEFAULT sftriggerd_now()
);

-- Messages that could not be turned into events, kept while the source moves past them.
CREATE TABLE poison (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trigger text NOT NULL,
    reason text NOT NULL,
    message text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT sftriggerd_now()
);
CREATE INDEX poison_trigger ON poison (trigger, id);

-- Every attempt of a delivery, kept until the delivery is pruned.
CREATE TABLE attempts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id bigint NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    at timestamptz NOT NULL,
    duration_ms integer,
    status integer,
    error text,
    answer text,
    next_attempt_at timestamptz
);
CREATE INDEX attempts_delivery ON attempts (delivery_id, id);

-- The streamed replay id of a stored webhook body (`source.replay_id`), NULL when the body is
-- not JSON or has none: a resend "after a replay id" selects by it.
CREATE FUNCTION sftriggerd_replay_id(body bytea) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN (convert_from(body, 'UTF8')::jsonb -> 'source' ->> 'replay_id')::numeric;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$;
