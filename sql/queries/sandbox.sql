-- name: clock_offset
-- The sandbox clock's offset in ms (no row: never moved).
SELECT coalesce((SELECT offset_ms FROM exchange_clock), 0)

-- name: advance_clock
-- Add $1 ms (> 0) to the offset, creating the row on the first move; the row lock
-- serialises concurrent moves, each adding its own amount.
INSERT INTO exchange_clock AS c (offset_ms, moved_at, moved_by)
VALUES ($1, $2, $3)
ON CONFLICT (id) DO UPDATE
SET offset_ms = c.offset_ms + EXCLUDED.offset_ms, moved_at = $2, moved_by = $3
RETURNING offset_ms, offset_ms - $1 AS previous_ms
