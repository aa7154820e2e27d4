-- name: lot_for_state
-- Everything the engine's state is rebuilt from, the lot row locked for the caller's batch.
SELECT id, status, round, auction_kind, terms, start_price_fen, increment_fen,
       bidding_starts_at, bidding_ends_at, current_price_fen, leader_registration_id,
       bid_count, auction_seq, first_bid_at, bank_org_id, valuation_fen
FROM lots WHERE id = $1 FOR UPDATE

-- name: round_holders
-- Registrations of pre-emptive right holders in the lots' rounds ($1 lot ids, $2 their
-- rounds): registration → rank.
SELECT r.lot_id, r.id, r.preemptive_rank
FROM registrations r JOIN unnest($1::bigint[], $2::int[]) AS l(id, round)
  ON r.lot_id = l.id AND r.round = l.round
WHERE r.preemptive_rank IS NOT NULL

-- name: round_proxies
SELECT p.lot_id, p.registration_id, p.max_fen, p.seq
FROM proxy_maxima p
JOIN registrations r ON r.id = p.registration_id
JOIN unnest($1::bigint[], $2::int[]) AS l(id, round) ON p.lot_id = l.id AND r.round = l.round

-- name: round_sealed_bids
-- A sealed round's standing bid of each registration: its latest.
SELECT DISTINCT ON (b.lot_id, b.registration_id)
       b.lot_id, b.seq, b.registration_id, b.amount_fen, b.kind, b.at
FROM bids b JOIN unnest($1::bigint[], $2::int[]) AS l(id, round)
  ON b.lot_id = l.id AND b.round = l.round
WHERE b.kind = 'sealed'
ORDER BY b.lot_id, b.registration_id, b.seq DESC

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

-- name: lots_by_reference
SELECT reference, id, round FROM lots WHERE reference = ANY ($1::text[]) AND status <> 'draft'

-- name: save_batch
-- A whole batch in one statement, whatever its number of lots: its accepted bids, its
-- proxy maxima, its lots' live values, its outbox rows and its answers to requests with
-- an Idempotency-Key. $1 is one jsonb document {bids, live, events, proxies, unchanged,
-- answers}, each a list of rows named as the records below read them
-- (auctions/writer.py BatchRows): one msgspec encoding instead of asyncpg encoding twenty
-- arrays element by element, parsed once by PostgreSQL. $2 is the batch's time, $3 its
-- lot ids.
--
-- Every lot of the batch is checked against what the batch was decided on (its basis:
-- round, status, auction_seq and end): a written lot by its UPDATE's condition, which
-- READ COMMITTED re-evaluates on the latest row version if another transaction got there
-- first; a lot without writes by a plain read. And every answer must be new: a key
-- already stored (by a retry racing its first request, or since the batch read them) is
-- not overwritten. bid_batch_current fails the statement, nothing written, unless all of
-- that holds. Under the lots' row locks (the locking way) the lots always are current;
-- without them this is what makes writing from the cached states safe
-- (auctions/writer.py).
--
-- The live values are in no index (nor is updated_at, which bids leave alone): a HOT
-- update, no index entries (an extension moves bidding_ends_at, which is indexed, so
-- that batch's update is not HOT).
WITH new_bids AS (
    INSERT INTO bids (lot_id, round, seq, registration_id, amount_fen, kind, at)
    SELECT b.lot_id, b.round, b.seq, b.registration_id, b.amount_fen, b.kind, b.at
    FROM jsonb_to_recordset($1::jsonb->'bids')
         AS b (lot_id bigint, round smallint, seq int, registration_id bigint,
               amount_fen bigint, kind text, at timestamptz)
), live AS (
    UPDATE lots l SET current_price_fen = v.price_fen, leader_registration_id = v.leader,
           bid_count = v.bid_count, auction_seq = v.seq, bidding_ends_at = v.ends_at,
           first_bid_at = v.first_bid_at
    FROM jsonb_to_recordset($1::jsonb->'live')
         AS v (lot_id bigint, price_fen bigint, leader bigint, bid_count int, seq int,
               ends_at timestamptz, first_bid_at timestamptz, basis jsonb)
    CROSS JOIN LATERAL jsonb_to_record(v.basis)
         AS w (was_round smallint, was_status text, was_seq int, was_ends_at timestamptz)
    WHERE l.id = ANY($3::bigint[]) AND l.id = v.lot_id AND l.round = w.was_round
      AND l.status = w.was_status AND l.auction_seq = w.was_seq
      AND l.bidding_ends_at = w.was_ends_at
    RETURNING l.id
), unchanged AS (
    SELECT l.id
    FROM lots l
    JOIN jsonb_to_recordset($1::jsonb->'unchanged') AS u (lot_id bigint, basis jsonb)
      ON l.id = u.lot_id
    CROSS JOIN LATERAL jsonb_to_record(u.basis)
         AS w (was_round smallint, was_status text, was_seq int, was_ends_at timestamptz)
    WHERE l.id = ANY($3::bigint[]) AND l.round = w.was_round AND l.status = w.was_status
      AND l.auction_seq = w.was_seq AND l.bidding_ends_at = w.was_ends_at
), proxies AS (
    INSERT INTO proxy_maxima (registration_id, lot_id, max_fen, seq, set_at)
    SELECT p.registration_id, p.lot_id, p.max_fen, p.seq, p.set_at
    FROM jsonb_to_recordset($1::jsonb->'proxies')
         AS p (registration_id bigint, lot_id bigint, max_fen bigint, seq int,
               set_at timestamptz)
    ON CONFLICT (registration_id) DO UPDATE
    SET max_fen = EXCLUDED.max_fen, seq = EXCLUDED.seq, set_at = EXCLUDED.set_at
), events AS (
    INSERT INTO outbox (event, recipient_org_id, recipient_user_id, lot_id, payload,
                        dedupe_key, created_at)
    SELECT e.event, e.recipient_org_id, e.recipient_user_id, e.lot_id, e.payload,
           e.dedupe_key, $2
    FROM jsonb_to_recordset($1::jsonb->'events')
         AS e (event text, recipient_org_id bigint, recipient_user_id bigint, lot_id bigint,
               payload jsonb, dedupe_key text)
    ON CONFLICT (dedupe_key) DO NOTHING
), answers AS (
    INSERT INTO bid_requests (registration_id, idempotency_key, request_sha256, status_code,
                              response, created_at)
    SELECT a.registration_id, a.idempotency_key, decode(a.request_sha256, 'base64'),
           a.status_code, a.response, $2
    FROM jsonb_to_recordset($1::jsonb->'answers')
         AS a (registration_id bigint, idempotency_key text, request_sha256 text,
               status_code smallint, response jsonb)
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT bid_batch_current((SELECT count(*) FROM live) + (SELECT count(*) FROM unchanged),
                         cardinality($3::bigint[]),
                         (SELECT count(*) FROM answers),
                         jsonb_array_length($1::jsonb->'answers'))

-- name: lock_lots
-- The rows of a batch's lots, locked in id order: every batcher takes them in this order,
-- so batches of different processes can wait on each other but never deadlock.
SELECT id, status, round, auction_kind, terms, start_price_fen, increment_fen,
       bidding_starts_at, bidding_ends_at, current_price_fen, leader_registration_id,
       bid_count, auction_seq, first_bid_at, bank_org_id, valuation_fen
FROM lots WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE
