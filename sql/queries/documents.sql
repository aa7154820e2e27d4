-- name: sale_facts
-- What a sale's documents certify: the sale, its lot and case, the bank (pledgee), the
-- pledgor of the case's loan and the buyer.
SELECT s.id, s.lot_id, s.round, s.price_fen, s.fee_kind, s.fee_fen, s.deposit_fen,
       s.balance_due_fen, s.due_at, s.payment_reference, s.closed_at, s.paid_at,
       l.reference AS lot_reference, l.title AS lot_title, l.bank_org_id,
       c.reference AS case_reference,
       b.name AS bank_name, b.name_en AS bank_name_en, b.credit_code AS bank_credit_code,
       p.name AS pledgor_name, p.credit_code AS pledgor_credit_code,
       o.name AS buyer_name, o.name_en AS buyer_name_en, o.credit_code AS buyer_credit_code
FROM sales s
JOIN lots l ON l.id = s.lot_id
JOIN disposal_cases c ON c.id = l.case_id
JOIN loans n ON n.id = c.loan_id
JOIN pledgors p ON p.id = n.pledgor_id
JOIN organisations b ON b.id = l.bank_org_id
JOIN organisations o ON o.id = s.buyer_org_id
WHERE s.id = $1

-- name: sale_assets
-- The assets the sale transfers, with the numbers the registries know them by.
SELECT a.kind, a.number, a.title, a.patent_type
FROM lot_assets la JOIN ip_assets a ON a.id = la.asset_id
WHERE la.lot_id = $1
ORDER BY a.kind, a.number

-- name: sale_locked
-- The sale whose document is issued, locked: issuings of one sale take turns.
SELECT id FROM sales WHERE id = $1 FOR UPDATE

-- name: insert_document
-- Nothing is returned when the sale already has a document of this kind (it is issued
-- once), or, in the rarest case, when the random code is taken: the caller tells them apart.
INSERT INTO sale_documents (sale_id, kind, code, content, issued_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT DO NOTHING
RETURNING id

-- name: pending_documents
-- Documents whose PDF is still to be rendered, oldest first.
SELECT id FROM sale_documents WHERE sha256 IS NULL ORDER BY id LIMIT $1

-- name: pending_locked
-- One document to render, with its sale's parties; nothing when it is rendered already or
-- another worker is rendering it.
SELECT d.id, d.sale_id, d.kind, d.code, d.content, s.buyer_org_id, l.bank_org_id,
       l.id AS lot_id
FROM sale_documents d
JOIN sales s ON s.id = d.sale_id
JOIN lots l ON l.id = s.lot_id
WHERE d.id = $1 AND d.sha256 IS NULL
FOR UPDATE OF d SKIP LOCKED

-- name: mark_rendered
UPDATE sale_documents SET sha256 = $2, size_bytes = $3, rendered_at = $4
WHERE id = $1 AND sha256 IS NULL

-- name: insert_outbox
-- A party is told its document is ready; the dedupe key makes a second copy impossible.
INSERT INTO outbox (event, recipient_org_id, recipient_user_id, lot_id, payload, dedupe_key,
                    created_at)
VALUES ('document_issued', $1, NULL, $2, $3, $4, $5)
ON CONFLICT (dedupe_key) DO NOTHING

-- name: document_exists
SELECT EXISTS (SELECT 1 FROM sale_documents WHERE sale_id = $1 AND kind = $2)

-- name: document_by_code
-- A document by its verification code, with its sale's parties (who may download it).
SELECT d.id, d.sale_id, d.kind, d.code, d.content, d.sha256, d.size_bytes, d.issued_at,
       d.rendered_at, s.buyer_org_id, l.bank_org_id
FROM sale_documents d
JOIN sales s ON s.id = d.sale_id
JOIN lots l ON l.id = s.lot_id
WHERE d.code = $1

-- name: document_pdf
SELECT content FROM document_blobs WHERE sha256 = $1

-- name: page_documents
-- The documents of the sales an organisation is a party to (as the bank or the buyer),
-- newest first ($2, $3: the cursor; $4: the limit).
SELECT d.id, d.sale_id, d.kind, d.code, d.sha256, d.size_bytes, d.issued_at, d.rendered_at,
       l.reference AS lot_reference, l.title AS lot_title, c.reference AS case_reference,
       CASE WHEN l.bank_org_id = $1 THEN 'bank' ELSE 'buyer' END AS role
FROM sale_documents d
JOIN sales s ON s.id = d.sale_id
JOIN lots l ON l.id = s.lot_id
JOIN disposal_cases c ON c.id = l.case_id
WHERE (s.buyer_org_id = $1 OR l.bank_org_id = $1)
  AND ($2::timestamptz IS NULL OR (d.issued_at, d.id) < ($2, $3::bigint))
ORDER BY d.issued_at DESC, d.id DESC
LIMIT $4
