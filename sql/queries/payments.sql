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
WHERE source = $1 AND status IN ('pending', 'in_file')
RETURNING id

-- name: insert_outbox
-- dedupe_key is unique: an event already owed is not owed twice.
INSERT INTO outbox (event, recipient_org_id, payload, dedupe_key, created_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (dedupe_key) DO NOTHING
