-- Open licences (开放许可, 专利法 arts. 50–52; market/licensing/open_licence.py).

-- name: case_asset_for_open_licence
-- A patent of the case ($1) with what a declaration checks: its kind, its term, whether
-- its annuity is paid, and any exclusive or sole licence of the case in force over it.
SELECT a.id, a.kind, a.number, a.title, a.patent_type, a.filing_date, a.legal_status,
       a.annuity_paid_through,
       EXISTS (
           SELECT 1 FROM licence_contracts k
           LEFT JOIN lot_assets la ON la.lot_id = k.lot_id AND la.asset_id = a.id
           WHERE k.case_id = ca.case_id AND k.kind IN ('exclusive', 'sole')
             AND k.status IN ('awaiting_acceptance', 'active')
             AND (k.lot_id IS NULL OR la.asset_id IS NOT NULL)
       ) AS exclusively_licensed
FROM case_assets ca JOIN ip_assets a ON a.id = ca.asset_id
WHERE ca.case_id = $1 AND a.id = $2

-- name: insert_open_licence
INSERT INTO open_licences (case_id, asset_id, bank_org_id, pledgor_org_id, terms, status,
                           created_at)
VALUES ($1, $2, $3, $4, $5, 'proposed', $6)
RETURNING id

-- name: open_licence
-- One open licence with its patent and parties, as everyone may read it once declared.
SELECT o.*, a.number AS patent_number, a.title AS patent_title, a.patent_type,
       a.filing_date, p.name AS patentee, c.reference AS case_reference,
       (SELECT count(*) FROM licence_contracts k
        WHERE k.open_licence_id = o.id AND k.status <> 'terminated') AS takers
FROM open_licences o
JOIN ip_assets a ON a.id = o.asset_id
JOIN pledgors p ON p.id = a.pledgor_id
JOIN disposal_cases c ON c.id = o.case_id
WHERE o.id = $1

-- name: open_licences_of_case
SELECT o.*, a.number AS patent_number, a.title AS patent_title, a.patent_type,
       a.filing_date, p.name AS patentee, c.reference AS case_reference,
       (SELECT count(*) FROM licence_contracts k
        WHERE k.open_licence_id = o.id AND k.status <> 'terminated') AS takers
FROM open_licences o
JOIN ip_assets a ON a.id = o.asset_id
JOIN pledgors p ON p.id = a.pledgor_id
JOIN disposal_cases c ON c.id = o.case_id
WHERE o.case_id = $1
ORDER BY o.id

-- name: page_public
-- Declared (and, when asked, withdrawn) open licences, newest declaration first
-- ($1: the status; $2, $3: the cursor; $4: the limit).
SELECT o.*, a.number AS patent_number, a.title AS patent_title, a.patent_type,
       a.filing_date, p.name AS patentee, c.reference AS case_reference,
       (SELECT count(*) FROM licence_contracts k
        WHERE k.open_licence_id = o.id AND k.status <> 'terminated') AS takers
FROM open_licences o
JOIN ip_assets a ON a.id = o.asset_id
JOIN pledgors p ON p.id = a.pledgor_id
JOIN disposal_cases c ON c.id = o.case_id
WHERE o.status = $1
  AND ($2::date IS NULL OR (o.declared_on, o.id) < ($2, $3::bigint))
ORDER BY o.declared_on DESC, o.id DESC
LIMIT $4

-- name: lock_of_pledgor
-- An open licence of the pledgor ($2), locked: its declaration and withdrawal take turns.
SELECT o.* FROM open_licences o WHERE o.id = $1 AND o.pledgor_org_id = $2 FOR NO KEY UPDATE

-- name: lock_of_bank
SELECT o.* FROM open_licences o WHERE o.id = $1 AND o.bank_org_id = $2 FOR NO KEY UPDATE

-- name: lock_for_taker
-- The open licence a firm takes, locked: takers of one licence take turns, so a taker's
-- second click finds its first contract (the unique index licence_contracts_one_taker
-- decides besides).
SELECT o.*, a.patent_type, a.filing_date, a.number AS patent_number
FROM open_licences o JOIN ip_assets a ON a.id = o.asset_id
WHERE o.id = $1
FOR NO KEY UPDATE OF o

-- name: bank_consents
UPDATE open_licences SET bank_consented_at = $2 WHERE id = $1 RETURNING id

-- name: declare
UPDATE open_licences SET status = 'declared', cnipa_number = $2, declared_on = $3
WHERE id = $1 RETURNING id

-- name: withdraw
UPDATE open_licences SET status = 'withdrawn', withdrawn_on = $2 WHERE id = $1 RETURNING id

-- name: live_contract_of_taker
SELECT reference FROM licence_contracts
WHERE open_licence_id = $1 AND licensee_org_id = $2 AND status <> 'terminated'

-- name: standing_on_assets
-- Whether any of the patents ($1) has a declared open licence.
SELECT EXISTS (
    SELECT 1 FROM open_licences WHERE asset_id = ANY ($1::bigint[]) AND status = 'declared'
)

-- name: insert_open_licence_taken
-- Tell the bank and the pledgor that a firm took the open licence: one row each.
INSERT INTO outbox (event, recipient_org_id, payload, dedupe_key, created_at)
SELECT 'open_licence_taken', r.org_id,
       jsonb_build_object('open_licence_id', o.id, 'contract_id', k.id,
                          'contract_reference', k.reference, 'case_id', o.case_id,
                          'patent_number', a.number, 'patent_title', a.title,
                          'licensee_name', t.name, 'start', k.terms ->> 'start',
                          'end', k.terms ->> 'end', 'path', r.path),
       format('open_licence_taken:%s:%s', k.id, r.role), $2
FROM licence_contracts k
JOIN open_licences o ON o.id = k.open_licence_id
JOIN ip_assets a ON a.id = o.asset_id
JOIN organisations t ON t.id = k.licensee_org_id
CROSS JOIN LATERAL (VALUES (o.bank_org_id, 'bank', '/bank/cases/' || o.case_id),
                           (o.pledgor_org_id, 'pledgor', '/pledgor/cases/' || o.case_id))
    AS r (org_id, role, path)
WHERE k.id = $1
ON CONFLICT (dedupe_key) DO NOTHING
