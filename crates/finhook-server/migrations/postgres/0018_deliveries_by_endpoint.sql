-- An endpoint's deliveries, newest first (the dashboard's endpoint page, the API's
-- `GET .../endpoints/{id}/deliveries`): a walk down this index, whatever the endpoint's
-- history. Written once per delivery and never moved (neither column changes), so it adds
-- no work to an attempt's record.
CREATE INDEX deliveries_by_endpoint_id ON deliveries (endpoint_id, id);
