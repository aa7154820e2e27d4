-- A licence contract after it exists (market/licensing/book.py, reports.py, payments.py,
-- recordal.py, enforcement.py, clearing.py, api_contracts.py): its reports, payments,
-- audits, recordal, termination, reminders and the lists of each party.

-- name: contract_locked
-- The contract a royalty command changes, locked first (module docstrings: lock order).
SELECT k.*, c.reference AS case_reference
FROM licence_contracts k JOIN disposal_cases c ON c.id = k.case_id
WHERE k.id = $1 FOR UPDATE OF k

-- name: contract_by_reference
SELECT id FROM licence_contracts WHERE reference = $1

-- name: contract_for_party
-- A contract as one of its parties sees it ($2 NULL: the operator sees every contract).
SELECT k.*, c.reference AS case_reference,
       bo.name AS bank_name, lo.name AS licensee_name, po.name AS pledgor_name
FROM licence_contracts k JOIN disposal_cases c ON c.id = k.case_id
JOIN organisations bo ON bo.id = k.bank_org_id
JOIN organisations lo ON lo.id = k.licensee_org_id
LEFT JOIN organisations po ON po.id = k.pledgor_org_id
WHERE k.id = $1
  AND ($2::bigint IS NULL OR $2 IN (k.bank_org_id, k.licensee_org_id, k.pledgor_org_id))

-- name: reports_of
SELECT * FROM royalty_reports WHERE contract_id = $1 ORDER BY due_on, period

-- name: payments_of
SELECT * FROM royalty_payments WHERE contract_id = $1 ORDER BY paid_on, id

-- name: adjustments_of
SELECT a.*, u.display_name AS user_name
FROM royalty_adjustments a JOIN users u ON u.id = a.user_id
WHERE a.contract_id = $1 ORDER BY a.id

-- name: insert_report
-- A period is reported once: the primary key (contract, period) decides; a second report
-- of the same period inserts nothing.
INSERT INTO royalty_reports (contract_id, period, net_sales_fen, units, due_fen, due_on,
                             reported_by, reported_at)
SELECT $1, t.label, t.net_sales, t.units, t.due, t.due_on, $2, $3
FROM unnest($4::text[], $5::bigint[], $6::bigint[], $7::bigint[], $8::date[])
     AS t(label, net_sales, units, due, due_on)
ON CONFLICT (contract_id, period) DO NOTHING
RETURNING period

-- name: insert_payment
-- A period is paid once: UNIQUE (contract_id, period) decides.
INSERT INTO royalty_payments (contract_id, period, amount_fen, interest_fen, credit_fen, kind,
                              paid_on, receipt_id, statement_line_id, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (contract_id, period) DO NOTHING
RETURNING *

-- name: insert_adjustment
INSERT INTO royalty_adjustments (contract_id, period, net_sales_fen, due_change_fen, reason,
                                 user_id, created_at, billed_fen, due_on)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
RETURNING *

-- name: record_recordal
UPDATE licence_contracts
SET recordal_number = $2, recorded_on = $3, recordal_document = $4, recorded_by = $5
WHERE id = $1
RETURNING *

-- name: record_cancellation
UPDATE licence_contracts SET cancellation_number = $2, cancelled_on = $3
WHERE id = $1
RETURNING *

-- name: terminate
UPDATE licence_contracts
SET status = 'terminated', terminated_at = $2, termination_reason = $3, terminated_by = $4
WHERE id = $1 AND status = 'active'
RETURNING *

-- name: insert_document
-- The recordal's document among the case's documents (not shown on a lot page).
INSERT INTO case_documents (case_id, item, filename, content_type, size_bytes, sha256, public,
                            uploaded_by, uploaded_at)
VALUES ($1, 'licence_recordal', $2, $3, $4, $5, false, $6, $7)
RETURNING id

-- name: document_of_contract
-- The recordal's notice (the caller read the contract as one of its parties).
SELECT d.id, d.item, d.filename, d.content_type, d.size_bytes, d.sha256, d.uploaded_at
FROM case_documents d WHERE d.id = $1

-- name: page_contracts
-- The contracts of one party ($1 NULL: every contract, for the operator), as role $2
-- ('bank', 'licensee', 'pledgor' or NULL: any), status $3; keyset ($4, $5), limit $6.
SELECT k.*, c.reference AS case_reference,
       lo.name AS licensee_name, bo.name AS bank_name
FROM licence_contracts k
JOIN disposal_cases c ON c.id = k.case_id
JOIN organisations lo ON lo.id = k.licensee_org_id
JOIN organisations bo ON bo.id = k.bank_org_id
WHERE ($1::bigint IS NULL
       OR ($2::text IS NULL AND $1 IN (k.bank_org_id, k.licensee_org_id, k.pledgor_org_id))
       OR ($2 = 'bank' AND k.bank_org_id = $1)
       OR ($2 = 'licensee' AND k.licensee_org_id = $1)
       OR ($2 = 'pledgor' AND k.pledgor_org_id = $1))
  AND ($3::text IS NULL OR k.status = $3)
  AND ($4::timestamptz IS NULL OR (k.created_at, k.id) < ($4, $5))
ORDER BY k.created_at DESC, k.id DESC
LIMIT $6

-- name: running_contracts
-- The contracts the reminder job looks at, a batch after id $1.
SELECT k.*, c.reference AS case_reference
FROM licence_contracts k JOIN disposal_cases c ON c.id = k.case_id
WHERE k.status = 'active' AND k.id > $1
ORDER BY k.id
LIMIT $2

-- name: insert_royalty_event
-- A reminder or a termination for the licensee's users (and webhooks), once per
-- dedupe key: a job run twice writes it once.
INSERT INTO outbox (event, recipient_org_id, payload, dedupe_key, created_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (dedupe_key) DO NOTHING

-- name: clearing_line_locked
SELECT * FROM statement_lines WHERE id = $1 AND org_id = $2 FOR UPDATE

-- name: settle_clearing_line
UPDATE statement_lines SET status = 'manual', matched_by = $2, matched_at = $3, note = $4
WHERE id = $1

-- name: contracts_locked_by_reference
-- The contracts a clearing statement names, locked in id order (payments.py: lock order).
SELECT k.*, c.reference AS case_reference
FROM licence_contracts k JOIN disposal_cases c ON c.id = k.case_id
WHERE k.reference = ANY($1::text[])
ORDER BY k.id
FOR UPDATE OF k
