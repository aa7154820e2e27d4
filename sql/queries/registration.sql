-- Taking part in an auction (docs/rules.md §Registration and deposits): registrations,
-- bidder codes, deposits, and the buyer's "my auctions" page. Every buyer query names buyer_org_id = $n: another
-- organisation's registration is simply not found.

-- name: lot_for_registration
-- A published lot by reference with what registering needs; a draft is not found.
SELECT id, reference, status, round, deposit_fen, paused_from, bidding_starts_at,
       terms->>'mode' AS mode
FROM lots WHERE reference = $1 AND status <> 'draft'

-- name: registrant
-- The credit code of the organisation that registers (a pre-emptive holder may be listed
-- by it). Whether the organisation may register at all is its permission's question.
SELECT id, credit_code FROM organisations WHERE id = $1

-- name: barred_assets
-- Assets of this lot the organisation is barred from (悔拍 on them before, docs/rules.md
-- §After the close).
SELECT b.asset_id FROM buyer_bars b
JOIN lot_assets la ON la.asset_id = b.asset_id
WHERE la.lot_id = $1 AND b.buyer_org_id = $2
ORDER BY b.asset_id

-- name: preemptive_rank
-- The organisation's best rank among the lot's pre-emptive right holders, by account or by
-- credit code (a holder listed before it had an account).
SELECT min(rank) FROM lot_preemptive_holders
WHERE lot_id = $1 AND (org_id = $2 OR upper(btrim(credit_code)) = $3)

-- name: insert_registration
-- Nothing is returned when the organisation registered for this round already (also when
-- a concurrent registration of it committed first: the insert waits, then does nothing).
-- A clash of bidder code or transfer reference raises, and the caller draws again.
INSERT INTO registrations (lot_id, round, buyer_org_id, user_id, bidder_code, preemptive_rank,
                           deposit_fen, transfer_reference, deposit_status, created_at,
                           agreement_version)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'awaiting', $9, $10)
ON CONFLICT (lot_id, round, buyer_org_id) DO NOTHING
RETURNING id

-- name: registration_by_key
SELECT id FROM registrations WHERE lot_id = $1 AND round = $2 AND buyer_org_id = $3

-- name: registration_out
-- One registration of the buyer organisation, as its owner sees it.
SELECT r.id, r.lot_id, l.reference AS lot_reference, l.title AS lot_title, r.round,
       r.bidder_code, r.preemptive_rank, r.deposit_fen, r.transfer_reference, r.deposit_status,
       r.confirmed_at, r.settled_at, r.created_at, r.agreement_version
FROM registrations r JOIN lots l ON l.id = r.lot_id
WHERE r.id = $1 AND r.buyer_org_id = $2

-- name: current_registration
-- The organisation's registration for the lot's current round, if any.
SELECT r.id FROM registrations r JOIN lots l ON l.id = r.lot_id AND r.round = l.round
WHERE l.reference = $1 AND l.status <> 'draft' AND r.buyer_org_id = $2

-- name: registration_ids
-- The bid endpoint's look-up for the lots' rounds that missed its cache at once: every
-- registration of each (lot, round), by a prefix of the unique index (lot_id, round,
-- buyer_org_id), in one statement. A lot's registrants are few (tens, hundreds), and its
-- other bidders' first bids then need no query of their own.
SELECT r.lot_id, r.round, r.buyer_org_id, r.id
FROM (SELECT DISTINCT * FROM unnest($1::bigint[], $2::smallint[])) AS k (lot_id, round)
JOIN registrations r USING (lot_id, round)

-- name: registration_by_reference
-- Unlocked: only to find the lot, which is locked before the registration (lock order).
SELECT id, lot_id FROM registrations WHERE transfer_reference = $1

-- name: share_lot
-- Keeps the lot's status and round still while a deposit moves: the closer locks the lot
-- FOR UPDATE before it releases a round's deposits, so it cannot miss this one.
SELECT id, reference, status, round, paused_from, bidding_starts_at, terms->>'mode' AS mode
FROM lots WHERE id = $1 FOR SHARE

-- name: lock_registration
SELECT r.id, r.lot_id, r.round, r.buyer_org_id, r.user_id, r.bidder_code, r.deposit_fen,
       r.transfer_reference, r.deposit_status, l.reference AS lot_reference
FROM registrations r JOIN lots l ON l.id = r.lot_id
WHERE r.id = $1 FOR UPDATE OF r

-- name: confirm_registration
UPDATE registrations SET deposit_status = 'confirmed', confirmed_at = $2, confirmed_by = $3
WHERE id = $1 AND deposit_status = 'awaiting'

-- name: settle_registration
-- released | applied | forfeited, once: only from confirmed.
UPDATE registrations SET deposit_status = $2, settled_at = $3
WHERE id = $1 AND deposit_status = 'confirmed'

-- name: sale_registration
SELECT registration_id, lot_id FROM sales WHERE id = $1

-- name: round_confirmed
-- The confirmed deposits of a round, for the closer's release of the losers'.
SELECT id FROM registrations
WHERE lot_id = $1 AND round = $2 AND deposit_status = 'confirmed' ORDER BY id

-- name: insert_outbox
-- dedupe_key is unique: an event already owed is not owed twice.
INSERT INTO outbox (event, recipient_org_id, recipient_user_id, lot_id, payload, dedupe_key,
                    created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (dedupe_key) DO NOTHING

-- name: awaiting_deposits
-- The operator's queue: deposits not yet received, oldest first (registrations_awaiting).
SELECT r.id, r.transfer_reference, r.deposit_fen, r.bidder_code, r.round, r.created_at,
       l.reference AS lot_reference, l.title AS lot_title, l.status AS lot_status,
       o.name AS buyer_name, o.credit_code AS buyer_credit_code
FROM registrations r
JOIN lots l ON l.id = r.lot_id
JOIN organisations o ON o.id = r.buyer_org_id
WHERE r.deposit_status = 'awaiting'
ORDER BY r.created_at, r.id
LIMIT $1

-- name: my_auctions
-- The buyer organisation's registrations, newest first, each with its lot, its own bids
-- (count, highest, last), whether it leads an open round, and its sale if it won.
-- A sealed round's leader is a secret until the close (docs/bidding.md).
SELECT r.id, r.lot_id, r.round, r.bidder_code, r.preemptive_rank, r.deposit_fen,
       r.transfer_reference, r.deposit_status, r.confirmed_at, r.settled_at, r.created_at,
       r.agreement_version,
       l.reference AS lot_reference, l.title AS lot_title, l.status AS lot_status,
       l.round AS lot_round, l.auction_kind, l.current_price_fen, l.bidding_starts_at,
       l.bidding_ends_at,
       (l.round = r.round AND l.status = 'bidding' AND l.auction_kind <> 'sealed'
        AND l.leader_registration_id = r.id) AS leading,
       b.bid_count, b.highest_fen, b.last_bid_at,
       s.id AS sale_id, s.price_fen, s.fee_kind, s.fee_fen, s.balance_due_fen, s.due_at,
       s.payment_reference, s.status AS sale_status, s.paid_at
FROM registrations r
JOIN lots l ON l.id = r.lot_id
LEFT JOIN LATERAL (
    SELECT count(*) AS bid_count, max(amount_fen) AS highest_fen, max(at) AS last_bid_at
    FROM bids WHERE lot_id = r.lot_id AND round = r.round AND registration_id = r.id
) b ON true
LEFT JOIN sales s ON s.lot_id = r.lot_id AND s.round = r.round AND s.registration_id = r.id
WHERE r.buyer_org_id = $1
ORDER BY r.created_at DESC, r.id DESC
LIMIT $2

-- name: my_bids
-- The latest bids of the organisation's registrations (at most $3 per registration).
SELECT registration_id, seq, amount_fen, kind, at FROM (
    SELECT b.registration_id, b.seq, b.amount_fen, b.kind, b.at,
           row_number() OVER (PARTITION BY b.registration_id ORDER BY b.seq DESC) AS n
    FROM registrations r
    JOIN bids b ON b.lot_id = r.lot_id AND b.round = r.round AND b.registration_id = r.id
    WHERE r.buyer_org_id = $1 AND r.id = ANY($2::bigint[])
) latest WHERE n <= $3 ORDER BY registration_id, seq DESC

-- name: org_registrations
-- The buyer organisation's registrations, newest first.
SELECT r.id, r.lot_id, l.reference AS lot_reference, l.title AS lot_title, r.round,
       r.bidder_code, r.preemptive_rank, r.deposit_fen, r.transfer_reference, r.deposit_status,
       r.confirmed_at, r.settled_at, r.created_at, r.agreement_version
FROM registrations r JOIN lots l ON l.id = r.lot_id
WHERE r.buyer_org_id = $1
ORDER BY r.created_at DESC, r.id DESC
LIMIT $2

-- name: current_agreement
-- The bidding agreement in force at $1: the latest version already effective.
SELECT version, title_zh, title_en, body_zh, body_en, effective_at
FROM bidding_agreements WHERE effective_at <= $1
ORDER BY effective_at DESC, version DESC LIMIT 1

-- name: agreement
SELECT version, title_zh, title_en, body_zh, body_en, effective_at
FROM bidding_agreements WHERE version = $1
