-- Guarantee pools, claims and the waterfall; market/pools/services.py, bank.py and
-- dashboard.py.

-- name: insert_pool
INSERT INTO pools (org_id, code, name, name_en, capital_fen, created_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (code) DO NOTHING
RETURNING *

-- name: insert_rule_version
-- The next version number of the pool, under the pool row lock the caller holds.
INSERT INTO pool_rule_versions (pool_id, version, rule, effective_from, note, created_by, created_at)
SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4, $5, $6
FROM pool_rule_versions WHERE pool_id = $1
RETURNING *

-- name: pool_locked
SELECT * FROM pools WHERE id = $1 FOR UPDATE

-- name: pool_by_id
SELECT * FROM pools WHERE id = $1

-- name: pool_by_code
SELECT * FROM pools WHERE code = $1

-- name: pools_of_org
SELECT * FROM pools WHERE org_id = $1 ORDER BY code

-- name: rule_in_force
-- The newest version already in force on a day: what a loan enrolled that day keeps.
SELECT * FROM pool_rule_versions
WHERE pool_id = $1 AND effective_from <= $2
ORDER BY effective_from DESC, version DESC LIMIT 1

-- name: loan_of_bank
SELECT * FROM loans WHERE id = $1 AND bank_org_id = $2

-- name: loan_locked
SELECT * FROM loans WHERE id = $1 AND bank_org_id = $2 FOR UPDATE

-- name: insert_enrolment
INSERT INTO pool_enrolments (pool_id, rule_version_id, loan_id, bank_org_id,
                             enrolled_principal_fen, renewal, enrolled_on, created_by, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (loan_id) DO NOTHING
RETURNING *

-- name: enrolment_of_loan
SELECT e.*, v.rule, v.version, p.code AS pool_code, p.org_id AS pool_org_id
FROM pool_enrolments e
JOIN pool_rule_versions v ON v.id = e.rule_version_id
JOIN pools p ON p.id = e.pool_id
WHERE e.loan_id = $1

-- name: bank_totals
-- A bank's enrolled principal in a pool and the compensation the pool granted it.
SELECT
    (SELECT coalesce(sum(enrolled_principal_fen), 0) FROM pool_enrolments
     WHERE pool_id = $1 AND bank_org_id = $2)::bigint AS enrolled_fen,
    (SELECT coalesce(sum(amount_fen), 0) FROM compensation_claims
     WHERE pool_id = $1 AND bank_org_id = $2 AND status IN ('parked', 'paid')
       AND id <> coalesce($3, 0))::bigint AS compensated_fen

-- name: loan_compensated
SELECT coalesce(sum(amount_fen), 0)::bigint FROM compensation_claims
WHERE pool_id = $1 AND loan_id = $2 AND status IN ('parked', 'paid') AND id <> coalesce($3, 0)

-- name: budget_used
-- Granted between two instants (the calendar year in Asia/Shanghai).
SELECT coalesce(sum(amount_fen), 0)::bigint FROM compensation_claims
WHERE pool_id = $1 AND status IN ('parked', 'paid') AND decided_at >= $2 AND decided_at < $3
  AND id <> coalesce($4, 0)

-- name: case_of_loan
-- The loan's disposal case: the open one, else the latest closed one.
SELECT * FROM disposal_cases WHERE loan_id = $1 ORDER BY (status = 'open') DESC, opened_at DESC LIMIT 1

-- name: case_locked
SELECT c.*, l.pledgor_id FROM disposal_cases c JOIN loans l ON l.id = c.loan_id
WHERE c.id = $1 FOR UPDATE OF c

-- name: recovered_to_claim
-- What receipts still standing paid on the creditor's claim of a case, by Civil Code part.
SELECT coalesce(sum(d.amount_fen) FILTER (WHERE d.step = 'claim_costs'), 0)::bigint AS costs_fen,
       coalesce(sum(d.amount_fen) FILTER (WHERE d.step = 'claim_interest'), 0)::bigint AS interest_fen,
       coalesce(sum(d.amount_fen) FILTER (WHERE d.step = 'claim_principal'), 0)::bigint AS principal_fen
FROM distributions d JOIN receipts r ON r.id = d.receipt_id
WHERE r.case_id = $1 AND r.status = 'routed'

-- name: costs_due
SELECT c.id, c.payee_org_id,
       c.amount_fen - coalesce((SELECT sum(d.amount_fen) FROM distributions d
                                JOIN receipts r ON r.id = d.receipt_id
                                WHERE d.cost_id = c.id AND r.status = 'routed'), 0)::bigint
           AS outstanding_fen
FROM case_costs c WHERE c.case_id = $1 ORDER BY c.recorded_at, c.id

-- name: bearers
-- Every pool or party that paid compensation on the case's loan, and what it got back.
SELECT s.claim_id, s.position, s.party, s.org_id, s.amount_fen AS bore_fen,
       CASE WHEN s.party = 'fund' THEN cl.pool_id END AS pool_id,
       coalesce((SELECT sum(d.amount_fen) FROM distributions d JOIN receipts r ON r.id = d.receipt_id
                 WHERE d.claim_id = s.claim_id AND d.party = s.party AND r.status = 'routed'), 0)::bigint
           AS recovered_fen
FROM claim_shares s JOIN compensation_claims cl ON cl.id = s.claim_id
WHERE cl.loan_id = $1 AND cl.status = 'paid' AND s.amount_fen > 0
ORDER BY s.claim_id, s.position

-- name: receipt_by_source
SELECT * FROM receipts WHERE source = $1

-- name: insert_receipt
INSERT INTO receipts (case_id, kind, source, amount_fen, commission_fen, lot_id, status, entry_id, received_at)
VALUES ($1, $2, $3, $4, $5, $6, 'routed', $7, $8)
RETURNING *

-- name: insert_payouts
-- A receipt's payouts in one statement; a transfer reference already taken inserts nothing
-- for its payout, which the caller retries with a new one.
INSERT INTO payouts (receipt_id, case_id, payee_kind, payee_org_id, pool_id, pledgor_id, party,
                     amount_fen, reference, status, created_at)
SELECT $1, $2, p.payee_kind, p.payee_org_id, p.pool_id, p.pledgor_id, p.party, p.amount_fen,
       p.reference, 'expected', $10
FROM unnest($3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::text[], $8::bigint[],
            $9::text[]) AS p(payee_kind, payee_org_id, pool_id, pledgor_id, party, amount_fen,
                             reference)
ON CONFLICT (reference) DO NOTHING
RETURNING id, reference

-- name: insert_distributions
INSERT INTO distributions (receipt_id, position, step, payee_kind, payee_org_id, pool_id, claim_id,
                           party, cost_id, payout_id, amount_fen)
SELECT $1, t.position, t.step, t.payee_kind, t.payee_org_id, t.pool_id, t.claim_id, t.party,
       t.cost_id, t.payout_id, t.amount_fen
FROM unnest($2::smallint[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[],
            $8::text[], $9::bigint[], $10::bigint[], $11::bigint[])
     AS t(position, step, payee_kind, payee_org_id, pool_id, claim_id, party, cost_id, payout_id, amount_fen)

-- name: receipt_locked
SELECT * FROM receipts WHERE id = $1 FOR UPDATE

-- name: mark_receipt_reversed
UPDATE receipts SET status = 'reversed', reversal_id = $2, reversed_at = $3 WHERE id = $1
RETURNING *

-- name: payouts_of_receipt
-- Locked: a statement settling one of them at the same moment goes first or sees the reversal.
SELECT * FROM payouts WHERE receipt_id = $1 ORDER BY id FOR UPDATE

-- name: mark_payouts_reversed
UPDATE payouts SET status = 'reversed' WHERE receipt_id = $1 AND status = 'expected'

-- name: payout_locked
SELECT * FROM payouts WHERE id = $1 FOR UPDATE

-- name: mark_payout_received
UPDATE payouts SET status = 'received', received_at = $2, received_entry_id = $3 WHERE id = $1
RETURNING *

-- name: insert_claim
INSERT INTO compensation_claims (pool_id, enrolment_id, loan_id, bank_org_id, timing, status,
                                 loss_fen, amount_fen, explanation, filed_by, filed_at)
VALUES ($1, $2, $3, $4, $5, 'filed', $6, $7, $8, $9, $10)
ON CONFLICT DO NOTHING
RETURNING *

-- name: claim_locked
SELECT * FROM compensation_claims WHERE id = $1 FOR UPDATE

-- name: decide_claim
UPDATE compensation_claims
SET status = $2, loss_fen = $3, amount_fen = $4, explanation = $5, reason = $6,
    decided_by = $7, decided_at = $8, paid_at = CASE WHEN $2::text = 'paid' THEN $8::timestamptz END
WHERE id = $1
RETURNING *

-- name: insert_claim_share
INSERT INTO claim_shares (claim_id, position, party, org_id, amount_fen) VALUES ($1, $2, $3, $4, $5)

-- name: parked_claims_of_loan
SELECT * FROM compensation_claims WHERE loan_id = $1 AND status = 'parked' ORDER BY id FOR UPDATE

-- name: release_parked
UPDATE compensation_claims SET status = 'paid', paid_at = $2 WHERE id = $1 RETURNING *

-- name: mark_written_off
UPDATE loans SET written_off_on = $2, updated_at = $3 WHERE id = $1 AND written_off_on IS NULL
RETURNING *

-- name: close_case
UPDATE disposal_cases SET status = 'closed', closed_at = $2 WHERE id = $1 AND status = 'open'
RETURNING *

-- name: live_lots_of_case
SELECT count(*) FROM lots l
WHERE l.case_id = $1
  AND (l.status IN ('draft', 'announced', 'bidding', 'paused')
       OR EXISTS (SELECT 1 FROM sales s WHERE s.lot_id = l.id
                  AND s.status IN ('awaiting_payment', 'paid')))  -- unpaid, or held in escrow

-- name: insert_cost
INSERT INTO case_costs (case_id, kind, payee_org_id, amount_fen, memo, recorded_by, recorded_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING *

-- name: sale_for_receipt
-- What a sale's receipt needs: its case, the round's kind and the bank.
SELECT s.*, l.case_id, c.bank_org_id
FROM sales s JOIN lots l ON l.id = s.lot_id JOIN disposal_cases c ON c.id = l.case_id
WHERE s.id = $1

-- name: org_kind
SELECT kind FROM organisations WHERE id = $1

-- name: claim_by_id
SELECT * FROM compensation_claims WHERE id = $1

-- name: orgs_exist
-- Which of these organisation ids exist (a rule's parties may name one).
SELECT id FROM organisations WHERE id = ANY($1::bigint[])
