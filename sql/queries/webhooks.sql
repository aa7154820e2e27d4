-- Webhook endpoints of organisations (docs/rules.md §Notifications). Every query of one organisation's
-- endpoints has org_id in its WHERE: another organisation's endpoint is simply not found.

-- name: lock_org
-- Serialises endpoint changes of one organisation, so the per-organisation cap holds.
SELECT id FROM organisations WHERE id = $1 FOR UPDATE

-- name: member
-- The acting user's role and language, if they belong to the organisation and are enabled.
SELECT role, language FROM users WHERE id = $1 AND org_id = $2 AND disabled_at IS NULL

-- name: count_active
-- How many active endpoints the organisation has.
SELECT count(*) FROM webhook_endpoints WHERE org_id = $1 AND active

-- name: insert_endpoint
-- A new endpoint, active.
INSERT INTO webhook_endpoints (org_id, url, format, secret, events, created_at)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id, org_id, url, format, secret, events, active, created_at

-- name: org_endpoints
-- The organisation's endpoints, active first.
SELECT id, org_id, url, format, secret, events, active, created_at
FROM webhook_endpoints WHERE org_id = $1
ORDER BY active DESC, id

-- name: org_endpoint
-- One endpoint of the organisation.
SELECT id, org_id, url, format, secret, events, active, created_at
FROM webhook_endpoints WHERE id = $1 AND org_id = $2

-- name: deactivate_endpoint
-- Stops deliveries to an endpoint; the row stays for the deliveries that name it.
UPDATE webhook_endpoints SET active = false
WHERE id = $1 AND org_id = $2 AND active
RETURNING id

-- name: endpoints_for_event
-- The organisation's active endpoints that take this event (an empty list takes all).
SELECT id, org_id, url, format, secret, events, active, created_at
FROM webhook_endpoints
WHERE org_id = $1 AND active AND (events = '{}' OR $2 = ANY (events))
ORDER BY id

-- name: endpoint_by_id
-- An endpoint by id, for the delivery job (its target names the endpoint).
SELECT id, org_id, url, format, secret, events, active, created_at
FROM webhook_endpoints WHERE id = $1
