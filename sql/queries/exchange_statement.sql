-- name: insert_lines
-- The exchange account's statement lines, classified (market/exchange_account/statement.py):
-- a matched line names the registration ($12) or the sale ($13) it settles.
INSERT INTO statement_lines (statement_id, org_id, line_no, value_date, amount_fen, reference,
                             counterparty, bank_txn_id, status, reason, matched_at,
                             registration_id, sale_id)
SELECT $1, $2, t.line_no, t.value_date, t.amount_fen, t.reference, t.counterparty,
       t.bank_txn_id, t.status, t.reason, CASE WHEN t.status = 'matched' THEN $3::timestamptz END,
       t.registration_id, t.sale_id
FROM unnest($4::integer[], $5::date[], $6::bigint[], $7::text[], $8::text[], $9::text[],
            $10::text[], $11::text[], $12::bigint[], $13::bigint[])
     AS t(line_no, value_date, amount_fen, reference, counterparty, bank_txn_id, status, reason,
          registration_id, sale_id)
RETURNING id, line_no

-- name: registrations_by_reference
-- Unlocked: only to find their lots, which are locked first (auctions/deposits.py lock order).
SELECT id, lot_id, transfer_reference FROM registrations WHERE transfer_reference = ANY ($1::text[])

-- name: deposit_lines
-- The lines that confirmed these registrations' deposits already.
SELECT registration_id, statement_id, line_no FROM statement_lines
WHERE registration_id = ANY ($1::bigint[])

-- name: sales_locked_by_reference
-- The sales a statement names, locked in id order (auctions/closing.py: a payment once).
SELECT id, payment_reference, status, paid_at, balance_due_fen
FROM sales WHERE payment_reference = ANY ($1::text[])
ORDER BY id
FOR UPDATE

-- name: sale_lines
-- The lines that paid these sales' balances already.
SELECT sale_id, statement_id, line_no FROM statement_lines WHERE sale_id = ANY ($1::bigint[])

-- name: match_line_to_deposit
-- The operator's hand decision: this line is this registration's deposit.
UPDATE statement_lines
SET status = 'manual', registration_id = $2, matched_by = $3, matched_at = $4, note = $5
WHERE id = $1
RETURNING id, statement_id, line_no, status
