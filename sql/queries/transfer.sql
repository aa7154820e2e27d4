-- name: sale_locked
-- The sale a transfer command changes, locked first (market/transfer: lock order), with
-- what every step needs: its lot, case, bank and the winner's user.
SELECT s.*, l.bank_org_id, l.case_id, l.reference AS lot_reference, l.title AS lot_title,
       r.user_id
FROM sales s JOIN lots l ON l.id = s.lot_id JOIN registrations r ON r.id = s.registration_id
WHERE s.id = $1
FOR UPDATE OF s

-- name: transfer_locked
SELECT * FROM transfers WHERE sale_id = $1 FOR UPDATE

-- name: insert_transfer
INSERT INTO transfers (sale_id, opened_at, release_due_at, recordal_due_at)
VALUES ($1, $2, $3, $4)
ON CONFLICT (sale_id) DO NOTHING
RETURNING *

-- name: asset_kinds
-- The kinds of the lot's assets: one recordal notice is needed per kind.
SELECT DISTINCT a.kind FROM lot_assets la JOIN ip_assets a ON a.id = la.asset_id
WHERE la.lot_id = $1 ORDER BY a.kind

-- name: notices
SELECT n.*, d.filename, d.content_type, d.size_bytes
FROM transfer_notices n JOIN case_documents d ON d.id = n.document_id
WHERE n.sale_id = $1 ORDER BY n.id

-- name: notice_locked
SELECT * FROM transfer_notices WHERE id = $1 FOR UPDATE

-- name: number_used
-- A notice of this kind and number standing on another sale: one release or recordal
-- certifies one transfer.
SELECT sale_id FROM transfer_notices
WHERE kind = $1 AND number = $2 AND sale_id <> $3 AND status <> 'rejected'
LIMIT 1

-- name: insert_document
-- The notice's document among the case's documents (not shown on a lot page).
INSERT INTO case_documents (case_id, item, filename, content_type, size_bytes, sha256, public,
                            uploaded_by, uploaded_at)
VALUES ($1, 'transfer_notice', $2, $3, $4, $5, false, $6, $7)
RETURNING id

-- name: insert_notice
INSERT INTO transfer_notices (sale_id, kind, number, issued_on, document_id, uploaded_by,
                              uploaded_org_id, uploaded_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (sale_id, kind) WHERE status <> 'rejected' DO NOTHING
RETURNING *

-- name: decide_notices
-- The operator's decision on the standing notices named.
UPDATE transfer_notices SET status = $2, decided_by = $3, decided_at = $4, reason = $5
WHERE id = ANY($1::bigint[]) AND status = 'pending'
RETURNING *

-- name: set_check_due
UPDATE transfers SET check_due_at = $2 WHERE sale_id = $1 RETURNING *

-- name: reopen_step
-- A rejected notice: the party may upload again until the step's deadline, moved to give
-- it at least the policy's time to do so (docs/rules.md §Transfer of title).
UPDATE transfers
SET release_due_at = CASE WHEN $2 = 'release' THEN greatest(release_due_at, $3)
                          ELSE release_due_at END,
    recordal_due_at = CASE WHEN $2 = 'recordal' THEN greatest(recordal_due_at, $3)
                           ELSE recordal_due_at END,
    check_due_at = NULL
WHERE sale_id = $1
RETURNING *

-- name: end_transfer
UPDATE transfers
SET status = $2, ended_at = $3, ended_by = $4, cause = $5, note = $6, buyer_at_fault = $7
WHERE sale_id = $1 AND status = 'in_escrow'
RETURNING *

-- name: set_sale_status
UPDATE sales SET status = $2 WHERE id = $1 AND status = 'paid' RETURNING *

-- name: operator_orgs
SELECT id FROM organisations WHERE kind = 'operator' AND status = 'approved' ORDER BY id

-- name: pool_orgs_of_receipt
-- The pools' organisations a routed receipt pays.
SELECT DISTINCT p.org_id FROM payouts po JOIN pools p ON p.id = po.pool_id
WHERE po.receipt_id = $1 ORDER BY p.org_id

-- name: insert_outbox
INSERT INTO outbox (event, recipient_org_id, recipient_user_id, lot_id, payload, dedupe_key,
                    created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (dedupe_key) DO NOTHING

-- name: due_transfers
-- Transfers in escrow with a deadline passed or within $2 (the earliest reminder), after
-- sale $3, by sale; the sweep decides per transfer.
SELECT sale_id FROM transfers
WHERE status = 'in_escrow'
  AND (least(release_due_at, recordal_due_at) <= $1::timestamptz + $2::interval
       OR check_due_at <= $1)
  AND sale_id > $3
ORDER BY sale_id LIMIT $4

-- name: transfer_view
-- One sale's transfer as its parties and the operator see it.
SELECT t.*, s.lot_id, s.round, s.buyer_org_id, s.price_fen, s.fee_kind, s.fee_fen,
       s.deposit_fen, s.balance_due_fen, s.paid_at, s.closed_at, s.status AS sale_status,
       s.payment_reference, l.bank_org_id, l.case_id, l.reference AS lot_reference,
       l.title AS lot_title, bo.name AS buyer_name, ba.name AS bank_name
FROM transfers t
JOIN sales s ON s.id = t.sale_id
JOIN lots l ON l.id = s.lot_id
JOIN organisations bo ON bo.id = s.buyer_org_id
JOIN organisations ba ON ba.id = l.bank_org_id
WHERE t.sale_id = $1

-- name: transfer_list
-- The transfers an organisation is party to ($1 NULL: the operator sees all), in escrow
-- first, the earliest deadline first. $2: only those in escrow.
SELECT t.*, s.lot_id, s.round, s.buyer_org_id, s.price_fen, s.fee_kind, s.fee_fen,
       s.deposit_fen, s.balance_due_fen, s.paid_at, s.closed_at, s.status AS sale_status,
       s.payment_reference, l.bank_org_id, l.case_id, l.reference AS lot_reference,
       l.title AS lot_title, bo.name AS buyer_name, ba.name AS bank_name
FROM transfers t
JOIN sales s ON s.id = t.sale_id
JOIN lots l ON l.id = s.lot_id
JOIN organisations bo ON bo.id = s.buyer_org_id
JOIN organisations ba ON ba.id = l.bank_org_id
WHERE ($1::bigint IS NULL OR s.buyer_org_id = $1 OR l.bank_org_id = $1)
  AND (NOT $2 OR t.status = 'in_escrow')
ORDER BY t.status <> 'in_escrow', least(t.release_due_at, t.recordal_due_at), t.sale_id
LIMIT $3

-- name: document_of_notice
-- A transfer's notice's document ($2: the transfer's sale, so another sale's is not found).
SELECT d.id, d.item, d.filename, d.content_type, d.size_bytes, d.sha256, d.uploaded_at
FROM transfer_notices n JOIN case_documents d ON d.id = n.document_id
WHERE n.id = $1 AND n.sale_id = $2

-- name: sale_lot
SELECT lot_id FROM sales WHERE id = $1

-- name: notice_sale
SELECT sale_id FROM transfer_notices WHERE id = $1

-- name: held_for_pool
-- Prices of sales held in escrow on loans enrolled in the pool: not recoveries yet.
SELECT count(*) AS n, coalesce(sum(s.price_fen), 0)::bigint AS amount_fen
FROM sales s JOIN lots l ON l.id = s.lot_id JOIN disposal_cases c ON c.id = l.case_id
JOIN pool_enrolments e ON e.loan_id = c.loan_id
WHERE s.status = 'paid' AND e.pool_id = $1

-- name: held_for_bank
-- Prices of the bank's sales held in escrow.
SELECT count(*) AS n, coalesce(sum(s.price_fen), 0)::bigint AS amount_fen
FROM sales s JOIN lots l ON l.id = s.lot_id
WHERE s.status = 'paid' AND l.bank_org_id = $1
