-- The trace context (a W3C traceparent) of the trace begun when an event arrived, handed back
-- with each claim of its deliveries, so an attempt made after a restart or by another replica
-- continues that trace. NULL when the event came with none, and for every event stored
-- before: adding a nullable column without a default rewrites no row.
ALTER TABLE events ADD COLUMN trace_context text;
