-- The pledgor as a party (market/licensing/pledgor.py): a pledgor organisation ($1) sees the
-- cases of the loans whose borrower row in `pledgors` carries its unified social credit
-- code (organisations.credit_code = pledgors.credit_code), at every bank. Another's case is
-- simply not found.

-- name: page_cases
-- The pledgor's cases, newest first, a page at a time ($2, $3: the cursor; $4: the limit).
WITH mine AS (
    SELECT p.id AS pledgor_id
    FROM organisations o
    JOIN pledgors p ON p.credit_code = o.credit_code
    WHERE o.id = $1 AND o.kind = 'pledgor'
)
SELECT c.id, c.reference, c.status, c.opened_at, c.closed_at, b.name AS bank_name,
       b.name_en AS bank_name_en, l.loan_no,
       coalesce((SELECT array_agg(t.status ORDER BY t.id) FROM lots t WHERE t.case_id = c.id),
                '{}') AS lot_statuses,
       (SELECT count(*) FROM lots t WHERE t.case_id = c.id) AS lot_count,
       coalesce((SELECT sum(y.amount_fen) FROM payouts y
                 WHERE y.case_id = c.id AND y.payee_kind = 'pledgor'
                   AND y.pledgor_id = mine.pledgor_id AND y.status <> 'reversed'), 0)::bigint
           AS surplus_fen,
       k.consented_at
FROM mine
JOIN loans l ON l.pledgor_id = mine.pledgor_id
JOIN disposal_cases c ON c.loan_id = l.id AND c.bank_org_id = l.bank_org_id
JOIN organisations b ON b.id = c.bank_org_id
LEFT JOIN licensing_consents k ON k.case_id = c.id
WHERE ($2::timestamptz IS NULL OR (c.opened_at, c.id) < ($2, $3::bigint))
ORDER BY c.opened_at DESC, c.id DESC
LIMIT $4

-- name: case_of_pledgor
-- One case of the pledgor ($2), with its bank and loan; NULL when it is not the pledgor's.
SELECT c.id, c.reference, c.status, c.opened_at, c.closed_at, c.bank_org_id,
       b.name AS bank_name, b.name_en AS bank_name_en, l.loan_no, p.id AS pledgor_id,
       p.name AS pledgor_name, k.consented_at
FROM organisations o
JOIN pledgors p ON p.credit_code = o.credit_code
JOIN loans l ON l.pledgor_id = p.id
JOIN disposal_cases c ON c.loan_id = l.id AND c.bank_org_id = l.bank_org_id
JOIN organisations b ON b.id = c.bank_org_id
LEFT JOIN licensing_consents k ON k.case_id = c.id
WHERE o.id = $1 AND o.kind = 'pledgor' AND c.id = $2

-- name: lock_case_of_pledgor
-- The same case, its row locked: the pledgor's acts on one case take turns.
SELECT c.id, c.reference, c.status, c.bank_org_id
FROM organisations o
JOIN pledgors p ON p.credit_code = o.credit_code
JOIN loans l ON l.pledgor_id = p.id
JOIN disposal_cases c ON c.loan_id = l.id AND c.bank_org_id = l.bank_org_id
WHERE o.id = $1 AND o.kind = 'pledgor' AND c.id = $2
FOR NO KEY UPDATE OF c

-- name: case_assets
-- The collateral of a case (the pledgor's own patents).
SELECT a.id, a.kind, a.number, a.title, a.patent_type, a.filing_date, a.legal_status,
       a.annuity_paid_through
FROM case_assets ca JOIN ip_assets a ON a.id = ca.asset_id
WHERE ca.case_id = $1
ORDER BY a.id

-- name: case_lots
SELECT t.id, t.reference, t.title, t.status FROM lots t WHERE t.case_id = $1 ORDER BY t.id

-- name: case_payouts
-- What the waterfall owes the pledgor on the case: the surplus (民法典 art. 438).
SELECT y.id, y.amount_fen, y.reference, y.status, y.created_at, y.received_at
FROM payouts y
WHERE y.case_id = $1 AND y.payee_kind = 'pledgor' AND y.pledgor_id = $2
ORDER BY y.id

-- name: case_contracts
-- The licence contracts of the case in which the organisation is the pledgor.
SELECT k.* FROM licence_contracts k
WHERE k.case_id = $1 AND k.pledgor_org_id = $2
ORDER BY k.id

-- name: insert_consent
-- Once per case: the primary key decides between two clicks.
INSERT INTO licensing_consents (case_id, pledgor_org_id, user_id, consented_at)
VALUES ($1, $2, $3, $4)
ON CONFLICT (case_id) DO NOTHING
RETURNING case_id, pledgor_org_id, user_id, consented_at

-- name: consent_of_case
SELECT case_id, pledgor_org_id, user_id, consented_at FROM licensing_consents WHERE case_id = $1

-- name: insert_consent_given
-- Tell the bank that the pledgor consented to licensing the case's rights.
INSERT INTO outbox (event, recipient_org_id, payload, dedupe_key, created_at)
SELECT 'licensing_consent_given', c.bank_org_id,
       jsonb_build_object('case_id', c.id, 'case_reference', c.reference,
                          'pledgor_name', $2::text, 'consented_at', $3::timestamptz,
                          'path', '/bank/cases/' || c.id),
       format('licensing_consent_given:%s', c.id), $3
FROM disposal_cases c WHERE c.id = $1
ON CONFLICT (dedupe_key) DO NOTHING

-- name: lock_contract_of_pledgor
-- A licence contract whose pledgor is the organisation ($2), locked for its answer.
SELECT k.*, c.reference AS case_reference
FROM licence_contracts k JOIN disposal_cases c ON c.id = k.case_id
WHERE k.id = $1 AND k.pledgor_org_id = $2
FOR NO KEY UPDATE OF k

-- name: accept_contract
UPDATE licence_contracts SET status = 'active', accepted_at = $2
WHERE id = $1 AND status = 'awaiting_acceptance'
RETURNING *

-- name: decline_contract
UPDATE licence_contracts SET status = 'terminated', terminated_at = $2, termination_reason = $3
WHERE id = $1 AND status = 'awaiting_acceptance'
RETURNING *

-- name: insert_licence_back_answered
-- Tell the bank how the pledgor answered a licence back ($2: accepted or declined).
INSERT INTO outbox (event, recipient_org_id, payload, dedupe_key, created_at)
SELECT 'licence_back_' || $2::text, k.bank_org_id,
       jsonb_build_object('contract_id', k.id, 'contract_reference', k.reference,
                          'case_id', k.case_id, 'case_reference', c.reference,
                          'pledgor_name', $3::text, 'reason', $4::text,
                          'path', '/bank/cases/' || k.case_id),
       format('licence_back_%s:%s', $2::text, k.id), $5
FROM licence_contracts k JOIN disposal_cases c ON c.id = k.case_id
WHERE k.id = $1
ON CONFLICT (dedupe_key) DO NOTHING

-- name: bank_case_licensing
-- What the bank's case page shows of licensing: the pledgor's consent.
SELECT consented_at FROM licensing_consents WHERE case_id = $1

-- name: org_name
SELECT name FROM organisations WHERE id = $1

-- name: case_of_own_open_licence
-- The case of an open licence of the pledgor ($2); NULL when it is not the pledgor's.
SELECT case_id FROM open_licences WHERE id = $1 AND pledgor_org_id = $2

-- name: case_of_own_contract
-- The case of a licence contract naming the organisation ($2) as pledgor.
SELECT case_id FROM licence_contracts WHERE id = $1 AND pledgor_org_id = $2

-- name: demo_user
SELECT id FROM users WHERE email = $1

-- name: demo_open_licence_patent
-- The demo's patent to open: a valid invention of the case ($1), its annuity paid ($2).
SELECT a.id, a.patent_type, a.filing_date
FROM case_assets ca JOIN ip_assets a ON a.id = ca.asset_id
WHERE ca.case_id = $1 AND a.kind = 'patent' AND a.patent_type = 'invention'
  AND a.legal_status = 'valid' AND a.annuity_paid_through >= $2
ORDER BY a.id
LIMIT 1
