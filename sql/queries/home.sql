-- The home page's figures and shelves (market/catalogue/home.py). Public: no bank named,
-- drafts never counted. Live lots are few beside the history, so the groupings read the
-- live lots only (the lots_catalogue_ending partial index keeps them together).

-- name: figures
SELECT (SELECT count(*) FROM lots WHERE status IN ('announced', 'bidding')) AS live,
       (SELECT count(*) FROM lots WHERE status IN ('sold', 'licensed')) AS sold,
       (SELECT coalesce(sum(amount_fen), 0)::bigint FROM receipts WHERE status = 'routed')
           AS recovered_fen,
       (SELECT count(*) FROM organisations WHERE kind = 'buyer' AND status = 'approved')
           AS buyers;

-- name: by_section
-- Live lots per IPC section (the one-letter keys of ipc_keys, market/catalogue/text.py).
SELECT k.key AS section, count(*) AS lots
FROM lots l CROSS JOIN LATERAL unnest(l.ipc_keys) AS k (key)
WHERE l.status IN ('announced', 'bidding') AND length(k.key) = 1
GROUP BY k.key
ORDER BY k.key;

-- name: by_region
-- Live lots per province: the region up to its first 省, 自治区 or 市 (四川省成都市 → 四川省).
SELECT coalesce(substring(l.region FROM '^(.+?(?:自治区|省|市))'), l.region) AS province,
       count(*) AS lots
FROM lots l
WHERE l.status IN ('announced', 'bidding') AND l.region <> ''
GROUP BY 1
ORDER BY 2 DESC, 1
LIMIT $1;
