-- Disposal by agreement (market/acquisition/, docs/rules.md §Acquisition and pledge-to-equity).

-- name: case_locked
-- The bank's open case, locked: proposals on one case take turns.
SELECT c.*, l.pledgor_id FROM disposal_cases c JOIN loans l ON l.id = c.loan_id
WHERE c.id = $1 AND c.bank_org_id = $2 AND c.status = 'open'
FOR UPDATE OF c

-- name: case_any_locked
SELECT c.*, l.pledgor_id FROM disposal_cases c JOIN loans l ON l.id = c.loan_id
WHERE c.id = $1 FOR UPDATE OF c

-- name: current_valuation
SELECT value_fen, valid_until FROM valuations WHERE case_id = $1 AND superseded_at IS NULL

-- name: last_failed_start
-- The start price of the case's last auction round that failed.
SELECT r.start_price_fen, r.lot_id, r.round
FROM lot_rounds r JOIN lots l ON l.id = r.lot_id
WHERE l.case_id = $1 AND r.outcome = 'failed'
ORDER BY r.closed_at DESC NULLS LAST, r.lot_id DESC, r.round DESC
LIMIT 1

-- name: live_lot
-- A lot of the case on the market (announced, bidding or deciding) or sold: the assets
-- are not the bank's to agree on while it is.
SELECT reference, status FROM lots
WHERE case_id = $1 AND status IN ('announced', 'bidding', 'deciding', 'paused', 'sold')
LIMIT 1

-- name: case_document
SELECT id, case_id, item, removed_at FROM case_documents WHERE id = $1

-- name: org_kind
SELECT kind, status FROM organisations WHERE id = $1

-- name: insert_disposal
INSERT INTO agreed_disposals (case_id, bank_org_id, kind, taker_org_id, amount_fen, floor_fen,
                              consent_document_id, appraisal_document_id, appraiser, report_no,
                              appraised_fen, valued_on, appraisal_valid_until, equity_shares,
                              equity_percent, status, objection_until, proposed_by, proposed_at,
                              lot_id, lot_round, accept_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 'pending', $16, $17, $18,
        $19, $20, $21)
ON CONFLICT (case_id) WHERE status = 'pending' DO NOTHING
RETURNING *

-- name: pending_of_case
SELECT * FROM agreed_disposals WHERE case_id = $1 AND status = 'pending'

-- name: disposal_locked
SELECT * FROM agreed_disposals WHERE id = $1 FOR UPDATE

-- name: disposal
SELECT d.*, c.reference AS case_reference, t.name AS taker_name FROM agreed_disposals d
JOIN disposal_cases c ON c.id = d.case_id JOIN organisations t ON t.id = d.taker_org_id WHERE d.id = $1

-- name: bearer_orgs
-- The organisations that bore the loss on the case's loan (a pool, or a party of its rule
-- with an organisation here), other than the bank.
SELECT DISTINCT coalesce(p.org_id, s.org_id) AS org_id
FROM claim_shares s
JOIN compensation_claims cl ON cl.id = s.claim_id
LEFT JOIN pools p ON p.id = cl.pool_id AND s.party = 'fund'
WHERE cl.loan_id = $1 AND cl.status = 'paid' AND s.amount_fen > 0
  AND coalesce(p.org_id, s.org_id) IS NOT NULL AND coalesce(p.org_id, s.org_id) <> $2
ORDER BY 1

-- name: objected
UPDATE agreed_disposals
SET status = 'objected', ended_at = $2, objected_org_id = $3, objected_by = $4, objection_reason = $5
WHERE id = $1
RETURNING *

-- name: withdrawn
UPDATE agreed_disposals SET status = 'withdrawn', ended_at = $2 WHERE id = $1 RETURNING *

-- name: completed
UPDATE agreed_disposals
SET status = 'completed', ended_at = $2, receipt_id = $3, owed_fen = $4, settlement_reference = $5,
    settled_at = CASE WHEN $4::bigint = 0 THEN $2::timestamptz END
WHERE id = $1
RETURNING *

-- name: due
SELECT id, case_id FROM agreed_disposals
WHERE status = 'pending' AND objection_until <= $1
ORDER BY objection_until, id
LIMIT $2

-- name: insert_equity
INSERT INTO case_equity (disposal_id, case_id, holder_org_id, shares, percent, value_fen, acquired_on)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (disposal_id) DO NOTHING

-- name: equity_of_case
SELECT e.*, o.name AS holder_name FROM case_equity e JOIN organisations o ON o.id = e.holder_org_id
WHERE e.case_id = $1 ORDER BY e.acquired_on, e.disposal_id

-- name: tries
-- With an acquisition institution as the taker: the lot it buys and, once sold, the sale.
SELECT d.id, d.kind, d.taker_org_id, d.bank_org_id, d.status, d.amount_fen, d.proposed_at,
       d.ended_at, d.objection_until, d.objection_reason, d.settled_at, d.owed_fen, d.sale_id,
       d.lot_id, d.lot_round AS round, l.reference, t.name AS taker_name,
       s.status AS sale_status
FROM agreed_disposals d JOIN organisations t ON t.id = d.taker_org_id
LEFT JOIN lots l ON l.id = d.lot_id
LEFT JOIN sales s ON s.id = d.sale_id
WHERE d.case_id = $1 ORDER BY d.proposed_at, d.id

-- name: insert_outbox
INSERT INTO outbox (event, recipient_org_id, recipient_user_id, lot_id, payload, dedupe_key,
                    created_at)
VALUES ($1, $2, NULL, NULL, $3, $4, $5)
ON CONFLICT (dedupe_key) DO NOTHING

-- name: settlements_locked_by_reference
SELECT * FROM agreed_disposals WHERE settlement_reference = ANY($1::text[]) ORDER BY id FOR UPDATE

-- name: settlement_locked
SELECT * FROM agreed_disposals WHERE settlement_reference = $1 FOR UPDATE

-- name: settled
UPDATE agreed_disposals SET settled_at = $2, settled_line_id = $3 WHERE id = $1 RETURNING *

-- name: for_bank
SELECT d.*, c.reference AS case_reference, t.name AS taker_name FROM agreed_disposals d
JOIN disposal_cases c ON c.id = d.case_id JOIN organisations t ON t.id = d.taker_org_id
WHERE d.bank_org_id = $1 ORDER BY d.proposed_at DESC, d.id DESC LIMIT $2

-- name: for_pool
-- The attempts on loans whose loss the pool organisation bore.
SELECT d.*, c.reference AS case_reference, t.name AS taker_name FROM agreed_disposals d
JOIN disposal_cases c ON c.id = d.case_id JOIN organisations t ON t.id = d.taker_org_id
WHERE EXISTS (
    SELECT 1 FROM claim_shares s
    JOIN compensation_claims cl ON cl.id = s.claim_id
    LEFT JOIN pools p ON p.id = cl.pool_id AND s.party = 'fund'
    WHERE cl.loan_id = c.loan_id AND cl.status = 'paid' AND s.amount_fen > 0
      AND coalesce(p.org_id, s.org_id) = $1)
ORDER BY d.proposed_at DESC, d.id DESC LIMIT $2

-- name: for_taker
SELECT d.*, c.reference AS case_reference, t.name AS taker_name FROM agreed_disposals d
JOIN disposal_cases c ON c.id = d.case_id JOIN organisations t ON t.id = d.taker_org_id
WHERE d.taker_org_id = $1 AND d.taker_org_id <> d.bank_org_id
ORDER BY d.proposed_at DESC, d.id DESC LIMIT $2

-- name: all_disposals
SELECT d.*, c.reference AS case_reference, t.name AS taker_name FROM agreed_disposals d
JOIN disposal_cases c ON c.id = d.case_id JOIN organisations t ON t.id = d.taker_org_id
ORDER BY d.proposed_at DESC, d.id DESC LIMIT $1

-- name: case_of
SELECT c.*, l.pledgor_id FROM disposal_cases c JOIN loans l ON l.id = c.loan_id WHERE c.id = $1

-- name: case_owned
SELECT id, reference, status FROM disposal_cases WHERE id = $1 AND bank_org_id = $2

-- name: of_case
SELECT d.*, c.reference AS case_reference, t.name AS taker_name FROM agreed_disposals d
JOIN disposal_cases c ON c.id = d.case_id JOIN organisations t ON t.id = d.taker_org_id
WHERE d.case_id = $1 ORDER BY d.proposed_at, d.id

-- name: private_documents
-- The case's consent and equity-appraisal documents, for the forms' choices.
SELECT id, item, filename, uploaded_at FROM case_documents
WHERE case_id = $1 AND item = ANY($2::text[]) AND removed_at IS NULL
ORDER BY uploaded_at DESC, id DESC

-- name: failed_lots
-- The case's lots whose round failed (the round an acquisition institution buys in), and
-- whether that round has a sale already (a winner that defaulted).
SELECT l.id, l.reference, l.round,
       EXISTS (SELECT 1 FROM sales s WHERE s.lot_id = l.id AND s.round = l.round) AS sold_before
FROM lots l WHERE l.case_id = $1 AND l.status = 'failed'
ORDER BY l.id

-- name: accepted
UPDATE agreed_disposals SET accepted_at = $2, accepted_by = $3 WHERE id = $1 RETURNING *

-- name: ended_as
-- Declined by the taker, or lapsed (not accepted in time, or the lot moved on).
UPDATE agreed_disposals SET status = $2, ended_at = $3 WHERE id = $1 RETURNING *

-- name: sold_to_taker
UPDATE agreed_disposals SET status = 'completed', ended_at = $2, sale_id = $3
WHERE id = $1 RETURNING *

-- name: taker_registration
-- The taker's registration in the lot's round: its own if it registered to bid, or one
-- without a deposit (it never bids).
INSERT INTO registrations (lot_id, round, buyer_org_id, user_id, bidder_code, deposit_fen,
                           transfer_reference, deposit_status, settled_at, created_at)
VALUES ($1, $2, $3, $4, $5, 0, $6, 'released', $7, $7)
ON CONFLICT (lot_id, round, buyer_org_id) DO NOTHING
RETURNING id

-- name: registration_of
SELECT * FROM registrations WHERE lot_id = $1 AND round = $2 AND buyer_org_id = $3

-- name: sale_of
SELECT id, status, price_fen, balance_due_fen, payment_reference FROM sales WHERE id = $1

-- name: org_name
SELECT name FROM organisations WHERE id = $1

-- name: approved_acquirers
-- The acquisition institutions a bank may name as the taker.
SELECT id, name FROM organisations WHERE kind = 'acquirer' AND status = 'approved'
ORDER BY name, id LIMIT 200
