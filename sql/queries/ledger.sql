-- name: ensure_accounts
-- Accounts are created on first use, keyed by their code: an entry's new accounts in one
-- statement, in code order (two entries creating the same accounts lock them in one order).
INSERT INTO ledger_accounts (code, kind, name, owner_org_id, lot_id, created_at)
SELECT code, kind, name, owner_org_id, lot_id, $6
FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[])
     AS a(code, kind, name, owner_org_id, lot_id)
ORDER BY code
ON CONFLICT (code) DO NOTHING

-- name: account_ids
SELECT code, id, kind FROM ledger_accounts WHERE code = ANY($1::text[])

-- name: insert_entry
-- Nothing is returned when this source was posted before: the caller then does nothing.
INSERT INTO ledger_entries (source_kind, source_id, memo, reverses, at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (source_kind, source_id) DO NOTHING
RETURNING id

-- name: existing_entry
SELECT id FROM ledger_entries WHERE source_kind = $1 AND source_id = $2

-- name: insert_legs
INSERT INTO ledger_legs (entry_id, account_id, amount_fen)
SELECT $1, unnest($2::bigint[]), unnest($3::bigint[])

-- name: balance
SELECT coalesce(sum(l.amount_fen), 0) FROM ledger_legs l
JOIN ledger_accounts a ON a.id = l.account_id WHERE a.code = $1

-- name: entry_legs
SELECT a.code, l.amount_fen FROM ledger_legs l JOIN ledger_accounts a ON a.id = l.account_id
WHERE l.entry_id = $1 ORDER BY l.id

-- name: trial_balance
-- Every account's balance; the grand total is zero when the books balance.
SELECT a.code, a.kind, coalesce(sum(l.amount_fen), 0) AS balance_fen
FROM ledger_accounts a LEFT JOIN ledger_legs l ON l.account_id = a.id
GROUP BY a.id ORDER BY a.code
