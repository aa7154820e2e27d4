-- Notifications (docs/rules.md §Notifications): relay the outbox into deliveries, deliver them, the inbox,
-- preferences and the operator's view of failures. market/notify/ runs these.

-- name: lock_relay
-- Relays take turns (an advisory lock until the commit), so webhook deliveries are numbered
-- in the order of their events (docs/webhooks.md).
SELECT pg_advisory_xact_lock(hashtext('market.notify.relay'))

-- name: claim_outbox
-- The oldest unrelayed events; SKIP LOCKED lets several relays share the work, never a row.
-- The subject is what a webhook's sequence counts in: the lot, else the asset, else the
-- organisation.
SELECT id, event, recipient_org_id, recipient_user_id, lot_id, created_at,
       CASE WHEN lot_id IS NOT NULL THEN 'lot:' || lot_id
            WHEN payload ? 'asset_id' THEN 'asset:' || (payload ->> 'asset_id')
            ELSE 'organisation' END AS subject,
       payload->>'email' AS email_to  -- an invitation's address (recipients.py)
FROM outbox
WHERE relayed_at IS NULL
ORDER BY id
LIMIT $1
FOR UPDATE SKIP LOCKED

-- name: recipient_users
-- Who hears each claimed event: the user; else the organisation's active users; else
-- (lot-wide events such as an extension) every active user of the organisations
-- registered in the lot's current round.
WITH o AS (
    SELECT id, recipient_org_id, recipient_user_id, lot_id FROM outbox WHERE id = ANY($1::bigint[])
)
SELECT o.id AS outbox_id, u.id AS user_id, u.email
FROM o JOIN users u ON u.id = o.recipient_user_id
WHERE u.disabled_at IS NULL
UNION ALL
SELECT o.id, u.id, u.email
FROM o JOIN users u ON u.org_id = o.recipient_org_id
WHERE o.recipient_user_id IS NULL AND u.disabled_at IS NULL
UNION ALL
SELECT o.id, u.id, u.email
FROM o
JOIN lots l ON l.id = o.lot_id
JOIN registrations r ON r.lot_id = l.id AND r.round = l.round
JOIN users u ON u.org_id = r.buyer_org_id
WHERE o.recipient_user_id IS NULL AND o.recipient_org_id IS NULL AND u.disabled_at IS NULL

-- name: email_preferences
-- The users' explicit e-mail choices; events without a row follow the defaults.
SELECT user_id, event, enabled
FROM notification_preferences
WHERE user_id = ANY($1::bigint[]) AND channel = 'email'

-- name: webhook_targets
-- Active endpoints subscribed to each event, of the organisations the event concerns.
WITH o AS (
    SELECT id, event, recipient_org_id, recipient_user_id, lot_id
    FROM outbox WHERE id = ANY($1::bigint[])
), orgs AS (
    SELECT o.id AS outbox_id, coalesce(o.recipient_org_id, u.org_id) AS org_id
    FROM o LEFT JOIN users u ON u.id = o.recipient_user_id
    WHERE o.recipient_org_id IS NOT NULL OR o.recipient_user_id IS NOT NULL
    UNION
    SELECT o.id, r.buyer_org_id
    FROM o
    JOIN lots l ON l.id = o.lot_id
    JOIN registrations r ON r.lot_id = l.id AND r.round = l.round
    WHERE o.recipient_org_id IS NULL AND o.recipient_user_id IS NULL
)
SELECT orgs.outbox_id, e.id AS endpoint_id
FROM orgs
JOIN o ON o.id = orgs.outbox_id
JOIN webhook_endpoints e ON e.org_id = orgs.org_id
WHERE e.active AND (cardinality(e.events) = 0 OR o.event = ANY(e.events))
ORDER BY orgs.outbox_id, e.id

-- name: insert_deliveries
-- One row per (event, channel, target); an existing one is left alone. A webhook's has its
-- stream's subject and number ($6, $7; null for the other channels).
INSERT INTO deliveries (outbox_id, channel, target, status, next_attempt_at, created_at,
                        subject, sequence)
SELECT d.outbox_id, d.channel, d.target, 'pending', d.next_attempt_at, $5, d.subject,
       d.sequence
FROM unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[], $6::text[], $7::bigint[])
     AS d (outbox_id, channel, target, next_attempt_at, subject, sequence)
ON CONFLICT (outbox_id, channel, target) DO NOTHING
RETURNING id, channel, attempts, next_attempt_at

-- name: take_sequences
-- Reserve $3 numbers in each webhook stream ($1 endpoint, $2 subject); returns the last
-- one reserved. The row lock orders relays numbering one stream.
INSERT INTO webhook_streams (endpoint_id, subject, last_sequence)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[])
ON CONFLICT (endpoint_id, subject)
DO UPDATE SET last_sequence = webhook_streams.last_sequence + excluded.last_sequence
RETURNING endpoint_id, subject, last_sequence

-- name: mark_relayed
UPDATE outbox SET relayed_at = $2 WHERE id = ANY($1::bigint[])

-- name: due_deliveries
-- Pending deliveries whose try is due: what the queue must hold (refilled after Redis lost it).
SELECT id, attempts, next_attempt_at
FROM deliveries
WHERE status = 'pending' AND next_attempt_at <= $1
ORDER BY next_attempt_at
LIMIT $2

-- name: unlocked_pending
-- Of these deliveries, the pending ones that no running job holds (a delivery job locks
-- its row from its start to its commit): relay.orphaned. Run in a transaction.
SELECT id FROM deliveries
WHERE id = ANY($1::bigint[]) AND status = 'pending'
FOR UPDATE SKIP LOCKED

-- name: lock_deliveries
-- Deliveries with what their messages need (the event, the lot now, the reader, a payment
-- reminder's sale now), for one job at a time: a second copy of the job finds the row
-- locked and skips it. The reader is the inbox's user, the e-mail's addressee, or the
-- event's user for a webhook.
SELECT d.id, d.outbox_id, d.channel, d.target, d.status, d.attempts, d.next_attempt_at,
       d.subject, d.sequence, o.event, o.recipient_org_id, o.recipient_user_id, o.lot_id, o.payload, o.created_at,
       l.reference AS lot_reference, l.title AS lot_title, l.status AS lot_status,
       l.round AS lot_round, l.bidding_starts_at AS lot_bidding_starts_at,
       l.bidding_ends_at AS lot_bidding_ends_at,
       l.current_price_fen AS lot_current_price_fen,
       l.start_price_fen AS lot_start_price_fen, l.deposit_fen AS lot_deposit_fen,
       coalesce(ui.id, ue.id) AS reader_id,
       coalesce(ui.display_name, ue.display_name) AS reader_name,
       coalesce(ui.language, ue.language) AS reader_language,
       s.status AS sale_status
FROM deliveries d
JOIN outbox o ON o.id = d.outbox_id
LEFT JOIN lots l ON l.id = o.lot_id
LEFT JOIN sales s ON o.event = 'payment_due' AND s.id = (o.payload->>'sale_id')::bigint
LEFT JOIN users ui ON d.channel <> 'email' AND ui.id = (
    CASE WHEN d.channel = 'inbox' THEN d.target::bigint ELSE o.recipient_user_id END)
LEFT JOIN users ue ON d.channel = 'email' AND ue.email = d.target
WHERE d.id = ANY($1::bigint[])
ORDER BY d.id
FOR UPDATE OF d SKIP LOCKED

-- name: newer_outbids
-- For each of these outbid events, the latest later outbid of the same bidder on the same
-- lot within the collapse window ($2 after it), if there is one.
SELECT o.id AS outbox_id, n.id AS newer_id
FROM outbox o
CROSS JOIN LATERAL (
    SELECT id FROM outbox
    WHERE event = 'outbid' AND recipient_user_id = o.recipient_user_id AND lot_id = o.lot_id
      AND id > o.id AND created_at <= o.created_at + $2::interval
    ORDER BY id DESC
    LIMIT 1
) n
WHERE o.id = ANY($1::bigint[])

-- name: earlier_pending
-- The first delivery of this webhook stream ($1 endpoint, $2 subject) before number $3 that
-- is still pending: the one $3 waits for (docs/webhooks.md).
SELECT id, sequence FROM deliveries
WHERE channel = 'webhook' AND target = $1 AND subject = $2 AND sequence < $3
  AND status = 'pending'
ORDER BY sequence
LIMIT 1

-- name: mark_waiting
-- A webhook delivery waits for an earlier one of its stream: not due (null) until that one
-- is done (wake_next), and no attempt counted.
UPDATE deliveries SET next_attempt_at = NULL, last_error = $2 WHERE id = $1

-- name: wake_next
-- The stream's next pending delivery after number $3, due now ($4) if it was waiting; run
-- in the transaction that finishes delivery $3 (sent, skipped or failed). The UPDATE waits
-- for a job that holds that row and then sees what it committed.
UPDATE deliveries
SET next_attempt_at = coalesce(next_attempt_at, $4),
    last_error = CASE WHEN next_attempt_at IS NULL THEN NULL ELSE last_error END
WHERE id = (
    SELECT id FROM deliveries
    WHERE channel = 'webhook' AND target = $1 AND subject = $2 AND sequence > $3
      AND status = 'pending'
    ORDER BY sequence
    LIMIT 1
) AND status = 'pending'
RETURNING id, attempts, next_attempt_at

-- name: mark_sent
UPDATE deliveries SET status = 'sent', sent_at = $2, attempts = attempts + 1, last_error = NULL
WHERE id = $1

-- name: mark_skipped
UPDATE deliveries SET status = 'skipped', last_error = $2, next_attempt_at = NULL WHERE id = $1

-- name: mark_retry
UPDATE deliveries SET attempts = $2, next_attempt_at = $3, last_error = $4 WHERE id = $1
RETURNING id, attempts, next_attempt_at

-- name: mark_failed
UPDATE deliveries SET status = 'failed', attempts = $2, next_attempt_at = NULL, last_error = $3
WHERE id = $1

-- name: inbox_sent
-- The inbox message and the delivery marked sent, in one statement of one transaction.
WITH message AS (
    INSERT INTO inbox (user_id, outbox_id, event, title, body, lot_id, created_at)
    VALUES ($3, $4, $5, $6, $7, $8, $9)
    ON CONFLICT (user_id, outbox_id) DO NOTHING
)
UPDATE deliveries SET status = 'sent', sent_at = $2, attempts = attempts + 1, last_error = NULL
WHERE id = $1

-- name: failed_deliveries
-- The operator's list: terminal failures, newest first.
SELECT d.id, d.outbox_id, d.channel, d.target, d.status, d.attempts, d.last_error,
       d.created_at,
       o.event, o.created_at AS event_at, l.reference AS lot_reference
FROM deliveries d
JOIN outbox o ON o.id = d.outbox_id
LEFT JOIN lots l ON l.id = o.lot_id
WHERE d.status = 'failed'
ORDER BY d.created_at DESC, d.id DESC
LIMIT $1

-- name: replay_deliveries
-- Failed deliveries back to pending, as if new; only failed ones (a sent one stays sent).
UPDATE deliveries
SET status = 'pending', attempts = 0, next_attempt_at = $2, last_error = NULL
WHERE status = 'failed' AND ($3 OR id = ANY($1::bigint[]))
RETURNING id, attempts, next_attempt_at

-- name: inbox_list
-- One user's messages, newest first, with the lot's reference for the link.
SELECT i.id, i.outbox_id, i.event, i.title, i.body, i.lot_id, l.reference AS lot_reference,
       i.created_at, i.read_at
FROM inbox i LEFT JOIN lots l ON l.id = i.lot_id
WHERE i.user_id = $1 AND ($2::bigint IS NULL OR i.id < $2) AND (NOT $3 OR i.read_at IS NULL)
ORDER BY i.id DESC
LIMIT $4

-- name: inbox_unread_count
SELECT count(*) FROM inbox WHERE user_id = $1 AND read_at IS NULL

-- name: inbox_mark_read
UPDATE inbox SET read_at = $3 WHERE user_id = $1 AND id = $2 AND read_at IS NULL
RETURNING id

-- name: inbox_exists
SELECT 1 FROM inbox WHERE user_id = $1 AND id = $2

-- name: inbox_mark_all_read
UPDATE inbox SET read_at = $2 WHERE user_id = $1 AND read_at IS NULL

-- name: user_preferences
SELECT event, channel, enabled FROM notification_preferences WHERE user_id = $1

-- name: upsert_preferences
INSERT INTO notification_preferences (user_id, event, channel, enabled)
SELECT $1, p.event, p.channel, p.enabled
FROM unnest($2::text[], $3::text[], $4::boolean[]) AS p (event, channel, enabled)
ON CONFLICT (user_id, event, channel) DO UPDATE SET enabled = excluded.enabled

-- name: set_language
UPDATE users SET language = $2 WHERE id = $1 RETURNING language

-- name: lock_user_language
-- The user's language, the row locked: one user's preference saves take turns.
SELECT language FROM users WHERE id = $1 FOR UPDATE
