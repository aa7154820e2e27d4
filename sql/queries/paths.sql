-- The disposal paths a case tried (market/cases/paths.py and each path's provider).

-- name: lot_rounds_of_case
-- Every round of every published lot of the case, with what the lot is now and whether
-- the round was a listing (a period ended in it, or it is the listing's live round).
SELECT l.id AS lot_id, l.reference, l.status AS lot_status, l.round AS lot_round,
       r.round, r.start_price_fen, r.announced_at, r.bidding_starts_at, r.bidding_ends_at,
       r.outcome, r.closed_at,
       (EXISTS (SELECT 1 FROM listing_periods p WHERE p.lot_id = l.id AND p.round = r.round)
        OR (l.round = r.round AND l.terms ->> 'mode' = 'listing')) AS listed,
       (SELECT p.ends_at FROM listing_periods p
         WHERE p.lot_id = l.id AND p.round = r.round AND p.outcome = 'auction'
         ORDER BY p.ends_at DESC LIMIT 1) AS auction_from,
       (SELECT array_agg(t.action ORDER BY t.id) FROM lot_transitions t
         WHERE t.lot_id = l.id AND t.round = r.round) AS actions,
       (SELECT max(t.at) FROM lot_transitions t
         WHERE t.lot_id = l.id AND t.round = r.round AND t.action IN ('close', 'decide')) AS closed,
       s.price_fen AS sale_price_fen
FROM lots l
JOIN lot_rounds r ON r.lot_id = l.id
LEFT JOIN sales s ON s.lot_id = l.id AND s.round = r.round
WHERE l.case_id = $1 AND r.announced_at IS NOT NULL
ORDER BY l.id, r.round

-- name: listing_periods_of_case
-- Each end of a listing period of the case's lots, with what followed it.
SELECT p.lot_id, l.reference, p.round, p.ends_at, p.outcome, p.qualified, p.extended_to,
       r.announced_at AS round_announced_at,
       (SELECT max(x.round) FROM lot_rounds x WHERE x.lot_id = l.id) AS last_round,
       lt.status AS transfer_status, lt.price_fen AS transfer_price_fen
FROM listing_periods p
JOIN lots l ON l.id = p.lot_id
JOIN lot_rounds r ON r.lot_id = p.lot_id AND r.round = p.round
LEFT JOIN listing_transfers lt ON lt.lot_id = p.lot_id AND lt.round = p.round
WHERE l.case_id = $1
ORDER BY p.lot_id, p.round, p.ends_at

-- name: listing_extensions_of_case
-- When the bank extended each listing period (in order within its lot and round).
SELECT t.lot_id, t.round, t.at FROM lot_transitions t JOIN lots l ON l.id = t.lot_id
WHERE l.case_id = $1 AND t.action = 'extend_listing'
ORDER BY t.lot_id, t.round, t.id

-- name: live_listings_of_case
-- A listing whose period is running now (no end recorded for it yet).
SELECT l.id AS lot_id, l.reference, l.round, l.status, l.announced_at, l.bidding_starts_at
FROM lots l
WHERE l.case_id = $1 AND l.terms ->> 'mode' = 'listing' AND l.status IN ('announced', 'paused')
  AND NOT EXISTS (SELECT 1 FROM listing_periods p WHERE p.lot_id = l.id AND p.round = l.round
                  AND p.ends_at >= l.bidding_starts_at)
ORDER BY l.id

-- name: licence_decisions_of_case
SELECT d.lot_id, l.reference, d.round, d.status, d.top_price_fen, d.closed_at, d.decided_at,
       d.deadline_at
FROM licence_decisions d JOIN lots l ON l.id = d.lot_id
WHERE l.case_id = $1
ORDER BY d.closed_at, d.lot_id

-- name: failed_lots_of_case
-- The case's lots whose round failed: when it failed, and whether a listing period of the
-- round found no intent and was not extended (the extension is open then).
SELECT l.id AS lot_id, l.reference, l.round, l.terms ->> 'mode' AS mode,
       (SELECT max(t.at) FROM lot_transitions t
         WHERE t.lot_id = l.id AND t.round = l.round AND t.to_status = 'failed') AS failed_at,
       (SELECT p.outcome = 'no_intent' AND p.extended_to IS NULL FROM listing_periods p
         WHERE p.lot_id = l.id AND p.round = l.round ORDER BY p.ends_at DESC LIMIT 1)
         AS extendable
FROM lots l
WHERE l.case_id = $1 AND l.status = 'failed'
ORDER BY l.id

-- name: failed_at
-- When the lot's current round failed (the last transition into 'failed' in it).
SELECT max(at) FROM lot_transitions WHERE lot_id = $1 AND round = $2 AND to_status = 'failed'

-- name: case_of_operator
SELECT id, reference, bank_org_id FROM disposal_cases WHERE id = $1
