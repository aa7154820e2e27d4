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

-- name: lock_instructions_of_payouts
SELECT id, status FROM payment_instructions WHERE payout_id = ANY($1::bigint[])
ORDER BY id FOR UPDATE

-- name: cancel_instructions
UPDATE payment_instructions SET status = 'cancelled', cancelled_reason = $2
WHERE id = ANY($1::bigint[]) AND status = 'pending'

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
-- The pending instructions due before $1, with the account each is paid to
-- (payment_payees). Locked in (due, id) order (files.py).
SELECT i.id, i.reference, i.amount_fen, i.payee_kind, i.due_at,
       a.account_name, a.account_number, a.bank_name
FROM payment_instructions i
JOIN payment_payees a ON a.instruction_id = i.id
WHERE i.status = 'pending' AND i.due_at < $1
ORDER BY i.due_at, i.id
LIMIT $2
FOR UPDATE OF i

-- name: page_owed
-- The refunds and payouts owed to organisation $1: to it, to its pools, to the pledgor it is
-- (same credit code); newest first.
SELECT i.id, i.purpose, i.reference, i.amount_fen, i.due_at, i.status, i.payee_kind, i.pool_id,
       i.payout_id, i.created_at, i.paid_at, i.cancelled_reason
FROM payment_instructions i
WHERE (i.payee_org_id = $1
       OR i.pool_id IN (SELECT id FROM pools WHERE org_id = $1)
       OR i.pledgor_id IN (SELECT pl.id FROM pledgors pl
                           JOIN organisations o ON o.credit_code = pl.credit_code
                           WHERE o.id = $1 AND o.kind = 'pledgor'))
  AND ($2::text IS NULL OR i.purpose = $2)
  AND ($3::text IS NULL OR i.status = $3)
  AND ($4::timestamptz IS NULL OR (i.created_at, i.id) < ($4, $5::bigint))
ORDER BY i.created_at DESC, i.id DESC
LIMIT $6

-- name: page_instructions
-- The operator's list: by status, soonest due first, with the payee and its account.
SELECT i.id, i.purpose, i.reference, i.amount_fen, i.due_at, i.status, i.payee_kind,
       i.created_at, i.paid_at, i.file_id, i.file_line, i.paid_statement_id, i.paid_line_no,
       i.cancelled_reason, a.payee_name, a.account_name, a.account_number, a.bank_name
FROM payment_instructions i
JOIN payment_payees a ON a.instruction_id = i.id
WHERE ($1::text IS NULL OR i.status = $1)
  AND ($2::timestamptz IS NULL OR (i.due_at, i.id) > ($2, $3::bigint))
ORDER BY i.due_at, i.id
LIMIT $4

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
