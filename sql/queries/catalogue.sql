-- The public catalogue. Nothing here names a bank: it serves visitors, so
-- every query keeps drafts out (status <> 'draft') and selects public columns only.
--
-- A search is assembled from the blocks below by market/catalogue/services.py: `page` or
-- `count_capped` with {where} = `where_published` AND the where_* blocks of the filters
-- given, and {order} = one order_* block. Blocks are constants; user input only ever
-- arrives as parameters, written :name here and numbered $n when assembled. Building the
-- statement per filter combination (rather than one statement with "$n IS NULL OR …")
-- lets the planner use the index each combination needs.
--
-- The lots_catalogue_* indexes (sql/migrations/0004_lots.sql), chosen with EXPLAIN ANALYZE
-- on 100,000 lots (bench/catalog.py):
--   _ending (bidding_ends_at, id) on live lots only: closed lots ended in the past and
--     would sort first, so a status-less index made "ending soonest" skip ~16k rows.
--   _search / _search_live: GIN over every published lot, and over live lots only, where a
--     default keyword search needs no status check at all.
--   _closed (status, published_at…): history searches ("sold" + keywords) as a BitmapAnd,
--     and "newest" of one closed state in index order (closed lots are the oldest).
--   _price is on the catalogue price and NOT partial: the planner ignores the statistics of
--     partial expression indexes, and misjudged price ranges 40-fold without them. The
--     catalogue price is the current price as of the last refresh (refresh_prices), not
--     the live one, so that bids' updates of lots touch no index (migration 0012).
--   _region text_pattern_ops serves `region LIKE '四川%'` whatever the collation.

-- name: page
-- One page of result cards, one row more than asked to know whether a next page exists.
SELECT l.reference, l.title, l.status, l.round, l.asset_kinds, l.ipc_keys, l.region,
       coalesce(l.current_price_fen, l.start_price_fen) AS price_fen,
       l.start_price_fen, l.current_price_fen, l.deposit_fen,
       l.announced_at, l.bidding_starts_at, l.bidding_ends_at, l.published_at,
       coalesce(l.terms->>'mode', 'auction') AS mode
FROM lots l
WHERE {where}
ORDER BY {order}
LIMIT :limit OFFSET :offset

-- name: count_capped
-- How many lots match, counting no further than :cap (the page shows "10,000+").
SELECT count(*) FROM (SELECT FROM lots l WHERE {where} LIMIT :cap) AS capped

-- name: where_published
-- Always: the published states asked for. {statuses} is a list of quoted literals from the
-- fixed set of public states (never typed text): written out, the planner can match the
-- partial indexes on live lots with any plan, generic or custom.
l.status <> 'draft' AND l.status IN ({statuses})

-- name: where_q
l.search @@ to_tsquery('simple', :tsquery)

-- name: where_ipc
l.ipc_keys @> ARRAY[:ipc_key::text]

-- name: where_kind
l.asset_kinds @> ARRAY[:kind::text]

-- name: where_region
l.region LIKE :region_like

-- name: where_price_min
coalesce(l.catalogue_price_fen, l.start_price_fen) >= :price_min_fen

-- name: where_price_max
coalesce(l.catalogue_price_fen, l.start_price_fen) <= :price_max_fen

-- name: where_ending_soon
l.status = 'bidding' AND l.bidding_ends_at > :now AND l.bidding_ends_at <= :soon

-- name: order_ending
l.bidding_ends_at ASC NULLS LAST, l.id ASC

-- name: order_newest
l.published_at DESC NULLS LAST, l.id DESC

-- name: order_price_asc
coalesce(l.catalogue_price_fen, l.start_price_fen) ASC, l.id ASC

-- name: order_price_desc
coalesce(l.catalogue_price_fen, l.start_price_fen) DESC, l.id DESC

-- name: order_relevance
ts_rank(l.search, to_tsquery('simple', :tsquery)) DESC, l.id ASC

-- name: public_lot
-- A published lot by reference, with its seller's name; a draft is not found.
SELECT l.id, l.case_id, l.reference, l.title, l.description, l.status, l.round, l.region,
       l.asset_kinds, l.start_price_fen, l.deposit_fen, l.increment_fen, l.current_price_fen,
       l.terms, l.valuation_fen, l.announced_at, l.bidding_starts_at, l.bidding_ends_at,
       l.published_at, o.name AS seller
FROM lots l JOIN organisations o ON o.id = l.bank_org_id
WHERE l.reference = $1 AND l.status <> 'draft'

-- name: public_assets
-- The lot's assets with the facts a buyer must know before bidding.
SELECT a.id, a.kind, a.number, a.title, a.abstract, a.patent_type, a.ipc_codes, a.nice_classes,
       a.legal_status, a.term_ends_on, a.valid_until, a.annuity_paid_through, a.owners,
       a.licences, a.encumbrances
FROM lot_assets la JOIN ip_assets a ON a.id = la.asset_id
WHERE la.lot_id = $1
ORDER BY a.kind, a.number

-- name: public_warnings
-- 风险提示: unresolved monitoring flags on the lot's assets.
SELECT a.number AS asset_number, f.kind, f.raised_at, a.kind AS asset_kind, a.legal_status,
       a.annuity_paid_through, a.term_ends_on, a.valid_until
FROM lot_assets la
JOIN monitoring_flags f ON f.asset_id = la.asset_id AND f.resolved_at IS NULL
JOIN ip_assets a ON a.id = la.asset_id
WHERE la.lot_id = $1
ORDER BY f.raised_at, f.id

-- name: current_valuation
-- The case's valuation in force (the one not superseded).
SELECT method, value_fen, valued_on, valid_until, appraiser
FROM valuations WHERE case_id = $1 AND superseded_at IS NULL

-- name: preemptive_count
SELECT count(*) FROM lot_preemptive_holders WHERE lot_id = $1

-- name: public_documents
-- The case's disclosure documents marked public and not removed.
SELECT id, item, filename, content_type, size_bytes, uploaded_at
FROM case_documents
WHERE case_id = $1 AND removed_at IS NULL AND public
ORDER BY item, id

-- name: public_document
-- One public document of a published lot, with its bytes; any other answers nothing.
SELECT d.filename, d.content_type, b.content
FROM lots l
JOIN case_documents d ON d.case_id = l.case_id
JOIN document_blobs b ON b.sha256 = d.sha256
WHERE l.reference = $1 AND l.status <> 'draft'
  AND d.id = $2 AND d.removed_at IS NULL AND d.public

-- name: refresh_prices
-- The catalogue price catches up with bidding: up to $1 lots whose live price moved since
-- the last refresh, in one short statement (their rows are locked only while it runs).
-- Rows a bid batch holds are skipped, not waited for (the next refresh takes them), so
-- this never delays a batch more than one chunk's update nor deadlocks with its
-- id-ordered locks.
UPDATE lots l SET catalogue_price_fen = l.current_price_fen
FROM (SELECT id FROM lots WHERE catalogue_price_fen IS DISTINCT FROM current_price_fen
      ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED) AS due
WHERE l.id = due.id
