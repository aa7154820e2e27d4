-- Payments out (docs/rules.md §Payments out): payment instructions, settlement accounts,
-- payment files and the clearing account's outgoing lines.

-- name: insert_instruction
-- Nothing is returned for a source owed before (or a drawn reference already taken): the
-- caller reads the first by its source, or draws again.
INSERT INTO payment_instructions (source, purpose, payee_kind, payee_org_id, pool_id, pledgor_id,
                                  party, payout_id, amount_fen, reference, due_at, status,
                                  created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending', $12)
ON CONFLICT DO NOTHING
RETURNING id, reference

-- name: instruction_by_source
SELECT id, amount_fen, purpose, status, reference FROM payment_instructions WHERE source = $1

-- name: cancel_instruction
UPDATE payment_instructions SET status = 'cancelled', cancelled_reason = $2
WHERE source = $1 AND status = 'pending'
RETURNING id

-- name: insert_outbox
-- dedupe_key is unique: an event already owed is not owed twice.
INSERT INTO outbox (event, recipient_org_id, payload, dedupe_key, created_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (dedupe_key) DO NOTHING

-- name: instruction_of_payout_locked
SELECT * FROM payment_instructions WHERE payout_id = $1 FOR UPDATE

-- name: payout_row
SELECT * FROM payouts WHERE id = $1

-- name: link_paid_line
UPDATE payment_instructions SET paid_statement_id = $2, paid_line_no = $3
WHERE id = $1 AND paid_statement_id IS NULL

-- name: mark_instruction_paid
UPDATE payment_instructions
SET status = 'paid', paid_at = $2, paid_statement_id = $3, paid_line_no = $4, paid_entry_id = $5
WHERE id = $1

-- name: known_outgoing_txns
SELECT bank_txn_id FROM outgoing_lines WHERE org_id = $1 AND bank_txn_id = ANY($2::text[])

-- name: lock_payouts_of_references
-- The payouts of the instructions a file names, locked first (paying.py: lock order).
SELECT p.id FROM payouts p
JOIN payment_instructions i ON i.payout_id = p.id
WHERE i.reference = ANY($1::text[])
ORDER BY p.id
FOR UPDATE OF p

-- name: lock_instructions_by_reference
SELECT * FROM payment_instructions WHERE reference = ANY($1::text[]) ORDER BY id FOR UPDATE

-- name: insert_outgoing_lines
INSERT INTO outgoing_lines (statement_id, org_id, created_at, line_no, value_date, amount_fen,
                            reference, counterparty, bank_txn_id, status, instruction_id)
SELECT $1, $2, $3, t.line_no, t.value_date, t.amount_fen, t.reference, t.counterparty,
       t.bank_txn_id, t.status, t.instruction_id
FROM unnest($4::int[], $5::date[], $6::bigint[], $7::text[], $8::text[], $9::text[], $10::text[],
            $11::bigint[])
     AS t(line_no, value_date, amount_fen, reference, counterparty, bank_txn_id, status,
          instruction_id)

-- name: upsert_account
INSERT INTO settlement_accounts (owner_kind, owner_id, account_name, account_number, bank_name,
                                 updated_by, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (owner_kind, owner_id) DO UPDATE
SET account_name = EXCLUDED.account_name, account_number = EXCLUDED.account_number,
    bank_name = EXCLUDED.bank_name, updated_by = EXCLUDED.updated_by,
    updated_at = EXCLUDED.updated_at
RETURNING owner_kind, owner_id, account_name, account_number, bank_name, updated_at

-- name: account_of
SELECT owner_kind, owner_id, account_name, account_number, bank_name, updated_at
FROM settlement_accounts WHERE owner_kind = $1 AND owner_id = $2

-- name: pledgor_of_bank
SELECT id FROM pledgors WHERE id = $1 AND bank_org_id = $2

-- name: insert_period
INSERT INTO payment_periods (value_date) VALUES ($1) ON CONFLICT DO NOTHING

-- name: period_locked
SELECT * FROM payment_periods WHERE value_date = $1 FOR UPDATE

-- name: close_period
UPDATE payment_periods SET closed_at = $2, closed_by = $3 WHERE value_date = $1
RETURNING value_date, closed_at,
          (SELECT count(*) FROM payment_files f WHERE f.value_date = $1)::int AS files

-- name: due_instructions_locked
-- The pending instructions due before $1, with the account each is paid to: a pool's own,
-- else its manager organisation's; a pledgor's organisation's if it is onboarded, else the
-- one its bank recorded; an organisation's own. Locked in (due, id) order (files.py).
SELECT i.id, i.reference, i.amount_fen, i.payee_kind, i.due_at,
       a.account_name, a.account_number, a.bank_name
FROM payment_instructions i
LEFT JOIN pools p ON p.id = i.pool_id
LEFT JOIN pledgors pl ON pl.id = i.pledgor_id
LEFT JOIN LATERAL (
    SELECT o.id FROM organisations o
    WHERE o.kind = 'pledgor' AND o.status = 'approved' AND o.credit_code = pl.credit_code
) po ON true
LEFT JOIN LATERAL (
    SELECT s.account_name, s.account_number, s.bank_name
    FROM settlement_accounts s
    WHERE (s.owner_kind = 'org' AND s.owner_id = CASE i.payee_kind
                                                   WHEN 'org' THEN i.payee_org_id
                                                   WHEN 'pool' THEN p.org_id
                                                   WHEN 'pledgor' THEN po.id END)
       OR (s.owner_kind = 'pool' AND i.payee_kind = 'pool' AND s.owner_id = i.pool_id)
       OR (s.owner_kind = 'pledgor' AND i.payee_kind = 'pledgor' AND s.owner_id = i.pledgor_id)
    ORDER BY CASE s.owner_kind WHEN 'pool' THEN 0 WHEN 'org' THEN 1 ELSE 2 END
    LIMIT 1
) a ON true
WHERE i.status = 'pending' AND i.due_at < $1
ORDER BY i.due_at, i.id
LIMIT $2
FOR UPDATE OF i

-- name: insert_file
INSERT INTO payment_files (value_date, line_count, total_fen, content, sha256, created_by,
                           created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING id, created_at

-- name: put_in_file
UPDATE payment_instructions i SET status = 'in_file', file_id = $1, file_line = t.line
FROM unnest($2::bigint[], $3::int[]) AS t(id, line)
WHERE i.id = t.id AND i.status = 'pending'

-- name: file_content
SELECT value_date, content FROM payment_files WHERE id = $1

-- name: files
SELECT f.id, f.value_date, f.line_count, f.total_fen, f.created_at, p.closed_at
FROM payment_files f JOIN payment_periods p ON p.value_date = f.value_date
ORDER BY f.id DESC
LIMIT $1
