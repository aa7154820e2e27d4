-- Licence contracts (market/licensing/contracts.py).

-- name: next_contract_number
SELECT nextval('licence_contract_numbers')

-- name: insert_contract
INSERT INTO licence_contracts (reference, case_id, bank_org_id, lot_id, offer_id,
                               open_licence_id, licensee_org_id, pledgor_org_id, kind,
                               field_of_use, territory, upfront_fen, terms, status,
                               recordal_due_on, created_at, accepted_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
        CASE WHEN $14::text = 'active' THEN $16::timestamptz END)
RETURNING *

-- name: contract_by_id
SELECT * FROM licence_contracts WHERE id = $1

-- name: contract_locked
SELECT * FROM licence_contracts WHERE id = $1 FOR UPDATE

-- name: contract_of_org
-- A contract as one of its parties sees it: the bank, the licensee or the pledgor (the
-- operator passes NULL and sees every contract); another organisation's is not found.
SELECT k.*, c.reference AS case_reference
FROM licence_contracts k JOIN disposal_cases c ON c.id = k.case_id
WHERE k.id = $1
  AND ($2::bigint IS NULL OR $2 IN (k.bank_org_id, k.licensee_org_id, k.pledgor_org_id))
