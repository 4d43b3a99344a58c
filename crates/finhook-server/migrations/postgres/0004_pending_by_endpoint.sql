-- The delivery worker pages due work in per endpoint, most overdue first. This partial
-- index holds only pending deliveries, in that order, so a take costs the rows it returns
-- whatever the size of the backlog or of the history; it replaces the (endpoint_id, status)
-- index, whose one user (cancelling an endpoint's pending deliveries) it also serves.
CREATE INDEX deliveries_pending_by_endpoint ON deliveries (endpoint_id, next_attempt_at, id) WHERE status = 'pending';
DROP INDEX deliveries_by_endpoint;
