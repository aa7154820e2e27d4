-- The bank's side of the guarantee pools and the operator's manual receipts;
-- market/pools/bank.py. Every bank query is filtered by the bank organisation: another
-- bank's loan or case is simply not found.

-- name: enrolled_loans
SELECT e.id AS enrolment_id, e.loan_id, e.enrolled_principal_fen, e.renewal, e.enrolled_on,
       p.id AS pool_id, p.code AS pool_code, p.name AS pool_name, p.name_en AS pool_name_en,
       v.version AS rule_version, v.effective_from AS rule_effective_from, v.rule,
       l.loan_no, l.outstanding_principal_fen, l.outstanding_interest_fen,
       l.default_date, l.written_off_on, pl.name AS pledgor_name,
       c.id AS case_id, c.reference AS case_reference, c.status AS case_status
FROM pool_enrolments e
JOIN pools p ON p.id = e.pool_id
JOIN pool_rule_versions v ON v.id = e.rule_version_id
JOIN loans l ON l.id = e.loan_id
JOIN pledgors pl ON pl.id = l.pledgor_id
LEFT JOIN LATERAL (
    SELECT dc.id, dc.reference, dc.status FROM disposal_cases dc
    WHERE dc.loan_id = l.id ORDER BY (dc.status = 'open') DESC, dc.opened_at DESC LIMIT 1
) c ON true
WHERE e.bank_org_id = $1 AND ($2::bigint IS NULL OR e.loan_id = $2)
ORDER BY p.code, l.loan_no
LIMIT 1000

-- name: claims_of_bank
SELECT cl.id, cl.loan_id, cl.pool_id, p.code AS pool_code, cl.timing, cl.status, cl.loss_fen,
       cl.amount_fen, cl.explanation, cl.reason, cl.filed_at, cl.decided_at, cl.paid_at,
       l.loan_no
FROM compensation_claims cl
JOIN pools p ON p.id = cl.pool_id
JOIN loans l ON l.id = cl.loan_id
WHERE cl.bank_org_id = $1 AND ($2::bigint IS NULL OR cl.loan_id = $2)
ORDER BY cl.filed_at DESC, cl.id DESC

-- name: claim_of_bank
SELECT cl.id, cl.loan_id, cl.pool_id, p.code AS pool_code, cl.timing, cl.status, cl.loss_fen,
       cl.amount_fen, cl.explanation, cl.reason, cl.filed_at, cl.decided_at, cl.paid_at,
       l.loan_no
FROM compensation_claims cl
JOIN pools p ON p.id = cl.pool_id
JOIN loans l ON l.id = cl.loan_id
WHERE cl.id = $1 AND cl.bank_org_id = $2

-- name: enrolment_out
SELECT e.id, e.loan_id, p.code AS pool_code, v.version AS rule_version,
       e.enrolled_principal_fen, e.renewal, e.enrolled_on
FROM pool_enrolments e
JOIN pools p ON p.id = e.pool_id
JOIN pool_rule_versions v ON v.id = e.rule_version_id
WHERE e.id = $1

-- name: enrollable_loans
-- The bank's loans that are in no pool yet (the enrolment form's choices).
SELECT l.id, l.loan_no, l.principal_fen, l.default_date, l.pool_code, pl.name AS pledgor_name
FROM loans l JOIN pledgors pl ON pl.id = l.pledgor_id
WHERE l.bank_org_id = $1
  AND NOT EXISTS (SELECT 1 FROM pool_enrolments e WHERE e.loan_id = l.id)
ORDER BY l.loan_no
LIMIT 1000

-- name: pool_choices
SELECT code, name, name_en FROM pools ORDER BY code

-- name: cases_of_bank
SELECT c.id, c.reference, c.status, c.opened_at, c.closed_at, l.loan_no,
       coalesce((SELECT sum(r.amount_fen) FROM receipts r
                 WHERE r.case_id = c.id AND r.status = 'routed'), 0)::bigint AS received_fen,
       (SELECT count(*) FROM receipts r WHERE r.case_id = c.id)::int AS receipt_count
FROM disposal_cases c JOIN loans l ON l.id = c.loan_id
WHERE c.bank_org_id = $1
ORDER BY c.opened_at DESC, c.id DESC
LIMIT 500

-- name: case_of_bank
SELECT c.id, c.reference, c.status, c.bank_org_id, c.loan_id, c.claim_principal_fen,
       c.claim_interest_fen, c.claim_costs_fen, c.opened_at, c.closed_at,
       l.loan_no, l.default_date, l.written_off_on, pl.name AS pledgor_name
FROM disposal_cases c
JOIN loans l ON l.id = c.loan_id
JOIN pledgors pl ON pl.id = l.pledgor_id
WHERE c.id = $1 AND c.bank_org_id = $2

-- name: costs_of_case
-- A case's costs, or the one cost $2 (null: all).
SELECT cc.id, cc.kind, cc.amount_fen, cc.memo, cc.recorded_at, o.name AS payee_name,
       coalesce((SELECT sum(d.amount_fen) FROM distributions d
                 JOIN receipts r ON r.id = d.receipt_id
                 WHERE d.cost_id = cc.id AND r.status = 'routed'), 0)::bigint AS repaid_fen
FROM case_costs cc JOIN organisations o ON o.id = cc.payee_org_id
WHERE cc.case_id = $1 AND ($2::bigint IS NULL OR cc.id = $2)
ORDER BY cc.recorded_at, cc.id

-- name: receipts_of_case
SELECT * FROM receipts WHERE case_id = $1 ORDER BY received_at, id

-- name: distributions_of_case
SELECT d.receipt_id, d.position, d.step, d.payee_kind, d.payee_org_id, d.pool_id, d.claim_id,
       d.party, d.cost_id, d.payout_id, d.amount_fen,
       p.code AS pool_code, o.name AS payee_org_name, po.reference AS payout_reference
FROM distributions d
JOIN receipts r ON r.id = d.receipt_id
LEFT JOIN pools p ON p.id = d.pool_id
LEFT JOIN organisations o ON o.id = d.payee_org_id
LEFT JOIN payouts po ON po.id = d.payout_id
WHERE r.case_id = $1
ORDER BY d.receipt_id, d.position

-- name: payouts_of_case
-- What market.pools.models.payout_out reads: the payout, its receipt, case and bank, and
-- the payee's names.
SELECT po.id, po.receipt_id, po.case_id, po.payee_kind, po.payee_org_id, po.pool_id,
       po.pledgor_id, po.party, po.amount_fen, po.reference, po.status, po.created_at,
       po.received_at, r.kind AS receipt_kind, dc.reference AS case_reference,
       dc.bank_org_id, b.name AS bank_name,
       p.code AS pool_code, o.name AS payee_org_name, pl.name AS pledgor_name
FROM payouts po
JOIN receipts r ON r.id = po.receipt_id
JOIN disposal_cases dc ON dc.id = po.case_id
JOIN organisations b ON b.id = dc.bank_org_id
LEFT JOIN pools p ON p.id = po.pool_id
LEFT JOIN organisations o ON o.id = po.payee_org_id
LEFT JOIN pledgors pl ON pl.id = po.pledgor_id
WHERE po.case_id = $1
ORDER BY po.receipt_id, po.id

-- name: case_for_receipt
-- The operator's form names a case by its reference (or id, through the API).
SELECT c.id, c.reference, c.bank_org_id, c.status FROM disposal_cases c
WHERE ($1::bigint IS NOT NULL AND c.id = $1) OR ($2::text IS NOT NULL AND c.reference = $2)
LIMIT 1

-- name: recent_receipts
SELECT r.id, r.case_id, r.kind, r.source, r.amount_fen, r.commission_fen, r.status,
       r.received_at, r.reversed_at, c.reference AS case_reference, o.name AS bank_name,
       (SELECT count(*) FROM payouts po WHERE po.receipt_id = r.id AND po.status = 'received')::int
           AS received_payouts
FROM receipts r
JOIN disposal_cases c ON c.id = r.case_id
JOIN organisations o ON o.id = c.bank_org_id
ORDER BY r.received_at DESC, r.id DESC
LIMIT $1

-- name: open_case_references
SELECT c.reference, l.loan_no FROM disposal_cases c JOIN loans l ON l.id = c.loan_id
ORDER BY c.opened_at DESC LIMIT 500
