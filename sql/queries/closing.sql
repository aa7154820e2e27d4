-- name: due_to_close
-- Lots still bidding whose effective end has come (the sweeper; failed ones are skipped).
SELECT id FROM lots
WHERE status = 'bidding' AND bidding_ends_at <= $1 AND id <> ALL($2::bigint[])
ORDER BY bidding_ends_at, id LIMIT $3

-- name: bidding_end
-- A lot's effective end while it is bidding (unlocked: the close re-checks it under the
-- lot's lock); nothing once it is not bidding.
SELECT bidding_ends_at FROM lots WHERE id = $1 AND status = 'bidding'

-- name: ending_before
-- Lots bidding that end before an instant: their scheduled closes are (re)enqueued.
SELECT id, round, bidding_ends_at FROM lots
WHERE status = 'bidding' AND bidding_ends_at <= $1
ORDER BY bidding_ends_at, id LIMIT $2

-- name: round_registrations
-- Everyone registered for the round, with the identity behind the bidder code.
SELECT r.id, r.buyer_org_id, r.user_id, r.bidder_code, r.preemptive_rank, r.deposit_fen,
       r.deposit_status, o.name AS org_name
FROM registrations r JOIN organisations o ON o.id = r.buyer_org_id
WHERE r.lot_id = $1 AND r.round = $2
ORDER BY r.id

-- name: insert_sale
-- Nothing is returned on a clash (the lot's round already has a sale, or the random
-- payment reference is taken): the caller then tries another reference once or twice.
INSERT INTO sales (lot_id, round, registration_id, buyer_org_id, price_fen, fee_kind, fee_fen,
                   deposit_fen, balance_due_fen, due_at, payment_reference, status, closed_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'awaiting_payment', $12)
ON CONFLICT DO NOTHING
RETURNING *

-- name: insert_outbox
-- An event owed to somebody; its dedupe key makes a second copy impossible.
INSERT INTO outbox (event, recipient_org_id, recipient_user_id, lot_id, payload, dedupe_key,
                    created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (dedupe_key) DO NOTHING

-- name: sale_by_reference_locked
-- The sale a transfer's reference names, locked: its payment is recorded once.
SELECT s.*, l.bank_org_id, r.user_id
FROM sales s JOIN lots l ON l.id = s.lot_id JOIN registrations r ON r.id = s.registration_id
WHERE s.payment_reference = $1
FOR UPDATE OF s

-- name: sale_locked
SELECT s.*, l.bank_org_id, r.user_id
FROM sales s JOIN lots l ON l.id = s.lot_id JOIN registrations r ON r.id = s.registration_id
WHERE s.id = $1
FOR UPDATE OF s

-- name: mark_paid
UPDATE sales SET status = 'paid', paid_at = $2
WHERE id = $1 AND status = 'awaiting_payment'
RETURNING *

-- name: overdue_sales
-- Sales whose payment deadline has passed unpaid (failed ones are skipped).
SELECT id FROM sales
WHERE status = 'awaiting_payment' AND due_at <= $1 AND id <> ALL($2::bigint[])
ORDER BY due_at, id LIMIT $3

-- name: mark_defaulted
UPDATE sales SET status = 'defaulted'
WHERE id = $1 AND status = 'awaiting_payment'
RETURNING *

-- name: bar_buyer
-- 悔拍: the defaulter may not take part in the relist of any asset of the lot.
INSERT INTO buyer_bars (buyer_org_id, asset_id, sale_id, created_at)
SELECT $1, asset_id, $2, $3 FROM lot_assets WHERE lot_id = $4
ON CONFLICT DO NOTHING

-- name: payments_due
-- The operator's list: sales awaiting the buyer's transfer, the earliest deadline first.
SELECT s.id, s.lot_id, s.round, s.payment_reference, s.price_fen, s.fee_kind, s.fee_fen,
       s.deposit_fen, s.balance_due_fen, s.due_at, s.closed_at, l.reference AS lot_reference,
       l.title AS lot_title, o.name AS buyer_name, r.bidder_code
FROM sales s
JOIN lots l ON l.id = s.lot_id
JOIN organisations o ON o.id = s.buyer_org_id
JOIN registrations r ON r.id = s.registration_id
WHERE s.status = 'awaiting_payment'
ORDER BY s.due_at, s.id
LIMIT $1
