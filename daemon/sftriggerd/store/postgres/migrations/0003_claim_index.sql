-- Indexes the claim walks whatever the table's statistics say. Right after a bulk ingest they
-- still say "nearly empty", and the planner took deliveries_open (open deliveries by
-- endpoint, status and due time) for both halves of the claim: it read and sorted every open
-- delivery of the endpoint, and for each one read them all again for the per-record check.
-- Now each query of the claim has one index that fits it, told apart by partial predicates
-- that no other query of the claim implies, so the planner has nothing else to pick.

-- The claim's queue: open deliveries of an endpoint in id order (claims go oldest first).
-- The claim names `status IN (...)` and not `finished_at IS NULL`, so this is the only index
-- it can walk: in its ORDER BY, from the front, stopping at its LIMIT.
CREATE INDEX deliveries_claim ON deliveries (endpoint, id)
    WHERE status IN ('pending', 'in_flight');
-- The earliest due time of an endpoint (`next_due_in`). Its predicate asks for both, so
-- neither the claim nor its per-record check (which names `finished_at IS NULL` and is left
-- with deliveries_order, probed on (endpoint, order_key)) can read it instead.
CREATE INDEX deliveries_next_due ON deliveries (endpoint, next_attempt_at)
    WHERE status IN ('pending', 'in_flight') AND finished_at IS NULL;
DROP INDEX deliveries_open;
