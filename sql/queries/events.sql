-- Producers of the events nobody else writes (docs/rules.md §Notifications): bidding opened,
-- ending soon, a published lot matching saved interests, a monitoring flag. Each is one INSERT …
-- SELECT in the transaction of its cause; dedupe_key is unique, so writing an event twice
-- (a job run twice, two workers at once) leaves one row.
--
-- Registered bidders are the registrations of the lot's current round whose deposit is
-- awaited or confirmed: during bidding nothing else exists, and a registration settled
-- (released, applied, forfeited) has nothing left to be told about the bidding.

-- name: insert_bidding_opened
-- One row per registration of the round that just opened. $1 lot, $2 round, $3 at.
INSERT INTO outbox (event, recipient_org_id, recipient_user_id, lot_id, payload, dedupe_key,
                    created_at)
SELECT 'bidding_opened', r.buyer_org_id, r.user_id, l.id,
       jsonb_build_object(
           'lot_id', l.id, 'lot_reference', l.reference, 'lot_title', l.title,
           'round', r.round, 'registration_id', r.id, 'bidder_code', r.bidder_code,
           'deposit_status', r.deposit_status, 'auction_kind', l.auction_kind,
           'start_price_fen', l.start_price_fen, 'increment_fen', l.increment_fen,
           'starts_at', l.bidding_starts_at, 'ends_at', l.bidding_ends_at),
       format('bidding_opened:%s:%s:%s', l.id, r.round, r.id), $3
FROM lots l
JOIN registrations r ON r.lot_id = l.id AND r.round = $2
WHERE l.id = $1 AND r.deposit_status IN ('awaiting', 'confirmed')
ORDER BY r.id
ON CONFLICT (dedupe_key) DO NOTHING

-- name: insert_ending_soon
-- The reminders due at $1 for the lead times $2 (seconds; $3 = the longest). For each lot
-- bidding now, the due lead is the shortest one whose moment (current end − lead) has come
-- and came after the opening; one row per registration. Computed from the current end
-- each run, so an extension moves every reminder not yet sent, and `end > $1` sends
-- nothing after the close. lots_catalogue_ending serves the range on bidding_ends_at.
WITH due AS (
    SELECT l.id, l.round, l.reference, l.title, l.auction_kind, l.bidding_ends_at,
           l.current_price_fen, l.start_price_fen,
           (SELECT min(s) FROM unnest($2::int[]) AS s
            WHERE l.bidding_ends_at - make_interval(secs => s) <= $1
              AND l.bidding_ends_at - make_interval(secs => s) > l.bidding_starts_at) AS lead_s
    FROM lots l
    WHERE l.status = 'bidding' AND l.bidding_ends_at > $1
      AND l.bidding_ends_at <= $1 + make_interval(secs => $3)
)
INSERT INTO outbox (event, recipient_org_id, recipient_user_id, lot_id, payload, dedupe_key,
                    created_at)
SELECT 'ending_soon', r.buyer_org_id, r.user_id, d.id,
       jsonb_build_object(
           'lot_id', d.id, 'lot_reference', d.reference, 'lot_title', d.title,
           'round', d.round, 'registration_id', r.id, 'bidder_code', r.bidder_code,
           'deposit_status', r.deposit_status, 'lead_s', d.lead_s, 'ends_at', d.bidding_ends_at,
           -- a sealed auction's price is nobody's business until the close
           'price_fen', CASE WHEN d.auction_kind = 'sealed' THEN NULL
                             ELSE coalesce(d.current_price_fen, d.start_price_fen) END),
       format('ending_soon:%s:%s:%s:%s', d.id, d.round, d.lead_s, r.id), $1
FROM due d
JOIN registrations r ON r.lot_id = d.id AND r.round = d.round
WHERE d.lead_s IS NOT NULL AND r.deposit_status IN ('awaiting', 'confirmed')
ORDER BY d.id, r.id
ON CONFLICT (dedupe_key) DO NOTHING
RETURNING id, lot_id, recipient_user_id, dedupe_key

-- name: insert_lot_matched
-- Every saved interest the published lot $1 matches, at $2: all given criteria hold (any
-- of its IPC prefixes among the lot's IPC keys; any of its keywords, stored as tsquery
-- text, in the lot's search vector; the start price within the range). One row per user,
-- for the user's oldest matching interest: two interests of one buyer matching the same
-- lot make one message. Disabled users hear nothing.
INSERT INTO outbox (event, recipient_org_id, recipient_user_id, lot_id, payload, dedupe_key,
                    created_at)
SELECT DISTINCT ON (si.user_id)
       'lot_matched', u.org_id, si.user_id, l.id,
       jsonb_build_object(
           'lot_id', l.id, 'lot_reference', l.reference, 'lot_title', l.title,
           'interest_id', si.id, 'round', l.round, 'region', l.region,
           'asset_kinds', l.asset_kinds, 'start_price_fen', l.start_price_fen,
           'deposit_fen', l.deposit_fen, 'starts_at', l.bidding_starts_at,
           'ends_at', l.bidding_ends_at),
       format('lot_matched:%s:%s', l.id, si.id), $2
FROM lots l
JOIN saved_interests si
  ON (cardinality(si.ipc_prefixes) = 0 OR si.ipc_prefixes && l.ipc_keys)
 AND (si.price_min_fen IS NULL OR l.start_price_fen >= si.price_min_fen)
 AND (si.price_max_fen IS NULL OR l.start_price_fen <= si.price_max_fen)
 AND (cardinality(si.keywords) = 0
      OR EXISTS (SELECT FROM unnest(si.keywords) AS k WHERE l.search @@ to_tsquery('simple', k)))
JOIN users u ON u.id = si.user_id AND u.disabled_at IS NULL
WHERE l.id = $1
ORDER BY si.user_id, si.id
ON CONFLICT (dedupe_key) DO NOTHING

-- name: insert_monitoring_flags
-- The flags just raised on bank $1's assets ($3 asset ids, $4 kinds), told to the bank at
-- $2. The open flag of an (asset, kind) is unique (monitoring_flags_open).
INSERT INTO outbox (event, recipient_org_id, recipient_user_id, lot_id, payload, dedupe_key,
                    created_at)
SELECT 'monitoring_flag', f.bank_org_id, NULL, NULL,
       jsonb_build_object(
           'flag_id', f.id, 'kind', f.kind, 'detail', f.detail, 'raised_at', f.raised_at,
           'asset_id', a.id, 'asset_kind', a.kind, 'asset_number', a.number,
           'asset_title', a.title),
       format('monitoring_flag:%s', f.id), $2
FROM unnest($3::bigint[], $4::text[]) AS raised (asset_id, kind)
JOIN monitoring_flags f ON f.asset_id = raised.asset_id AND f.kind = raised.kind
                       AND f.resolved_at IS NULL AND f.bank_org_id = $1
JOIN ip_assets a ON a.id = f.asset_id
ON CONFLICT (dedupe_key) DO NOTHING

-- --- saved interests (订阅) -------------------------------------------------------------

-- name: lock_user
-- Serialises one user's interest changes, so the per-user limit holds under concurrency.
SELECT id FROM users WHERE id = $1 FOR UPDATE

-- name: count_interests
SELECT count(*) FROM saved_interests WHERE user_id = $1

-- name: insert_interest
INSERT INTO saved_interests (user_id, ipc_prefixes, keywords, price_min_fen, price_max_fen,
                             created_at)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id, ipc_prefixes, keywords, price_min_fen, price_max_fen, created_at

-- name: user_interests
-- The user's interests, oldest first (saved_interests_user).
SELECT id, ipc_prefixes, keywords, price_min_fen, price_max_fen, created_at
FROM saved_interests WHERE user_id = $1 ORDER BY id

-- name: delete_interest
-- Only the user's own: another user's interest is not found.
DELETE FROM saved_interests WHERE id = $1 AND user_id = $2
RETURNING id, ipc_prefixes, keywords, price_min_fen, price_max_fen, created_at
