-- name: behind
-- The work the worker owes and is late with, as of $1 (now less a grace): each count reads
-- a partial index, so a scrape costs little. Non-zero for long means a worker is down.
SELECT
    (SELECT count(*) FROM lots WHERE status = 'bidding' AND bidding_ends_at <= $1)
        AS lots_unclosed,
    (SELECT count(*) FROM lots WHERE status = 'announced' AND bidding_starts_at <= $1)
        AS lots_unopened,
    (SELECT count(*) FROM sales WHERE status = 'awaiting_payment' AND due_at <= $1)
        AS sales_undefaulted,
    (SELECT count(*) FROM outbox WHERE relayed_at IS NULL AND created_at <= $1)
        AS events_unrelayed,
    (SELECT count(*) FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $1)
        AS deliveries_late,
    (SELECT count(*) FROM deliveries WHERE status = 'failed')
        AS deliveries_failed
