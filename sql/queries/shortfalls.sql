-- Short receipts: what a short statement line left outstanding of a payout
-- (docs/rules.md §Reconciliation); market/pools/shortfalls.py.

-- name: insert_shortfall
INSERT INTO payout_shortfalls (payout_id, org_id, line_id, expected_fen, received_fen,
                               shortfall_fen, reason, note, created_by, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
RETURNING *

-- name: shortfall_locked
-- One shortfall of the org ($2) with what closing it needs to know; locked.
SELECT s.*, p.reference AS payout_reference, p.payee_kind, p.pool_id, po.org_id AS pool_org_id
FROM payout_shortfalls s
JOIN payouts p ON p.id = s.payout_id
LEFT JOIN pools po ON po.id = p.pool_id
WHERE s.id = $1 AND s.org_id = $2
FOR UPDATE OF s

-- name: close_shortfall
UPDATE payout_shortfalls
SET status = $2, settled_line_id = $3, closed_by = $4, closed_at = $5, close_note = $6
WHERE id = $1
RETURNING *

-- name: settle_line_of_shortfall
-- The further line that brought what was short: matched by hand, no payout of its own.
UPDATE statement_lines
SET status = 'manual', matched_by = $2, matched_at = $3, note = $4
WHERE id = $1
RETURNING *

-- name: shortfalls_of_org
-- The org's shortfalls: of a status ($2) or one ($4); outstanding first, oldest first.
SELECT s.*, p.reference AS payout_reference, cs.reference AS case_reference,
       l.statement_id, l.line_no,
       sl.statement_id AS settled_statement_id, sl.line_no AS settled_line_no,
       uc.display_name AS created_by_name, ux.display_name AS closed_by_name
FROM payout_shortfalls s
JOIN payouts p ON p.id = s.payout_id
JOIN disposal_cases cs ON cs.id = p.case_id
JOIN statement_lines l ON l.id = s.line_id
LEFT JOIN statement_lines sl ON sl.id = s.settled_line_id
JOIN users uc ON uc.id = s.created_by
LEFT JOIN users ux ON ux.id = s.closed_by
WHERE s.org_id = $1
  AND ($2::text IS NULL OR s.status = $2)
  AND ($4::bigint IS NULL OR s.id = $4)
ORDER BY s.status <> 'outstanding', s.created_at, s.id
LIMIT $3

-- name: shortfalls_of_lines
-- The shortfall each of the org's short lines ($2) left, by line.
SELECT line_id, id, shortfall_fen, reason, note, status FROM payout_shortfalls
WHERE org_id = $1 AND line_id = ANY($2::bigint[])
