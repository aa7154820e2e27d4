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
