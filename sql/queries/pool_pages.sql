-- The pool manager's pages and API: dashboard figures, charts, drill-down
-- to the postings behind them, claims to decide and rule versions. market/pools/dashboard.py.
-- Every query is scoped by pool id; the caller checked the pool is the viewer's own.

-- name: exposure
SELECT count(*)::bigint AS loans, coalesce(sum(enrolled_principal_fen), 0)::bigint AS principal_fen
FROM pool_enrolments WHERE pool_id = $1

-- name: claim_totals
SELECT status, count(*)::bigint AS n, coalesce(sum(amount_fen), 0)::bigint AS amount_fen
FROM compensation_claims WHERE pool_id = $1 GROUP BY status

-- name: recovery_totals
-- What the waterfall routed to the pool: expected, or received (paid out: on the pool's
-- statement or the clearing account's, pool_payouts_seen).
SELECT status, count(*)::bigint AS n, coalesce(sum(amount_fen), 0)::bigint AS amount_fen
FROM pool_payouts_seen WHERE pool_id = $1 GROUP BY status

-- name: compensation_by_month
-- Compensation paid (a parked deposit counts when released) per month in Asia/Shanghai.
SELECT to_char(paid_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM') AS month,
       sum(amount_fen)::bigint AS fen
FROM compensation_claims
WHERE pool_id = $1 AND status = 'paid' AND paid_at >= $2 AND paid_at < $3
GROUP BY 1

-- name: recoveries_by_month
SELECT to_char(received_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM') AS month,
       sum(amount_fen)::bigint AS fen
FROM pool_payouts_seen
WHERE pool_id = $1 AND status = 'received'
  AND received_at >= $2 AND received_at < $3
GROUP BY 1

-- name: by_bank
-- Per bank: enrolled principal, compensation, recoveries received and outstanding.
WITH e AS (
    SELECT bank_org_id, count(*) AS loans, sum(enrolled_principal_fen) AS principal_fen
    FROM pool_enrolments WHERE pool_id = $1 GROUP BY bank_org_id
), c AS (
    SELECT bank_org_id,
           sum(amount_fen) FILTER (WHERE status = 'paid') AS paid_fen,
           sum(amount_fen) FILTER (WHERE status = 'parked') AS parked_fen,
           count(*) FILTER (WHERE status = 'filed') AS pending
    FROM compensation_claims WHERE pool_id = $1 GROUP BY bank_org_id
), p AS (
    SELECT dc.bank_org_id,
           sum(p.amount_fen) FILTER (WHERE p.status = 'received') AS received_fen,
           sum(p.amount_fen) FILTER (WHERE p.status = 'expected') AS outstanding_fen
    FROM pool_payouts_seen p JOIN disposal_cases dc ON dc.id = p.case_id
    WHERE p.pool_id = $1 GROUP BY dc.bank_org_id
), banks AS (
    SELECT bank_org_id FROM e UNION SELECT bank_org_id FROM c UNION SELECT bank_org_id FROM p
)
SELECT o.id AS bank_org_id, o.name AS bank_name,
       coalesce(e.loans, 0)::bigint AS loans,
       coalesce(e.principal_fen, 0)::bigint AS principal_fen,
       coalesce(c.paid_fen, 0)::bigint AS paid_fen,
       coalesce(c.parked_fen, 0)::bigint AS parked_fen,
       coalesce(c.pending, 0)::bigint AS pending,
       coalesce(p.received_fen, 0)::bigint AS received_fen,
       coalesce(p.outstanding_fen, 0)::bigint AS outstanding_fen
FROM banks b
JOIN organisations o ON o.id = b.bank_org_id
LEFT JOIN e ON e.bank_org_id = b.bank_org_id
LEFT JOIN c ON c.bank_org_id = b.bank_org_id
LEFT JOIN p ON p.bank_org_id = b.bank_org_id
ORDER BY o.name, o.id

-- name: by_path
-- Recoveries routed to the pool by disposal path (the receipt's kind).
SELECT r.kind,
       coalesce(sum(p.amount_fen) FILTER (WHERE p.status = 'received'), 0)::bigint AS received_fen,
       coalesce(sum(p.amount_fen) FILTER (WHERE p.status = 'expected'), 0)::bigint AS outstanding_fen
FROM pool_payouts_seen p JOIN receipts r ON r.id = p.receipt_id
WHERE p.pool_id = $1
GROUP BY r.kind

-- name: fuse_loans
-- The NPL fuse's inputs: every enrolled loan of the pool with its bank.
SELECT e.bank_org_id, o.name AS bank_name, l.outstanding_principal_fen AS balance_fen,
       l.npl_class IS NOT NULL AS non_performing, e.renewal
FROM pool_enrolments e
JOIN loans l ON l.id = e.loan_id
JOIN organisations o ON o.id = e.bank_org_id
WHERE e.pool_id = $1
ORDER BY o.name, e.bank_org_id, e.id

-- name: account_balance
SELECT coalesce(sum(l.amount_fen), 0)::bigint FROM ledger_legs l
JOIN ledger_accounts a ON a.id = l.account_id WHERE a.code = $1

-- name: postings
-- Ledger entries with a leg on one of the focus accounts ($1), newest first, each with the
-- sum of its legs on those accounts; the bank and the disposal path behind the entry come
-- from its source (a claim, a receipt, a receipt's reversal, a payout received).
-- Filters (null: any): $2 source kinds, $3 from, $4 until, $5 bank, $6 receipt kind.
-- `total_fen` and `entries` cover every matching entry, before the limit $7.
WITH focus AS (
    SELECT id FROM ledger_accounts WHERE code = ANY($1::text[])
), hits AS (
    SELECT l.entry_id, sum(l.amount_fen)::bigint AS focus_fen
    FROM ledger_legs l WHERE l.account_id IN (SELECT id FROM focus)
    GROUP BY l.entry_id
), described AS (
    SELECT e.id, e.source_kind, e.source_id, e.memo, e.at, e.reverses, h.focus_fen,
           coalesce(cl.bank_org_id, pc.bank_org_id, rc.bank_org_id, xc.bank_org_id) AS bank_org_id,
           coalesce(pr.kind, r.kind, x.kind) AS receipt_kind,
           coalesce(pc.reference, rc.reference, xc.reference) AS case_reference,
           p.reference AS payout_reference
    FROM hits h
    JOIN ledger_entries e ON e.id = h.entry_id
    LEFT JOIN compensation_claims cl ON cl.id = CASE
        WHEN e.source_kind IN ('claim_paid', 'claim_parked', 'claim_released')
        THEN e.source_id::bigint END
    LEFT JOIN payouts p ON p.id = CASE
        WHEN e.source_kind IN ('payout_received', 'payout_paid') THEN e.source_id::bigint END
    LEFT JOIN receipts pr ON pr.id = p.receipt_id
    LEFT JOIN disposal_cases pc ON pc.id = p.case_id
    LEFT JOIN receipts r ON e.source_kind = 'receipt' AND r.source = e.source_id
    LEFT JOIN disposal_cases rc ON rc.id = r.case_id
    LEFT JOIN receipts x ON x.id = CASE
        WHEN e.source_kind = 'receipt_reversed' THEN e.source_id::bigint END
    LEFT JOIN disposal_cases xc ON xc.id = x.case_id
)
SELECT d.*, sum(d.focus_fen) OVER ()::bigint AS total_fen, count(*) OVER ()::bigint AS entries
FROM described d
WHERE ($2::text[] IS NULL OR d.source_kind = ANY($2::text[]))
  AND ($3::timestamptz IS NULL OR d.at >= $3)
  AND ($4::timestamptz IS NULL OR d.at < $4)
  AND ($5::bigint IS NULL OR d.bank_org_id = $5)
  AND ($6::text IS NULL OR d.receipt_kind = $6)
ORDER BY d.at DESC, d.id DESC
LIMIT $7

-- name: legs_of_entries
SELECT l.entry_id, a.code, a.kind, a.name, a.owner_org_id, l.amount_fen
FROM ledger_legs l JOIN ledger_accounts a ON a.id = l.account_id
WHERE l.entry_id = ANY($1::bigint[])
ORDER BY l.entry_id, l.id

-- name: pool_payouts
-- The pool's payouts, filtered like the postings (null: any): $2 status, $3 bank,
-- $4 receipt kind, $5 from, $6 until (received_at, else created_at); the columns of
-- market.pools.models.payout_out.
SELECT p.id, p.receipt_id, p.case_id, p.amount_fen, p.reference, p.status, p.created_at,
       p.received_at, r.kind AS receipt_kind, dc.reference AS case_reference,
       dc.bank_org_id, o.name AS bank_name, p.payee_kind, p.payee_org_id, p.pool_id,
       pp.code AS pool_code, p.party, NULL::text AS payee_org_name, NULL::text AS pledgor_name
FROM pool_payouts_seen p
JOIN pools pp ON pp.id = p.pool_id
JOIN receipts r ON r.id = p.receipt_id
JOIN disposal_cases dc ON dc.id = p.case_id
JOIN organisations o ON o.id = dc.bank_org_id
WHERE p.pool_id = $1
  AND ($2::text IS NULL OR p.status = $2)
  AND ($3::bigint IS NULL OR dc.bank_org_id = $3)
  AND ($4::text IS NULL OR r.kind = $4)
  AND ($5::timestamptz IS NULL OR coalesce(p.received_at, p.created_at) >= $5)
  AND ($6::timestamptz IS NULL OR coalesce(p.received_at, p.created_at) < $6)
ORDER BY coalesce(p.received_at, p.created_at) DESC, p.id DESC
LIMIT 500

-- name: enrolled_bank_name
-- The drill-down's bank filter ($2), named only if it has loans enrolled in the pool $1.
SELECT o.name FROM organisations o
WHERE o.id = $2
  AND EXISTS (SELECT 1 FROM pool_enrolments e WHERE e.pool_id = $1 AND e.bank_org_id = o.id)

-- name: enrolments
-- The loans behind the exposure figure ($2: one bank, or null).
SELECT e.id, e.loan_id, e.bank_org_id, e.enrolled_principal_fen, e.renewal, e.enrolled_on,
       l.loan_no, l.outstanding_principal_fen, l.npl_class, l.default_date, l.written_off_on,
       o.name AS bank_name, v.version AS rule_version
FROM pool_enrolments e
JOIN loans l ON l.id = e.loan_id
JOIN organisations o ON o.id = e.bank_org_id
JOIN pool_rule_versions v ON v.id = e.rule_version_id
WHERE e.pool_id = $1 AND ($2::bigint IS NULL OR e.bank_org_id = $2)
ORDER BY e.enrolled_on DESC, e.id DESC
LIMIT 1000

-- name: claims_of_org
-- Claims on the organisation's pools: undecided first (oldest first), then the history.
-- Filters (null: any): $2 pool, $3 status, $4 bank, $6 one claim; $5 limit.
SELECT c.id, c.pool_id, c.enrolment_id, c.loan_id, c.bank_org_id, c.timing, c.status,
       c.loss_fen, c.amount_fen, c.explanation, c.reason, c.filed_at, c.decided_at, c.paid_at,
       p.code AS pool_code, o.name AS bank_name, l.loan_no, v.version AS rule_version,
       fu.display_name AS filed_by_name, du.display_name AS decided_by_name
FROM compensation_claims c
JOIN pools p ON p.id = c.pool_id
JOIN organisations o ON o.id = c.bank_org_id
JOIN loans l ON l.id = c.loan_id
JOIN pool_enrolments e ON e.id = c.enrolment_id
JOIN pool_rule_versions v ON v.id = e.rule_version_id
JOIN users fu ON fu.id = c.filed_by
LEFT JOIN users du ON du.id = c.decided_by
WHERE p.org_id = $1
  AND ($2::bigint IS NULL OR c.pool_id = $2)
  AND ($3::text IS NULL OR c.status = $3)
  AND ($4::bigint IS NULL OR c.bank_org_id = $4)
  AND ($6::bigint IS NULL OR c.id = $6)
ORDER BY (c.status = 'filed') DESC,
         CASE WHEN c.status = 'filed' THEN c.filed_at END ASC,
         coalesce(c.decided_at, c.filed_at) DESC, c.id DESC
LIMIT $5

-- name: rule_versions
-- A pool's rule versions, newest first, with how many loans are enrolled under each.
SELECT v.id, v.version, v.rule, v.effective_from, v.note, v.created_at,
       u.display_name AS created_by_name,
       (SELECT count(*) FROM pool_enrolments e WHERE e.rule_version_id = v.id)::bigint AS loans
FROM pool_rule_versions v
LEFT JOIN users u ON u.id = v.created_by
WHERE v.pool_id = $1
ORDER BY v.version DESC
