-- Licence offers on a lot and the bank's decision (market/licensing/offers.py,
-- market/licensing/deciding.py; docs/rules.md §Licence offers and decision).

-- name: lot_for_offer
-- A published lot by reference, its row held FOR UPDATE until the caller commits: the
-- close takes it FOR UPDATE too, so an offer and the close never interleave, and two
-- offers on one lot take turns (each is compared with those before it). A draft is not
-- found.
SELECT id, reference, title, status, round, terms, bidding_starts_at, bidding_ends_at,
       case_id, bank_org_id
FROM lots WHERE reference = $1 AND status <> 'draft'
FOR UPDATE

-- name: lot_reference
SELECT id, reference, status, round, terms FROM lots WHERE reference = $1 AND status <> 'draft'

-- name: lot_assets_for_offer
-- The patents' terms (专利法 art. 42).
SELECT a.id, a.kind, a.patent_type, a.filing_date, a.term_ends_on
FROM lot_assets la JOIN ip_assets a ON a.id = la.asset_id
WHERE la.lot_id = $1
ORDER BY a.id

-- name: case_consent
SELECT case_id, pledgor_org_id, consented_at FROM licensing_consents WHERE case_id = $1

-- name: own_registration
-- The organisation's registration for the lot's round.
SELECT id, lot_id, round, buyer_org_id, user_id, deposit_fen, deposit_status
FROM registrations WHERE lot_id = $1 AND round = $2 AND buyer_org_id = $3

-- name: insert_offer
INSERT INTO licence_offers (lot_id, round, registration_id, offeror_org_id, user_id, kind,
                            licence_kind, terms, status, submitted_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'submitted', $9)
RETURNING id

-- name: offer_of_org
-- One offer as its offeror sees it (the operator passes NULL); another's is not found.
SELECT f.*, l.reference AS lot_reference, l.title AS lot_title, o.name AS offeror_name
FROM licence_offers f JOIN lots l ON l.id = f.lot_id
JOIN organisations o ON o.id = f.offeror_org_id
WHERE f.id = $1 AND ($2::bigint IS NULL OR f.offeror_org_id = $2)

-- name: offers_of_org
-- The organisation's offers, newest first, keyset-paged by (submitted_at, id).
SELECT f.*, l.reference AS lot_reference, l.title AS lot_title, o.name AS offeror_name
FROM licence_offers f JOIN lots l ON l.id = f.lot_id
JOIN organisations o ON o.id = f.offeror_org_id
WHERE f.offeror_org_id = $1
  AND ($2::bigint IS NULL OR f.id < $2)
ORDER BY f.id DESC
LIMIT $3

-- name: lock_lot_of_offer
-- The offer's lot, FOR UPDATE: a withdrawal takes turns with the close and the decision.
SELECT l.id, l.status, l.round, l.bidding_ends_at, l.bidding_starts_at, l.terms
FROM lots l JOIN licence_offers f ON f.lot_id = l.id
WHERE f.id = $1 AND f.offeror_org_id = $2
FOR UPDATE OF l

-- name: withdraw_offer
UPDATE licence_offers SET status = 'withdrawn', settled_at = $2
WHERE id = $1 AND status = 'submitted'
RETURNING id

-- name: round_offers
-- The round's standing offers, oldest first, with their offerors.
SELECT f.*, o.name AS offeror_name, r.deposit_status
FROM licence_offers f JOIN organisations o ON o.id = f.offeror_org_id
JOIN registrations r ON r.id = f.registration_id
WHERE f.lot_id = $1 AND f.round = $2 AND f.status = 'submitted'
ORDER BY f.id

-- name: round_offers_all
-- Every offer of the round but the withdrawn, oldest first (the comparison after a decision).
SELECT f.*, o.name AS offeror_name
FROM licence_offers f JOIN organisations o ON o.id = f.offeror_org_id
WHERE f.lot_id = $1 AND f.round = $2 AND f.status <> 'withdrawn'
ORDER BY f.id

-- name: settle_offer
UPDATE licence_offers SET status = $2, settled_at = $3 WHERE id = $1 AND status = 'submitted'

-- name: insert_decision
INSERT INTO licence_decisions (lot_id, round, status, top_registration_id, top_price_fen,
                               closed_at, deadline_at)
VALUES ($1, $2, 'open', $3, $4, $5, $6)

-- name: decision_locked
SELECT * FROM licence_decisions WHERE lot_id = $1 AND round = $2 FOR UPDATE

-- name: decision
SELECT * FROM licence_decisions WHERE lot_id = $1 ORDER BY round DESC LIMIT 1

-- name: record_decision
UPDATE licence_decisions
SET status = $3, chosen_offer_ids = $4, reason = $5, comparison = $6, decided_by = $7,
    decided_at = $8
WHERE lot_id = $1 AND round = $2 AND status = 'open'
RETURNING *

-- name: lot_locked
SELECT * FROM lots WHERE id = $1 FOR UPDATE

-- name: lot_for_reader
-- A lot the reader may see the decision of: its bank's, a pool's that bore loss on the
-- case's loan (a compensation claim paid or parked), or (NULL, the operator) any.
SELECT l.* FROM lots l JOIN disposal_cases c ON c.id = l.case_id
WHERE l.id = $1 AND l.status <> 'draft'
  AND ($2::bigint IS NULL OR l.bank_org_id = $2
       OR EXISTS (SELECT 1 FROM compensation_claims k JOIN pools p ON p.id = k.pool_id
                  WHERE k.loan_id = c.loan_id AND p.org_id = $2
                    AND k.status IN ('paid', 'parked')))

-- name: due_decisions
-- Open decisions whose deadline has passed, for the exchange to apply the default.
SELECT lot_id AS id FROM licence_decisions
WHERE status = 'open' AND deadline_at <= $1 AND NOT (lot_id = ANY ($2::bigint[]))
ORDER BY deadline_at LIMIT $3

-- name: registration_row
SELECT r.id, r.buyer_org_id, r.user_id, r.deposit_fen, r.deposit_status
FROM registrations r WHERE r.id = $1

-- name: bank_users_outbox
-- An event for the bank's users (no single user is the recipient).
INSERT INTO outbox (event, recipient_org_id, recipient_user_id, lot_id, payload, dedupe_key,
                    created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (dedupe_key) DO NOTHING

-- name: round_confirmed_ids
SELECT id FROM registrations
WHERE lot_id = $1 AND round = $2 AND deposit_status = 'confirmed'
ORDER BY id

-- name: lot_contracts
-- The licence contracts the decision made of the offers chosen (by the unique offer_id),
-- with their licensees' names.
SELECT k.id, k.reference, k.offer_id, k.licensee_org_id, k.kind, k.status,
       o.name AS licensee_name
FROM licence_contracts k JOIN organisations o ON o.id = k.licensee_org_id
WHERE k.offer_id = ANY ($1::bigint[])
ORDER BY k.id
