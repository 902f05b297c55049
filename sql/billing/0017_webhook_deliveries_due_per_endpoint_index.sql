-- The due webhook deliveries of one endpoint, oldest first. A dispatcher claims at most a few deliveries per endpoint
-- (Billing:Webhooks:MaxInFlightPerEndpoint), reading each endpoint's oldest due rows: through webhook_delivery_due_idx
-- alone that read walks past every due row of an endpoint that never answers (thousands pile up behind its timeouts),
-- at every claim.
-- Built CONCURRENTLY: the dispatchers of running silos insert and update webhook_delivery all the time (see 0016).
CREATE INDEX CONCURRENTLY IF NOT EXISTS webhook_delivery_endpoint_due_idx ON webhook_delivery (endpoint_id, next_attempt_at) WHERE status = 'pending';
