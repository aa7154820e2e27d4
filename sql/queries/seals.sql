-- Sealing the bids (auctions/seals.py).

-- name: rounds_to_seal
-- Lots whose current round has bids or proxy settings past its seal: `auction_seq` is the
-- round's last sequence, written with its bids in one transaction under the lot's lock.
SELECT l.id AS lot_id, l.round, l.auction_seq, s.through_seq, s.digest
FROM lots l
LEFT JOIN bid_seals s ON s.lot_id = l.id AND s.round = l.round
WHERE l.auction_seq > coalesce(s.through_seq, 0)
ORDER BY l.id
LIMIT $1

-- name: seal_locked
SELECT through_seq, digest FROM bid_seals WHERE lot_id = $1 AND round = $2 FOR UPDATE

-- name: bids_between
-- A round's bids after one sequence up to another, in order.
SELECT lot_id, round, seq, registration_id, amount_fen, kind, at
FROM bids WHERE lot_id = $1 AND round = $2 AND seq > $3 AND seq <= $4
ORDER BY seq

-- name: upsert_seal
INSERT INTO bid_seals (lot_id, round, through_seq, digest, sealed_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (lot_id, round)
DO UPDATE SET through_seq = excluded.through_seq, digest = excluded.digest,
              sealed_at = excluded.sealed_at

-- name: seal_audit_rows
-- Every seal the exchange's audit chain holds, in the chain's order.
SELECT seq, object_id, after FROM audit_log
WHERE chain_org_id = 0 AND action = 'bids.seal'
ORDER BY seq

-- name: round_bids
SELECT lot_id, round, seq, registration_id, amount_fen, kind, at
FROM bids WHERE lot_id = $1 AND round = $2 AND seq <= $3
ORDER BY seq
