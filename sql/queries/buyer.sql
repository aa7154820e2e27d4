-- What a bidder organisation has going on (market/buyer): one query per concern, each
-- reading only the rows of organisation $1, at most $2 rows, so the page is six queries
-- whatever the organisation's history.

-- name: registrations
-- Its registrations, newest first, each with its lot's round and state, its own bids
-- (count, highest), its standing proxy maximum, whether it leads the current round, and
-- the sale it won. A sealed round's leader is a secret until the close (docs/bidding.md):
-- `leads` is false there.
SELECT r.id, r.lot_id, r.round, r.bidder_code, r.deposit_fen, r.transfer_reference,
       r.deposit_status, r.confirmed_at, r.settled_at, r.created_at,
       l.reference AS lot_reference, l.title AS lot_title, l.status AS lot_status,
       l.round AS lot_round, l.auction_kind, l.current_price_fen, l.bidding_starts_at,
       l.bidding_ends_at,
       (l.round = r.round AND l.auction_kind <> 'sealed'
        AND l.leader_registration_id = r.id) AS leads,
       b.bid_count, b.highest_fen,
       p.max_fen AS proxy_max_fen,
       s.id AS sale_id
FROM registrations r
JOIN lots l ON l.id = r.lot_id
LEFT JOIN LATERAL (
    SELECT count(*)::int AS bid_count, max(amount_fen) AS highest_fen
    FROM bids WHERE lot_id = r.lot_id AND round = r.round AND registration_id = r.id
) b ON true
LEFT JOIN proxy_maxima p ON p.registration_id = r.id
LEFT JOIN sales s ON s.lot_id = r.lot_id AND s.round = r.round AND s.registration_id = r.id
WHERE r.buyer_org_id = $1
ORDER BY r.created_at DESC, r.id DESC
LIMIT $2

-- name: wins
-- The lots it won: those still to pay first, then newest first; with the transfer of
-- title a paid sale opened.
SELECT s.id, s.lot_id, s.price_fen, s.fee_kind, s.fee_fen, s.deposit_fen,
       s.balance_due_fen, s.due_at, s.payment_reference, s.status, s.paid_at, s.closed_at,
       l.reference AS lot_reference, l.title AS lot_title, t.status AS transfer_status
FROM sales s
JOIN lots l ON l.id = s.lot_id
LEFT JOIN transfers t ON t.sale_id = s.id
WHERE s.buyer_org_id = $1
ORDER BY s.status <> 'awaiting_payment', s.closed_at DESC, s.id DESC
LIMIT $2

-- name: transfers
-- The transfers of title of the lots it bought still in escrow, the earliest deadline
-- first: the kinds of the lot's assets (one recordal each, market/transfer/escrow.py) and
-- the kinds of notice standing (uploaded and not rejected).
SELECT t.sale_id, t.status, t.release_due_at, t.recordal_due_at, t.check_due_at,
       l.reference AS lot_reference, l.title AS lot_title,
       ARRAY(SELECT DISTINCT a.kind FROM lot_assets la JOIN ip_assets a ON a.id = la.asset_id
             WHERE la.lot_id = l.id ORDER BY 1) AS asset_kinds,
       ARRAY(SELECT n.kind FROM transfer_notices n
             WHERE n.sale_id = t.sale_id AND n.status <> 'rejected') AS standing
FROM transfers t
JOIN sales s ON s.id = t.sale_id
JOIN lots l ON l.id = s.lot_id
WHERE s.buyer_org_id = $1 AND t.status = 'in_escrow'
ORDER BY least(t.release_due_at, t.recordal_due_at), t.sale_id
LIMIT $2

-- name: refunds
-- The refunds the exchange owes it (payment instructions paid to the organisation), the
-- unpaid first, then newest first, with the lot each refunds: a released deposit's source
-- is `deposit_released:<registration>` (auctions/deposits.py), an unwound sale's
-- `sale_refund:sale_unwound:<sale>` (market/transfer/unwinding.py).
SELECT i.id, i.purpose, i.reference, i.amount_fen, i.due_at, i.status, i.created_at,
       i.paid_at,
       coalesce(rl.reference, sl.reference) AS lot_reference,
       coalesce(rl.title, sl.title) AS lot_title
FROM payment_instructions i
LEFT JOIN registrations r
       ON i.purpose = 'deposit_refund' AND r.buyer_org_id = $1
      AND r.id = substring(i.source FROM '^deposit_released:(\d+)$')::bigint
LEFT JOIN lots rl ON rl.id = r.lot_id
LEFT JOIN sales s
       ON i.purpose = 'sale_refund' AND s.buyer_org_id = $1
      AND s.id = substring(i.source FROM '^sale_refund:sale_unwound:(\d+)$')::bigint
LEFT JOIN lots sl ON sl.id = s.lot_id
WHERE i.payee_org_id = $1 AND i.purpose IN ('deposit_refund', 'sale_refund')
ORDER BY i.status IN ('paid', 'cancelled'), i.created_at DESC, i.id DESC
LIMIT $2

-- name: documents
-- The sale documents of the lots it bought, newest first.
SELECT d.id, d.sale_id, d.kind, d.code, d.sha256, d.issued_at,
       l.reference AS lot_reference, l.title AS lot_title
FROM sale_documents d
JOIN sales s ON s.id = d.sale_id
JOIN lots l ON l.id = s.lot_id
WHERE s.buyer_org_id = $1
ORDER BY d.issued_at DESC, d.id DESC
LIMIT $2
