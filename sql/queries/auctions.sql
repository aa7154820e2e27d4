-- name: lot_for_state
-- Everything the engine's state is rebuilt from, the lot row locked for the caller's batch.
SELECT id, status, round, auction_kind, terms, start_price_fen, increment_fen,
       bidding_starts_at, bidding_ends_at, current_price_fen, leader_registration_id,
       bid_count, auction_seq, first_bid_at, bank_org_id
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
-- an Idempotency-Key. $1 is one jsonb document of row lists, [bids, live values, events,
-- proxies, lots without writes, answers], each row a list in the order of the columns
-- below: one msgspec encoding instead of asyncpg encoding twenty arrays element by
-- element (several times less client CPU a batch), parsed once by PostgreSQL (as json,
-- each `->` parsed the whole text again: ~20 % slower). $2 is the batch's time, $3 its
-- lot ids.
--
-- Every lot of the batch is checked against what the batch was decided on (was_*: its
-- round, status, auction_seq and end): a written lot by its UPDATE's condition, which
-- READ COMMITTED re-evaluates on the latest row version if another transaction got there
-- first; a lot without writes by a plain read. And every answer must be new: a key
-- already stored (by a retry racing its first request, or since the batch read them) is
-- not overwritten. bid_batch_current (migration 0013) fails the statement, nothing
-- written, unless all of that holds. Under the lots' row locks (the locking way) the lots
-- always are current; without them this is what makes writing from the cached states
-- safe (auctions/writer.py).
--
-- The live values are in no index (nor is updated_at, which bids leave alone): a HOT
-- update, no index entries (migration 0012; an extension moves bidding_ends_at, which is
-- indexed, so that batch's update is not HOT).
WITH new_bids AS (
    INSERT INTO bids (lot_id, round, seq, registration_id, amount_fen, kind, at)
    SELECT (b->>0)::bigint, (b->>1)::smallint, (b->>2)::int, (b->>3)::bigint,
           (b->>4)::bigint, b->>5, (b->>6)::timestamptz
    FROM jsonb_array_elements($1::jsonb->0) AS b
), live AS (
    UPDATE lots l SET current_price_fen = v.price_fen, leader_registration_id = v.leader,
           bid_count = v.bid_count, auction_seq = v.seq, bidding_ends_at = v.ends_at,
           first_bid_at = v.first_bid_at
    FROM (SELECT (r->>0)::bigint, (r->>1)::bigint, (r->>2)::bigint, (r->>3)::int,
                 (r->>4)::int, (r->>5)::timestamptz, (r->>6)::timestamptz,
                 (r->>7)::smallint, r->>8, (r->>9)::int, (r->>10)::timestamptz
          FROM jsonb_array_elements($1::jsonb->1) AS r)
         AS v (lot_id, price_fen, leader, bid_count, seq, ends_at, first_bid_at,
               was_round, was_status, was_seq, was_ends_at)
    WHERE l.id = ANY($3::bigint[]) AND l.id = v.lot_id AND l.round = v.was_round
      AND l.status = v.was_status AND l.auction_seq = v.was_seq
      AND l.bidding_ends_at = v.was_ends_at
    RETURNING l.id
), unchanged AS (
    SELECT l.id
    FROM lots l
    JOIN (SELECT (r->>0)::bigint, (r->>1)::smallint, r->>2, (r->>3)::int,
                 (r->>4)::timestamptz
          FROM jsonb_array_elements($1::jsonb->4) AS r)
         AS u (lot_id, was_round, was_status, was_seq, was_ends_at)
      ON l.id = u.lot_id AND l.round = u.was_round AND l.status = u.was_status
     AND l.auction_seq = u.was_seq AND l.bidding_ends_at = u.was_ends_at
    WHERE l.id = ANY($3::bigint[])
), proxies AS (
    INSERT INTO proxy_maxima (registration_id, lot_id, max_fen, seq, set_at)
    SELECT (p->>0)::bigint, (p->>1)::bigint, (p->>2)::bigint, (p->>3)::int,
           (p->>4)::timestamptz
    FROM jsonb_array_elements($1::jsonb->3) AS p
    ON CONFLICT (registration_id) DO UPDATE
    SET max_fen = EXCLUDED.max_fen, seq = EXCLUDED.seq, set_at = EXCLUDED.set_at
), events AS (
    INSERT INTO outbox (event, recipient_org_id, recipient_user_id, lot_id, payload,
                        dedupe_key, created_at)
    SELECT e->>0, (e->>1)::bigint, (e->>2)::bigint, (e->>3)::bigint, e->4, e->>5, $2
    FROM jsonb_array_elements($1::jsonb->2) AS e
    ON CONFLICT (dedupe_key) DO NOTHING
), answers AS (
    INSERT INTO bid_requests (registration_id, idempotency_key, request_sha256, status_code,
                              response, created_at)
    SELECT (a->>0)::bigint, a->>1, decode(a->>2, 'base64'), (a->>3)::smallint,
           a->4, $2
    FROM jsonb_array_elements($1::jsonb->5) AS a
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT bid_batch_current((SELECT count(*) FROM live) + (SELECT count(*) FROM unchanged),
                         cardinality($3::bigint[]),
                         (SELECT count(*) FROM answers), jsonb_array_length($1::jsonb->5))

-- name: lock_lots
-- The rows of a batch's lots, locked in id order: every batcher takes them in this order,
-- so batches of different processes can wait on each other but never deadlock.
SELECT id, status, round, auction_kind, terms, start_price_fen, increment_fen,
       bidding_starts_at, bidding_ends_at, current_price_fen, leader_registration_id,
       bid_count, auction_seq, first_bid_at, bank_org_id
FROM lots WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE
