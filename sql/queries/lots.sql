-- name: next_lot_id
-- Taken before the insert so the reference can carry the id.
SELECT nextval(pg_get_serial_sequence('lots', 'id'))

-- name: insert_lot
INSERT INTO lots (id, case_id, bank_org_id, reference, title, description, status, round,
                  valuation_fen, start_price_fen, deposit_fen, increment_fen, first_start_fen,
                  terms, bidding_starts_at, bidding_ends_at, region, asset_kinds, ipc_keys,
                  search, created_at, updated_at, auction_kind)
OVERRIDING SYSTEM VALUE
VALUES ($1, $2, $3, $4, $5, $6, 'draft', 1, $7, $8, $9, $10, $8, $11, $12, $13, $14, $15, $16,
        to_tsvector('simple', $17), $18, $18, $19)

-- name: update_draft
-- The lot editor saves only a draft, and only the version it read (optimistic lock).
UPDATE lots SET title = $3, description = $4, valuation_fen = $5, start_price_fen = $6,
       deposit_fen = $7, increment_fen = $8, first_start_fen = $6, terms = $9,
       bidding_starts_at = $10, bidding_ends_at = $11, region = $12, asset_kinds = $13,
       ipc_keys = $14, search = to_tsvector('simple', $15), updated_at = $16,
       auction_kind = $17, version = version + 1
WHERE id = $1 AND version = $2 AND status = 'draft'
RETURNING id

-- name: lock_lot
-- A lot of the bank, locked for a transition: transitions of one lot take turns.
SELECT * FROM lots WHERE id = $1 AND bank_org_id = $2 FOR UPDATE

-- name: lock_lot_any_bank
-- The worker's view: no tenant, it acts for the exchange.
SELECT * FROM lots WHERE id = $1 FOR UPDATE

-- name: bank_lot
SELECT * FROM lots WHERE id = $1 AND bank_org_id = $2

-- name: save_state
UPDATE lots SET status = $2, round = $3, start_price_fen = $4, announced_at = $5,
       bidding_starts_at = $6, bidding_ends_at = $7, paused_from = $8, paused_at = $9,
       resume_by = $10, status_reason = $11, terms = $12, deposit_fen = $13,
       increment_fen = $14, updated_at = $15, version = version + 1,
       published_at = coalesce(published_at, CASE WHEN $2 = 'announced' THEN $15::timestamptz END)
WHERE id = $1

-- name: new_round
-- A relist or a fixed-price sale starts a fresh auction: no price, no leader, no bids.
UPDATE lots SET auction_kind = $2, current_price_fen = NULL, leader_registration_id = NULL,
       bid_count = 0, auction_seq = 0, first_bid_at = NULL, catalogue_price_fen = NULL
WHERE id = $1

-- name: insert_transition
INSERT INTO lot_transitions (lot_id, action, from_status, to_status, round, reason,
                             actor_user_id, at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)

-- name: upsert_round
-- Each round's schedule and, once closed, its outcome.
INSERT INTO lot_rounds (lot_id, round, start_price_fen, announced_at, bidding_starts_at,
                        bidding_ends_at, outcome, closed_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (lot_id, round) DO UPDATE SET
    start_price_fen = EXCLUDED.start_price_fen, announced_at = EXCLUDED.announced_at,
    bidding_starts_at = EXCLUDED.bidding_starts_at, bidding_ends_at = EXCLUDED.bidding_ends_at,
    outcome = EXCLUDED.outcome, closed_at = EXCLUDED.closed_at

-- name: set_lot_assets
INSERT INTO lot_assets (lot_id, asset_id) SELECT $1, unnest($2::bigint[])

-- name: clear_lot_assets
DELETE FROM lot_assets WHERE lot_id = $1

-- name: lot_asset_ids
SELECT asset_id FROM lot_assets WHERE lot_id = $1 ORDER BY asset_id

-- name: assets_in_other_lots
-- Assets already offered by another lot that is not over: one asset, one live lot.
SELECT la.asset_id, l.reference FROM lot_assets la JOIN lots l ON l.id = la.lot_id
WHERE la.asset_id = ANY($1::bigint[]) AND l.id <> $2
  AND l.status NOT IN ('withdrawn', 'returned')

-- name: catalogue_inputs
-- What the catalogue indexes about a lot's assets.
SELECT a.id, a.kind, a.number, a.title, a.abstract, a.ipc_codes, p.region
FROM ip_assets a JOIN pledgors p ON p.id = a.pledgor_id
WHERE a.id = ANY($1::bigint[]) AND a.bank_org_id = $2
ORDER BY a.id

-- name: clear_holders
DELETE FROM lot_preemptive_holders WHERE lot_id = $1

-- name: insert_holder
INSERT INTO lot_preemptive_holders (lot_id, rank, name, credit_code,
    org_id) VALUES ($1, $2, $3, $4, (SELECT id FROM organisations WHERE credit_code = $4))

-- name: lot_transitions
SELECT t.action, t.from_status, t.to_status, t.round, t.reason, t.at, u.display_name AS actor
FROM lot_transitions t LEFT JOIN users u ON u.id = t.actor_user_id
WHERE t.lot_id = $1 ORDER BY t.id

-- name: case_lots
SELECT id, reference, title, status, round, start_price_fen FROM lots
WHERE case_id = $1 AND bank_org_id = $2 ORDER BY id

-- name: due_to_open
-- Announced lots whose announced opening instant has come; several workers skip each
-- other's rows instead of waiting.
SELECT id FROM lots WHERE status = 'announced' AND bidding_starts_at <= $1
ORDER BY bidding_starts_at LIMIT $2 FOR UPDATE SKIP LOCKED

-- name: due_pause_expiry
SELECT id FROM lots WHERE status = 'paused' AND resume_by < $1
ORDER BY resume_by LIMIT $2 FOR UPDATE SKIP LOCKED

-- name: case_has_consent
-- The pledgor consented to licensing the case's rights (民法典 art. 444).
SELECT 1 FROM licensing_consents WHERE case_id = $1

-- name: lot_asset_facts
-- What the monitoring rule looks at, for the assets of a lot about to be published.
SELECT id, number, kind, legal_status, annuity_paid_through, term_ends_on, valid_until
FROM ip_assets WHERE id = ANY($1::bigint[]) AND bank_org_id = $2
ORDER BY id

-- name: open_number_year
-- The year's counter row, made once; numbers are taken from it under its lock.
INSERT INTO lot_numbers (year, last_number) VALUES ($1, 0) ON CONFLICT (year) DO NOTHING

-- name: lock_number_year
-- Publications of one year take turns on this row until their transactions end, so the
-- numbers they take are consecutive and a rolled-back publication gives its number back.
SELECT last_number FROM lot_numbers WHERE year = $1 FOR UPDATE

-- name: take_number
UPDATE lot_numbers SET last_number = last_number + 1 WHERE year = $1 RETURNING last_number

-- name: set_reference
UPDATE lots SET reference = $2 WHERE id = $1
