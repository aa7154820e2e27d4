-- name: live_lot
-- A published lot's public live values; the leader only by its anonymous bidder code.
SELECT l.id, l.reference, l.round, l.status, l.auction_kind, l.start_price_fen,
       l.increment_fen, l.current_price_fen, r.bidder_code AS leader_code,
       l.bidding_starts_at, l.bidding_ends_at, l.bid_count
FROM lots l
LEFT JOIN registrations r ON r.id = l.leader_registration_id
WHERE l.reference = $1 AND l.status <> 'draft'

-- name: live_lot_by_id
-- The same, by id: the stream's first event re-reads it after subscribing.
SELECT l.id, l.reference, l.round, l.status, l.auction_kind, l.start_price_fen,
       l.increment_fen, l.current_price_fen, r.bidder_code AS leader_code,
       l.bidding_starts_at, l.bidding_ends_at, l.bid_count
FROM lots l
LEFT JOIN registrations r ON r.id = l.leader_registration_id
WHERE l.id = $1 AND l.status <> 'draft'

-- name: recent_bids
-- The round's latest accepted bids, newest first (the unique (lot_id, round, seq) index).
SELECT b.seq, r.bidder_code AS code, b.amount_fen, b.kind, b.at
FROM bids b
JOIN registrations r ON r.id = b.registration_id
WHERE b.lot_id = $1 AND b.round = $2
ORDER BY b.seq DESC
LIMIT $3

-- name: standing_proxy
-- A registration's own standing proxy maximum, for its bid panel.
SELECT max_fen FROM proxy_maxima WHERE registration_id = $1

-- name: sealed_reveal
-- A closed sealed round's standing bids — each tenderer's last — best first, as
-- auctions/rules.py `reveal` ranks them (amount, then the earlier time, then sequence).
SELECT b.seq, r.bidder_code AS code, b.amount_fen, b.kind, b.at
FROM (SELECT DISTINCT ON (registration_id) *
      FROM bids WHERE lot_id = $1 AND round = $2 AND kind = 'sealed'
      ORDER BY registration_id, seq DESC) b
JOIN registrations r ON r.id = b.registration_id
ORDER BY b.amount_fen DESC, b.at, b.seq
