-- name: org_party
-- What the details form needs to know of the organisation: a person or a company.
SELECT id, kind, name, party_type, credit_code FROM organisations WHERE id = $1

-- name: details
SELECT * FROM invoice_details WHERE org_id = $1

-- name: details_locked
-- The organisation's details, locked: two changes at once apply one after the other.
SELECT * FROM invoice_details WHERE org_id = $1 FOR UPDATE

-- name: upsert_details
INSERT INTO invoice_details (org_id, invoice_type, title, taxpayer_number, address_phone,
                             bank_account, updated_by, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (org_id) DO UPDATE SET
    invoice_type = EXCLUDED.invoice_type, title = EXCLUDED.title,
    taxpayer_number = EXCLUDED.taxpayer_number, address_phone = EXCLUDED.address_phone,
    bank_account = EXCLUDED.bank_account, updated_by = EXCLUDED.updated_by,
    updated_at = EXCLUDED.updated_at
RETURNING *

-- name: sale_locked
-- A sale and who pays its fee (the buyer a premium, the bank a commission), locked: its
-- invoice request and its cancellation are decided one after the other.
SELECT s.id, s.lot_id, s.fee_kind, s.fee_fen, s.paid_at, s.status, s.buyer_org_id,
       l.bank_org_id, l.reference AS lot_reference,
       CASE WHEN s.fee_kind = 'buyer_premium' THEN s.buyer_org_id ELSE l.bank_org_id END
           AS payer_org_id
FROM sales s JOIN lots l ON l.id = s.lot_id
WHERE s.id = $1
FOR UPDATE OF s

-- name: cancellation
SELECT * FROM invoice_cancellations WHERE sale_id = $1

-- name: insert_request
-- Nothing is returned when the sale already has its request of this kind.
INSERT INTO invoice_requests (sale_id, kind, cancels_id, payer_org_id, fee_kind, invoice_type,
                              title, taxpayer_number, address_phone, bank_account, amount_fen,
                              vat_rate_bp, tax_fen, net_fen, status, reason, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'requested', $15, $16)
ON CONFLICT (sale_id, kind) DO NOTHING
RETURNING *

-- name: request_of_sale
SELECT * FROM invoice_requests WHERE sale_id = $1 AND kind = $2

-- name: request_of_sale_locked
SELECT * FROM invoice_requests WHERE sale_id = $1 AND kind = 'invoice' FOR UPDATE

-- name: insert_cancellation
INSERT INTO invoice_cancellations (sale_id, reason, created_at) VALUES ($1, $2, $3)
ON CONFLICT (sale_id) DO NOTHING
RETURNING sale_id

-- name: cancel_request
UPDATE invoice_requests SET status = 'cancelled', cancelled_at = $2, reason = $3
WHERE id = $1 AND status = 'requested'
RETURNING *

-- name: paid_sales_without_request
-- The organisation's paid sales whose fee it pays and that have no invoice request yet (its
-- details were missing when the balance came), oldest first.
SELECT s.id, s.lot_id, l.reference AS lot_reference, l.title AS lot_title, s.fee_kind,
       s.fee_fen, s.paid_at
FROM sales s JOIN lots l ON l.id = s.lot_id
WHERE s.paid_at IS NOT NULL AND s.fee_fen > 0
  AND CASE WHEN s.fee_kind = 'buyer_premium' THEN s.buyer_org_id ELSE l.bank_org_id END = $1
  AND NOT EXISTS (SELECT 1 FROM invoice_requests q WHERE q.sale_id = s.id AND q.kind = 'invoice')
  AND NOT EXISTS (SELECT 1 FROM invoice_cancellations c WHERE c.sale_id = s.id)
ORDER BY s.paid_at, s.id
LIMIT $2

-- name: requests_of_payer
-- The organisation's invoice requests, newest first (a page at a time: id below $2).
SELECT q.*, s.lot_id, l.reference AS lot_reference, l.title AS lot_title
FROM invoice_requests q JOIN sales s ON s.id = q.sale_id JOIN lots l ON l.id = s.lot_id
WHERE q.payer_org_id = $1 AND ($2::bigint IS NULL OR q.id < $2)
ORDER BY q.id DESC
LIMIT $3

-- name: requests_all
-- Every invoice request, newest first, of one status or all (the operator's).
SELECT q.*, s.lot_id, l.reference AS lot_reference, l.title AS lot_title
FROM invoice_requests q JOIN sales s ON s.id = q.sale_id JOIN lots l ON l.id = s.lot_id
WHERE ($1::text IS NULL OR q.status = $1) AND ($2::bigint IS NULL OR q.id < $2)
ORDER BY q.id DESC
LIMIT $3

-- name: to_export
-- Every request still to export made before the period's end, locked, in id order: each is
-- exported once, by whichever export locks it first (a concurrent export waits for the row
-- lock, then PostgreSQL re-checks the status and leaves the row out).
SELECT q.*, s.lot_id, l.reference AS lot_reference, l.title AS lot_title
FROM invoice_requests q JOIN sales s ON s.id = q.sale_id JOIN lots l ON l.id = s.lot_id
WHERE q.status = 'requested' AND q.created_at < $1
ORDER BY q.id
FOR UPDATE OF q

-- name: insert_export
INSERT INTO invoice_exports (period, requests, csv, sha256, created_by, created_at)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id, period, requests, sha256, created_at

-- name: mark_exported
UPDATE invoice_requests SET status = 'exported', export_id = $2, exported_at = $3
WHERE id = ANY($1::bigint[]) AND status = 'requested'

-- name: exports
SELECT id, period, requests, sha256, created_at FROM invoice_exports
ORDER BY id DESC LIMIT $1

-- name: export_file
SELECT id, period, csv FROM invoice_exports WHERE id = $1

-- name: requests_locked
-- The requests a file of issued invoices names, locked in id order.
SELECT * FROM invoice_requests WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE

-- name: numbers_taken
-- Invoice numbers already recorded on other requests.
SELECT invoice_number, id FROM invoice_requests
WHERE invoice_number = ANY($1::text[])

-- name: mark_issued
UPDATE invoice_requests SET status = 'issued', invoice_number = $2, invoice_date = $3,
                            issued_at = $4
WHERE id = $1 AND status = 'exported'
RETURNING *

-- name: insert_outbox
-- An event owed to the payer; its dedupe key makes a second copy impossible.
INSERT INTO outbox (event, recipient_org_id, lot_id, payload, dedupe_key, created_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (dedupe_key) DO NOTHING

-- name: request_by_id
SELECT q.*, s.lot_id, l.reference AS lot_reference, l.title AS lot_title
FROM invoice_requests q JOIN sales s ON s.id = q.sale_id JOIN lots l ON l.id = s.lot_id
WHERE q.id = $1
