-- The trace context (a W3C traceparent) of the trace begun when an event arrived, handed back
-- with each claim of its deliveries, so an attempt made after a restart or by another replica
-- continues that trace. NULL when the event came with none, and for every event stored
-- before: adding a nullable column without a default rewrites no row.
ALTER TABLE events ADD COLUMN trace_context text;
-- The dead deliveries by finish time, so the status page's last hour reads the dead rows of
-- the hour only: deliveries_dead is by (endpoint, id), and through it the read took every
-- dead row however old and threw away all but the hour's.
CREATE INDEX deliveries_dead_finished ON deliveries (finished_at) WHERE status = 'dead';
