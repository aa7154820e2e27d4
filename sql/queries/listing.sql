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
