-- Version 5 (one release): the trace context of events, and two indexes of deliveries that
-- a large store made necessary (the last hour of dead rows, the expiry sweep).
-- The trace context (a W3C traceparent) of the trace begun when an event arrived, handed back
-- with each claim of its deliveries, so an attempt made after a restart or by another replica
-- continues that trace. NULL when the event came with none, and for every event stored
-- before: adding a nullable column without a default rewrites no row.
ALTER TABLE events ADD COLUMN trace_context text;
-- The dead deliveries by finish time, so the status page's last hour reads the dead rows of
-- the hour only: deliveries_dead is by (endpoint, id), and through it the read took every
-- dead row however old and threw away all but the hour's.
CREATE INDEX deliveries_dead_finished ON deliveries (finished_at) WHERE status = 'dead';
-- The open deliveries by endpoint and when their max_age clock started, so the expiry sweep
-- (at start and every 30 s per endpoint) reads the overdue ones, a batch from the front, and
-- not every open delivery of the endpoint: without it a sweep read the whole table, 240 ms
-- at a million pending, none of them overdue. id last: the sweep's order, oldest clock first
-- and by id among equal ones (one ingest or redrive gives a whole batch the same start), is
-- the index's own, so nothing is sorted. `retry_since IS NOT NULL` is always true (the
-- column is NOT NULL); it is there so that only a query bounding retry_since (the sweep)
-- can read this index: the claim's per-record check names `finished_at IS NULL` too, and
-- must be left with deliveries_order (see 0003).
CREATE INDEX deliveries_overdue ON deliveries (endpoint, retry_since, id)
    WHERE finished_at IS NULL AND retry_since IS NOT NULL;
