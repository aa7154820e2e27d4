-- Reconciliation of bank statements against expected payouts (docs/rules.md
-- §Reconciliation); market/pools/reconciliation.py.
--
-- "The organisation's payouts" ($1 = organisation id) everywhere below: what the waterfall
-- owes that organisation — a pool organisation's pools' payouts, a bank's own payouts
-- (payee_org_id is the pool's organisation for a pool payout, the bank for a bank's).

-- name: insert_statement
INSERT INTO statements (org_id, filename, sha256, line_count, imported_by, imported_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (org_id, sha256) DO NOTHING
RETURNING *

-- name: statement_by_sha
SELECT id, filename, imported_at FROM statements WHERE org_id = $1 AND sha256 = $2

-- name: known_txns
-- Transfers (by the bank's transaction id) already on an earlier statement of the org.
SELECT bank_txn_id, statement_id, line_no FROM statement_lines
WHERE org_id = $1 AND bank_txn_id = ANY($2::text[])

-- name: lock_payouts_by_reference
-- The org's payouts whose reference is one of $2, locked in id order (the import's lock
-- order: two transactions locking several payouts never wait on each other in a circle).
SELECT p.id, p.reference, p.amount_fen, p.status, p.created_at, p.received_at
FROM payouts p
WHERE p.reference = ANY($2::text[])
  AND p.payee_org_id = $1 AND p.payee_kind <> 'pledgor'
  AND (p.payee_kind <> 'pool' OR p.pool_id IN (SELECT id FROM pools WHERE org_id = $1))
ORDER BY p.id
FOR UPDATE OF p

-- name: open_payouts
-- The org's payouts still waiting for their transfer (typo and amount candidates).
SELECT p.id, p.reference, p.amount_fen, p.status, p.created_at, p.received_at
FROM payouts p
WHERE p.payee_org_id = $1 AND p.status = 'expected' AND p.payee_kind <> 'pledgor'
  AND (p.payee_kind <> 'pool' OR p.pool_id IN (SELECT id FROM pools WHERE org_id = $1))
ORDER BY p.id

-- name: owned_payout
-- One payout of the org, by id ($2) or, with no id, by reference ($3); locked.
SELECT p.* FROM payouts p
WHERE (p.id = $2 OR ($2::bigint IS NULL AND p.reference = $3))
  AND p.payee_org_id = $1 AND p.payee_kind <> 'pledgor'
  AND (p.payee_kind <> 'pool' OR p.pool_id IN (SELECT id FROM pools WHERE org_id = $1))
FOR UPDATE OF p

-- name: line_of_payout
SELECT statement_id, line_no, value_date FROM statement_lines WHERE payout_id = $1

-- name: lines_of_payouts
-- The statement line that settled each of the payouts $1 (those settled by a line).
SELECT payout_id, statement_id, line_no FROM statement_lines WHERE payout_id = ANY($1::bigint[])

-- name: insert_lines
-- The statement's lines, one array per column (the import left out the transactions of
-- earlier statements, under its lock). reason: the classification's code and parameters
-- as JSON text (market/pools/matching.py). matched_at: $3 for a matched line.
INSERT INTO statement_lines (statement_id, org_id, line_no, value_date, amount_fen, reference,
                             counterparty, bank_txn_id, status, reason, payout_id, candidate_id,
                             matched_at)
SELECT $1, $2, t.line_no, t.value_date, t.amount_fen, t.reference, t.counterparty, t.bank_txn_id,
       t.status, t.reason, t.payout_id, t.candidate_id,
       CASE WHEN t.status = 'matched' THEN $3::timestamptz END
FROM unnest($4::integer[], $5::date[], $6::bigint[], $7::text[], $8::text[], $9::text[],
            $10::text[], $11::text[], $12::bigint[], $13::bigint[])
     AS t(line_no, value_date, amount_fen, reference, counterparty, bank_txn_id, status, reason,
          payout_id, candidate_id)

-- name: line_locked
SELECT * FROM statement_lines WHERE id = $1 AND org_id = $2 FOR UPDATE

-- name: settle_line
UPDATE statement_lines
SET status = 'manual', payout_id = $2, matched_by = $3, matched_at = $4, note = $5
WHERE id = $1
RETURNING *

-- name: set_aside_line
UPDATE statement_lines
SET status = 'set_aside', matched_by = $2, matched_at = $3, note = $4
WHERE id = $1
RETURNING *

-- name: statements_of_org
SELECT s.id, s.filename, s.line_count, s.imported_at, u.display_name AS imported_by_name,
       count(l.id)::int AS lines,
       count(l.id) FILTER (WHERE l.status = 'matched')::int AS matched,
       count(l.id) FILTER (WHERE l.status = 'manual')::int AS manual,
       count(l.id) FILTER (WHERE l.status = 'set_aside')::int AS set_aside,
       count(l.id) FILTER (WHERE l.status IN ('amount_mismatch', 'reference_typo', 'unknown'))::int
           AS open
FROM statements s
JOIN users u ON u.id = s.imported_by
LEFT JOIN statement_lines l ON l.statement_id = s.id
WHERE s.org_id = $1 AND ($2::bigint IS NULL OR s.id = $2)
GROUP BY s.id, u.display_name
ORDER BY s.imported_at DESC, s.id DESC
LIMIT $3

-- name: lines
-- Lines of the org: of one statement ($2), of some statuses ($3) or one line ($5).
SELECT l.*, p.reference AS payout_reference, c.reference AS candidate_reference,
       c.amount_fen AS candidate_amount_fen, c.status AS candidate_status,
       u.display_name AS matched_by_name
FROM statement_lines l
LEFT JOIN payouts p ON p.id = l.payout_id
LEFT JOIN payouts c ON c.id = l.candidate_id
LEFT JOIN users u ON u.id = l.matched_by
WHERE l.org_id = $1
  AND ($2::bigint IS NULL OR l.statement_id = $2)
  AND ($3::text[] IS NULL OR l.status = ANY ($3))
  AND ($5::bigint IS NULL OR l.id = $5)
ORDER BY l.statement_id, l.line_no
LIMIT $4

-- name: payout_rows
-- Payouts with what a statement of them shows. $1: the viewing organisation (its own
-- statement line is shown); $2 pool id / $3 bank scope / $4 case id / $5 status filter;
-- $6: the viewer owns the case ($4), so sees every payout of it; $8/$9 a period
-- [from, to): payouts expected or received in it (NULL: open-ended).
SELECT p.id, p.reference, p.amount_fen, p.status, p.payee_kind, p.party, p.pool_id,
       p.created_at, p.received_at, p.case_id,
       cs.reference AS case_reference, r.kind AS receipt_kind,
       po.code AS pool_code, o.name AS payee_org_name, pl.name AS pledgor_name,
       sl.id AS line_id, sl.statement_id, sl.line_no, sl.value_date, sl.status AS line_status
FROM payouts p
JOIN receipts r ON r.id = p.receipt_id
JOIN disposal_cases cs ON cs.id = p.case_id
LEFT JOIN pools po ON po.id = p.pool_id
LEFT JOIN organisations o ON o.id = p.payee_org_id
LEFT JOIN pledgors pl ON pl.id = p.pledgor_id
LEFT JOIN statement_lines sl ON sl.payout_id = p.id AND sl.org_id = $1
WHERE ($2::bigint IS NULL OR (p.pool_id = $2 AND p.payee_kind = 'pool'))
  AND (NOT $3 OR (p.payee_org_id = $1 AND p.payee_kind IN ('bank', 'party')))
  AND ($4::bigint IS NULL OR p.case_id = $4)
  AND ($5::text IS NULL OR p.status = $5)
  AND ($6 OR (p.payee_org_id = $1 AND p.payee_kind <> 'pledgor'
              AND (p.payee_kind <> 'pool'
                   OR p.pool_id IN (SELECT id FROM pools WHERE org_id = $1))))
  AND (($8::timestamptz IS NULL AND $9::timestamptz IS NULL)
       OR (p.created_at >= coalesce($8, '-infinity') AND p.created_at < coalesce($9, 'infinity'))
       OR (p.received_at >= coalesce($8, '-infinity') AND p.received_at < coalesce($9, 'infinity')))
ORDER BY p.created_at, p.id
LIMIT $7

-- name: case_owner
SELECT id, bank_org_id, reference FROM disposal_cases WHERE id = $1

-- name: cases_with_payouts
-- Cases on which the org is owed something (or which it owns and has payouts on).
SELECT cs.id, cs.reference, count(*)::int AS payouts,
       coalesce(sum(p.amount_fen) FILTER (WHERE p.status = 'expected'), 0)::bigint AS open_fen
FROM payouts p JOIN disposal_cases cs ON cs.id = p.case_id
WHERE cs.bank_org_id = $1
   OR (p.payee_org_id = $1 AND p.payee_kind <> 'pledgor'
       AND (p.payee_kind <> 'pool' OR p.pool_id IN (SELECT id FROM pools WHERE org_id = $1)))
GROUP BY cs.id, cs.reference
ORDER BY cs.reference DESC
LIMIT $2
