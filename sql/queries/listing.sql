-- Exchange listing (market/listing/).

-- name: qualified_intents
-- The round's intents whose deposit is confirmed (qualified), with what a sale needs.
SELECT r.id, r.buyer_org_id, r.user_id, r.bidder_code, r.preemptive_rank, r.deposit_fen,
       r.deposit_status, r.transfer_reference
FROM registrations r
WHERE r.lot_id = $1 AND r.round = $2 AND r.deposit_status = 'confirmed'
ORDER BY r.id

-- name: insert_period
INSERT INTO listing_periods (lot_id, round, ends_at, outcome, qualified)
VALUES ($1, $2, $3, $4, $5)

-- name: last_period
SELECT lot_id, round, ends_at, outcome, qualified, extended_to
FROM listing_periods WHERE lot_id = $1 AND round = $2
ORDER BY ends_at DESC LIMIT 1

-- name: mark_extended
UPDATE listing_periods SET extended_to = $4 WHERE lot_id = $1 AND round = $2 AND ends_at = $3

-- name: insert_transfer
INSERT INTO listing_transfers (lot_id, round, registration_id, buyer_org_id, listing_price_fen,
                               confirm_by, status, created_at)
VALUES ($1, $2, $3, $4, $5, $6, 'awaiting', $7)
RETURNING id

-- name: lock_transfer
-- The lot's current round's transfer; the caller holds the lot row's lock.
SELECT t.*, l.reference AS lot_reference, l.title AS lot_title, l.bank_org_id
FROM listing_transfers t JOIN lots l ON l.id = t.lot_id AND l.round = t.round
WHERE t.lot_id = $1
FOR UPDATE OF t

-- name: transfer_of_lot
SELECT t.*, l.reference AS lot_reference, l.title AS lot_title, l.bank_org_id
FROM listing_transfers t JOIN lots l ON l.id = t.lot_id AND l.round = t.round
WHERE t.lot_id = $1

-- name: buyer_confirms
UPDATE listing_transfers SET price_fen = $2, buyer_confirmed_at = $3, buyer_confirmed_by = $4
WHERE id = $1

-- name: bank_confirms
UPDATE listing_transfers SET bank_confirmed_at = $2, bank_confirmed_by = $3,
       status = 'transferred', sale_id = $4
WHERE id = $1

-- name: lapse_transfer
UPDATE listing_transfers SET status = 'lapsed' WHERE id = $1

-- name: due_transfers
-- Awaiting transfers past their deadline (read only: the lapse locks the lot row first,
-- then re-reads the transfer).
SELECT t.lot_id FROM listing_transfers t
WHERE t.status = 'awaiting' AND t.confirm_by <= $1
ORDER BY t.confirm_by LIMIT $2

-- name: registration_row
SELECT r.id, r.buyer_org_id, r.user_id, r.deposit_fen, r.deposit_status
FROM registrations r WHERE r.id = $1

-- name: lot_by_reference
SELECT id, bank_org_id FROM lots WHERE reference = $1 AND status <> 'draft'

-- name: insert_outbox
INSERT INTO outbox (event, recipient_org_id, recipient_user_id, lot_id, payload, dedupe_key,
                    created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (dedupe_key) DO NOTHING

-- name: listing_view
-- A published listing's public state: the lot, its current round's periods and transfer.
SELECT l.id, l.reference, l.title, l.status, l.round, l.start_price_fen, l.deposit_fen,
       l.announced_at, l.bidding_starts_at, l.bidding_ends_at, l.bank_org_id, l.terms,
       t.status AS transfer_status, t.confirm_by, t.price_fen AS transfer_price_fen,
       t.buyer_org_id AS transfer_buyer_org_id, t.buyer_confirmed_at, t.bank_confirmed_at,
       t.sale_id
FROM lots l
LEFT JOIN listing_transfers t ON t.lot_id = l.id AND t.round = l.round
WHERE l.reference = $1 AND l.status <> 'draft' AND l.terms->>'mode' = 'listing'

-- name: round_periods
SELECT ends_at, outcome, qualified, extended_to
FROM listing_periods WHERE lot_id = $1 AND round = $2 ORDER BY ends_at

-- name: round_intents
-- How many intents the round has, and how many qualified (deposit confirmed).
SELECT count(*) AS intents,
       count(*) FILTER (WHERE deposit_status IN ('confirmed', 'applied')) AS qualified
FROM registrations WHERE lot_id = $1 AND round = $2

-- name: operator_listings
-- Every published listing, newest first, with its round's latest period and transfer.
SELECT l.reference, l.case_id, l.title, l.status, l.round, l.start_price_fen,
       l.bidding_starts_at, o.name AS bank_name,
       (SELECT p.outcome FROM listing_periods p WHERE p.lot_id = l.id AND p.round = l.round
        ORDER BY p.ends_at DESC LIMIT 1) AS last_outcome,
       t.status AS transfer_status, t.confirm_by
FROM lots l
JOIN organisations o ON o.id = l.bank_org_id
LEFT JOIN listing_transfers t ON t.lot_id = l.id AND t.round = l.round
WHERE l.status <> 'draft' AND l.terms->>'mode' = 'listing'
ORDER BY l.published_at DESC NULLS LAST, l.id DESC
LIMIT $1
