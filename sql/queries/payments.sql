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
