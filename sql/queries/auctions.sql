-- name: lot_for_state
-- Everything the engine's state is rebuilt from, the lot row locked for the caller's batch.
SELECT id, status, round, auction_kind, terms, start_price_fen, increment_fen,
       bidding_starts_at, bidding_ends_at, current_price_fen, leader_registration_id,
       bid_count, auction_seq, first_bid_at, bank_org_id
FROM lots WHERE id = $1 FOR UPDATE

-- name: round_holders
-- Registrations of pre-emptive right holders in this round: registration → rank.
SELECT id, preemptive_rank FROM registrations
WHERE lot_id = $1 AND round = $2 AND preemptive_rank IS NOT NULL

-- name: round_proxies
SELECT p.registration_id, p.max_fen, p.seq FROM proxy_maxima p
JOIN registrations r ON r.id = p.registration_id
WHERE p.lot_id = $1 AND r.round = $2

-- name: round_sealed_bids
-- A sealed round's standing bid of each registration: its latest.
SELECT DISTINCT ON (registration_id) seq, registration_id, amount_fen, kind, at
FROM bids WHERE lot_id = $1 AND round = $2 AND kind = 'sealed'
ORDER BY registration_id, seq DESC

-- name: batch_registrations
-- The registrations a batch speaks for: deposits are checked inside the batch's
-- transaction, so a deposit confirmed a moment ago counts and a stale cache cannot lie.
SELECT id, lot_id, round, bidder_code, deposit_status, preemptive_rank, buyer_org_id, user_id
FROM registrations WHERE id = ANY($1::bigint[])

-- name: batch_registrations_and_lots
-- The same for a multi-lot batch, plus every confirmed registration of the batch's lots
-- that are new to this process's writer ($2): their other bidders' first bids then need
-- no query of their own (1,000 lots × 64 bidders are 64,000 first bids).
SELECT id, lot_id, round, bidder_code, deposit_status, preemptive_rank, buyer_org_id, user_id
FROM registrations
WHERE id = ANY($1::bigint[]) OR (lot_id = ANY($2::bigint[]) AND deposit_status = 'confirmed')

-- name: bidder_codes
SELECT id, bidder_code FROM registrations WHERE id = ANY($1::bigint[])

-- name: stored_answers
-- Answers already given to these (registration, Idempotency-Key) pairs.
SELECT registration_id, idempotency_key, request_sha256, status_code, response
FROM bid_requests
WHERE (registration_id, idempotency_key) IN (SELECT * FROM unnest($1::bigint[], $2::text[]))

-- name: upsert_proxies
INSERT INTO proxy_maxima (registration_id, lot_id, max_fen, seq, set_at)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::int[], $5::timestamptz[])
ON CONFLICT (registration_id) DO UPDATE
SET max_fen = EXCLUDED.max_fen, seq = EXCLUDED.seq, set_at = EXCLUDED.set_at

-- name: insert_answers
INSERT INTO bid_requests (registration_id, idempotency_key, request_sha256, status_code,
                          response, created_at)
SELECT unnest($1::bigint[]), unnest($2::text[]), unnest($3::bytea[]), unnest($4::smallint[]),
       unnest($5::jsonb[]), $6
ON CONFLICT DO NOTHING

-- name: lots_by_reference
SELECT reference, id, round FROM lots WHERE reference = ANY ($1::text[]) AND status <> 'draft'

-- name: save_batch
-- One round trip for a batch's accepted bids, its lots' live values and its outbox rows,
-- whatever the number of lots. The live values are in no index (nor is updated_at, which
-- bids leave alone): a HOT update, no index entries (migration 0012; an extension moves
-- bidding_ends_at, which is indexed, so that batch's update is not HOT).
WITH new_bids AS (
    INSERT INTO bids (lot_id, round, seq, registration_id, amount_fen, kind, at)
    SELECT * FROM unnest($1::bigint[], $2::smallint[], $3::int[], $4::bigint[],
                         $5::bigint[], $6::text[], $7::timestamptz[])
), live AS (
    UPDATE lots l SET current_price_fen = v.price_fen, leader_registration_id = v.leader,
           bid_count = v.bid_count, auction_seq = v.seq, bidding_ends_at = v.ends_at,
           first_bid_at = v.first_bid_at
    FROM unnest($8::bigint[], $9::bigint[], $10::bigint[], $11::int[], $12::int[],
                $13::timestamptz[], $14::timestamptz[])
         AS v (lot_id, price_fen, leader, bid_count, seq, ends_at, first_bid_at)
    WHERE l.id = v.lot_id
)
INSERT INTO outbox (event, recipient_org_id, recipient_user_id, lot_id, payload, dedupe_key,
                    created_at)
SELECT e.*, $15 FROM unnest($16::text[], $17::bigint[], $18::bigint[], $19::bigint[],
                            $20::jsonb[], $21::text[]) AS e
ON CONFLICT (dedupe_key) DO NOTHING

-- name: lock_lots
-- The rows of a batch's lots, locked in id order: every batcher takes them in this order,
-- so batches of different processes can wait on each other but never deadlock.
SELECT id, status, round, auction_kind, terms, start_price_fen, increment_fen,
       bidding_starts_at, bidding_ends_at, current_price_fen, leader_registration_id,
       bid_count, auction_seq, first_bid_at, bank_org_id
FROM lots WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE
