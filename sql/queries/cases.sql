-- Disposal cases, valuations and disclosure documents (market/cases). Every query names
-- the bank ($1 = bank_org_id): another bank's case, loan or document is simply not found.

-- name: lock_loan
-- The loan a case is opened on; the row lock makes two "open case" clicks take turns.
SELECT l.id, l.loan_no, l.pledge_id, l.outstanding_principal_fen, l.outstanding_interest_fen,
       l.default_date, l.npl_class
FROM loans l
WHERE l.bank_org_id = $1 AND l.id = $2
FOR NO KEY UPDATE

-- name: loan_for_new_case
-- A defaulted loan of the bank without an open case, with what the new-case form prefills.
SELECT l.id, l.loan_no, l.pledge_id, l.principal_fen, l.outstanding_principal_fen,
       l.outstanding_interest_fen, l.default_date, l.npl_class, p.name AS pledgor_name,
       g.registration_no AS pledge_no
FROM loans l
JOIN pledgors p ON p.id = l.pledgor_id AND p.bank_org_id = $1
LEFT JOIN pledges g ON g.id = l.pledge_id AND g.bank_org_id = $1
WHERE l.bank_org_id = $1 AND l.id = $2

-- name: defaulted_loans
-- The bank's defaulted loans (default date or NPL class) that have no open case yet.
SELECT l.id, l.loan_no, l.outstanding_principal_fen, l.outstanding_interest_fen,
       l.default_date, l.npl_class, p.name AS pledgor_name,
       (SELECT count(*) FROM pledge_assets pa WHERE pa.pledge_id = l.pledge_id) AS asset_count
FROM loans l
JOIN pledgors p ON p.id = l.pledgor_id
WHERE l.bank_org_id = $1
  AND (l.default_date IS NOT NULL OR l.npl_class IS NOT NULL)
  AND NOT EXISTS (SELECT 1 FROM disposal_cases c WHERE c.loan_id = l.id AND c.status = 'open')
ORDER BY l.default_date DESC NULLS LAST, l.id
LIMIT 500

-- name: pledge_assets
-- The assets of a loan's pledge: the default collateral of a case.
SELECT a.id, a.kind, a.number, a.title, a.legal_status
FROM pledge_assets pa
JOIN ip_assets a ON a.id = pa.asset_id
WHERE a.bank_org_id = $1 AND pa.pledge_id = $2
ORDER BY a.id

-- name: open_case_of_loan
SELECT id FROM disposal_cases WHERE bank_org_id = $1 AND loan_id = $2 AND status = 'open'

-- name: next_case_number
SELECT nextval('disposal_case_numbers')

-- name: insert_case
INSERT INTO disposal_cases (bank_org_id, loan_id, reference, status, claim_principal_fen,
                            claim_interest_fen, claim_costs_fen, notes, opened_by, opened_at)
VALUES ($1, $2, $3, 'open', $4, $5, $6, $7, $8, $9)
RETURNING id

-- name: insert_case_assets
INSERT INTO case_assets (case_id, asset_id) SELECT $1, unnest($2::bigint[])

-- name: case_row
-- One case of the bank with its loan and pledgor.
SELECT c.id, c.reference, c.status, c.loan_id, l.loan_no, p.name AS pledgor_name,
       c.claim_principal_fen, c.claim_interest_fen, c.claim_costs_fen, c.notes,
       c.opened_at, c.updated_at
FROM disposal_cases c
JOIN loans l ON l.id = c.loan_id
JOIN pledgors p ON p.id = l.pledgor_id
WHERE c.bank_org_id = $1 AND c.id = $2

-- name: lock_case
-- The case row, locked: claim edits, valuations and documents of one case take turns.
SELECT c.id, c.reference, c.status, c.claim_principal_fen, c.claim_interest_fen,
       c.claim_costs_fen, c.notes
FROM disposal_cases c
WHERE c.bank_org_id = $1 AND c.id = $2
FOR UPDATE

-- name: case_has_published_lot
-- Whether a lot of the case is on the market ($3: the states that do not count).
SELECT EXISTS (
    SELECT 1 FROM lots t
    WHERE t.bank_org_id = $1 AND t.case_id = $2 AND t.status <> ALL ($3::text[])
)

-- name: update_claim
UPDATE disposal_cases
SET claim_principal_fen = $3, claim_interest_fen = $4, claim_costs_fen = $5, notes = $6,
    updated_at = $7
WHERE bank_org_id = $1 AND id = $2

-- name: case_assets
-- The collateral of a case.
SELECT a.id, a.kind, a.number, a.title, a.legal_status, a.patent_type, a.term_ends_on,
       a.annuity_paid_through
FROM case_assets ca
JOIN disposal_cases c ON c.id = ca.case_id
JOIN ip_assets a ON a.id = ca.asset_id
WHERE c.bank_org_id = $1 AND ca.case_id = $2
ORDER BY a.id

-- name: case_asset_flags
-- Unresolved monitoring flags (annuity due, lapse, expiry…) on a case's assets.
SELECT f.asset_id, f.kind, f.detail, f.raised_at
FROM monitoring_flags f
JOIN case_assets ca ON ca.asset_id = f.asset_id
WHERE f.bank_org_id = $1 AND ca.case_id = $2 AND f.resolved_at IS NULL
ORDER BY f.asset_id, f.raised_at, f.id

-- name: valuations
-- A case's valuations, the current one (not superseded) first, then newest first.
SELECT v.id, v.method, v.value_fen, v.valued_on, v.valid_until, v.objection_until,
       v.appraiser, v.report_no, v.inputs, v.explanation, v.created_at, v.superseded_at
FROM valuations v
JOIN disposal_cases c ON c.id = v.case_id
WHERE c.bank_org_id = $1 AND v.case_id = $2
ORDER BY v.superseded_at IS NOT NULL, v.created_at DESC, v.id DESC
LIMIT 50

-- name: current_valuation
SELECT v.id, v.method, v.value_fen, v.valid_until, v.objection_until, v.inputs
FROM valuations v
JOIN disposal_cases c ON c.id = v.case_id
WHERE c.bank_org_id = $1 AND v.case_id = $2 AND v.superseded_at IS NULL

-- name: supersede_valuation
UPDATE valuations v SET superseded_at = $3
FROM disposal_cases c
WHERE c.id = v.case_id AND c.bank_org_id = $1 AND v.case_id = $2 AND v.superseded_at IS NULL
RETURNING v.id

-- name: insert_valuation
-- $10: an internal valuation's explanation as JSON lines of catalog keys and parameters
-- (market/cases/valuation.py Line), read in the reader's language; '' for an appraisal.
INSERT INTO valuations (case_id, method, value_fen, valued_on, valid_until, objection_until,
                        appraiser, report_no, inputs, explanation, created_by, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
RETURNING id, method, value_fen, valued_on, valid_until, objection_until, appraiser,
          report_no, inputs, explanation, created_at, superseded_at

-- name: case_documents
-- The documents of a case still in place, by checklist item.
SELECT d.id, d.item, d.filename, d.content_type, d.size_bytes, d.sha256, d.uploaded_at
FROM case_documents d
JOIN disposal_cases c ON c.id = d.case_id
WHERE c.bank_org_id = $1 AND d.case_id = $2 AND d.removed_at IS NULL
ORDER BY d.item, d.uploaded_at, d.id

-- name: disclosure_facts
-- What disclosure_status needs in one round trip: asset kinds, items uploaded, valuation.
SELECT
    ARRAY(SELECT DISTINCT a.kind FROM case_assets ca JOIN ip_assets a ON a.id = ca.asset_id
          WHERE ca.case_id = c.id) AS asset_kinds,
    ARRAY(SELECT DISTINCT d.item FROM case_documents d
          WHERE d.case_id = c.id AND d.removed_at IS NULL) AS items,
    (SELECT v.method FROM valuations v
     WHERE v.case_id = c.id AND v.superseded_at IS NULL) AS valuation_method
FROM disposal_cases c
WHERE c.bank_org_id = $1 AND c.id = $2

-- name: blob_exists
SELECT EXISTS (SELECT 1 FROM document_blobs WHERE sha256 = $1)

-- name: insert_blob
-- The bytes once per content: a second upload of the same file adds no copy.
INSERT INTO document_blobs (sha256, content, size_bytes) VALUES ($1, $2, $3)
ON CONFLICT (sha256) DO NOTHING

-- name: org_stored_bytes
-- The bytes an organisation holds, for its storage quota (market/cases/storage.py): its
-- cases' documents, removed ones too (their bytes stay), and its onboarding documents.
SELECT coalesce((SELECT sum(d.size_bytes) FROM case_documents d
                 JOIN disposal_cases c ON c.id = d.case_id
                 WHERE c.bank_org_id = $1), 0)
     + coalesce((SELECT sum(o.size_bytes) FROM organisation_documents o
                 WHERE o.org_id = $1), 0)

-- name: insert_document
INSERT INTO case_documents (case_id, item, filename, content_type, size_bytes, sha256,
                            uploaded_by, uploaded_at, public)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
RETURNING id, item, filename, content_type, size_bytes, sha256, uploaded_at

-- name: remove_document
UPDATE case_documents d SET removed_at = $4
FROM disposal_cases c
WHERE c.id = d.case_id AND c.bank_org_id = $1 AND d.case_id = $2 AND d.id = $3
  AND d.removed_at IS NULL
RETURNING d.id, d.item, d.filename, d.sha256

-- name: document_meta
-- A document of the bank's case, for download.
SELECT d.id, d.item, d.filename, d.content_type, d.size_bytes, d.sha256, d.uploaded_at
FROM case_documents d
JOIN disposal_cases c ON c.id = d.case_id
WHERE c.bank_org_id = $1 AND d.case_id = $2 AND d.id = $3 AND d.removed_at IS NULL

-- name: blob_chunk
-- A slice of a document's bytes ($2: 1-based offset, $3: length): downloads stream.
SELECT substring(b.content FROM $2 FOR $3) FROM document_blobs b WHERE b.sha256 = $1

-- name: case_lots
-- The lots made from a case (the lots area owns them; listed on the case page).
SELECT t.id, t.reference, t.title, t.status
FROM lots t
WHERE t.bank_org_id = $1 AND t.case_id = $2
ORDER BY t.id

-- name: list_cases
-- The bank's cases, newest first, with what the list shows and the disclosure needs.
SELECT c.id, c.reference, c.status, c.loan_id, l.loan_no, p.name AS pledgor_name,
       c.claim_principal_fen + c.claim_interest_fen + c.claim_costs_fen AS claim_total_fen,
       v.value_fen AS valuation_fen, v.method AS valuation_method,
       v.valid_until AS valuation_valid_until, c.opened_at,
       ARRAY(SELECT DISTINCT a.kind FROM case_assets ca JOIN ip_assets a ON a.id = ca.asset_id
             WHERE ca.case_id = c.id) AS asset_kinds,
       ARRAY(SELECT DISTINCT d.item FROM case_documents d
             WHERE d.case_id = c.id AND d.removed_at IS NULL) AS items
FROM disposal_cases c
JOIN loans l ON l.id = c.loan_id
JOIN pledgors p ON p.id = l.pledgor_id
LEFT JOIN valuations v ON v.case_id = c.id AND v.superseded_at IS NULL
WHERE c.bank_org_id = $1 AND ($2::text IS NULL OR c.status = $2)
ORDER BY c.opened_at DESC, c.id DESC
LIMIT $3 OFFSET $4
