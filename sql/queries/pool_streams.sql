-- Licence streams as the pool manager and the bank see them: each licence contract of a
-- case, what its schedule expects, what came in, and the pool's own share of it.
-- market/pools/streams.py; docs/rules.md §Licence streams on the dashboard.

-- name: contracts_of_pool
-- The licence contracts on the cases of loans enrolled in the pool $1, newest first;
-- $2 one case (or null); a page after ($3, $4), $5 rows.
SELECT c.id, c.reference, c.case_id, dc.reference AS case_reference, c.bank_org_id,
       b.name AS bank_name, lo.name AS licensee_name, c.kind, c.status, c.upfront_fen,
       c.terms, c.created_at
FROM licence_contracts c
JOIN disposal_cases dc ON dc.id = c.case_id
JOIN pool_enrolments e ON e.loan_id = dc.loan_id AND e.pool_id = $1
JOIN organisations b ON b.id = c.bank_org_id
JOIN organisations lo ON lo.id = c.licensee_org_id
WHERE ($2::bigint IS NULL OR c.case_id = $2)
  AND ($3::timestamptz IS NULL OR (c.created_at, c.id) < ($3, $4::bigint))
ORDER BY c.created_at DESC, c.id DESC
LIMIT $5

-- name: contracts_of_case
-- The licence contracts of one case $1 of the bank $2, oldest first.
SELECT c.id, c.reference, c.case_id, dc.reference AS case_reference, c.bank_org_id,
       b.name AS bank_name, lo.name AS licensee_name, c.kind, c.status, c.upfront_fen,
       c.terms, c.created_at
FROM licence_contracts c
JOIN disposal_cases dc ON dc.id = c.case_id
JOIN organisations b ON b.id = c.bank_org_id
JOIN organisations lo ON lo.id = c.licensee_org_id
WHERE c.case_id = $1 AND c.bank_org_id = $2
ORDER BY c.created_at, c.id

-- name: reports_of_contracts
-- Each reported period of the contracts $1 with what it makes due after the bank's
-- audit adjustments.
SELECT r.contract_id, r.period, r.net_sales_fen, r.units,
       (r.due_fen + coalesce((SELECT sum(a.due_change_fen) FROM royalty_adjustments a
                              WHERE a.contract_id = r.contract_id AND a.period = r.period),
                             0))::bigint AS due_fen
FROM royalty_reports r
WHERE r.contract_id = ANY($1::bigint[])
ORDER BY r.contract_id, r.period

-- name: receipts_of_contracts
-- The receipts of the contracts $1 that are still routed (a reversed receipt is money
-- that did not come): those a royalty payment names, and those whose source names the
-- contract (royalty:<contract id or reference>:<period>); the period they pay.
SELECT c.id AS contract_id, r.id AS receipt_id, r.kind, r.amount_fen, r.received_at,
       coalesce(rp.period, split_part(r.source, ':', 3)) AS period, rp.paid_on
FROM licence_contracts c
JOIN receipts r ON r.case_id = c.case_id AND r.kind IN ('royalty', 'licence_fee')
LEFT JOIN royalty_payments rp ON rp.receipt_id = r.id AND rp.contract_id = c.id
WHERE c.id = ANY($1::bigint[])
  AND r.status = 'routed'
  AND (rp.id IS NOT NULL
       OR (r.source LIKE 'royalty:%' AND split_part(r.source, ':', 2) IN (c.id::text, c.reference)))
ORDER BY c.id, r.received_at, r.id

-- name: pool_share_of_receipts
-- The pool $1's payouts from the receipts $2, by status (a reversed one counts nowhere).
SELECT receipt_id, status, sum(amount_fen)::bigint AS amount_fen
FROM pool_payouts_seen
WHERE pool_id = $1 AND receipt_id = ANY($2::bigint[])
  AND status IN ('expected', 'received')
GROUP BY receipt_id, status

-- name: recovery_by_day
-- What the pool received (the money left the exchange, pool_payouts_seen) per day in Asia/Shanghai:
-- every recovery, and those from licence streams; the recovery curve cumulates them.
SELECT (p.received_at AT TIME ZONE 'Asia/Shanghai')::date AS day,
       sum(p.amount_fen)::bigint AS all_fen,
       coalesce(sum(p.amount_fen) FILTER (WHERE r.kind IN ('royalty', 'licence_fee')), 0)::bigint
           AS licence_fen
FROM pool_payouts_seen p JOIN receipts r ON r.id = p.receipt_id
WHERE p.pool_id = $1 AND p.status = 'received'
  AND ($2::bigint IS NULL OR p.case_id = $2)
GROUP BY 1
ORDER BY 1

-- name: case_in_pool
-- A case whose loan is enrolled in the pool $1 (the filter $2 names only such a case).
SELECT dc.id FROM disposal_cases dc
JOIN pool_enrolments e ON e.loan_id = dc.loan_id AND e.pool_id = $1
WHERE dc.id = $2
