-- name: ensure_head
-- Create the chain's head at genesis the first time an organisation is audited.
INSERT INTO audit_heads (chain_org_id, seq, hash) VALUES ($1, 0, $2)
ON CONFLICT (chain_org_id) DO NOTHING

-- name: lock_head
-- Serialises appends to one chain until the caller's transaction ends.
SELECT seq, hash FROM audit_heads WHERE chain_org_id = $1 FOR UPDATE

-- name: insert_row
INSERT INTO audit_log (chain_org_id, seq, actor_user_id, actor_org_id, action, object_kind,
                       object_id, before, after, at, prev_hash, hash)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)

-- name: move_head
UPDATE audit_heads SET seq = $2, hash = $3 WHERE chain_org_id = $1

-- name: all_heads
SELECT chain_org_id, seq, hash FROM audit_heads

-- name: all_chains
SELECT DISTINCT chain_org_id FROM audit_log

-- name: chain_rows
SELECT id, seq, actor_user_id, actor_org_id, action, object_kind, object_id, before, after,
       at, prev_hash, hash
FROM audit_log WHERE chain_org_id = $1 ORDER BY seq

-- name: for_object
-- The history of one object, newest first, for its page.
SELECT a.seq, a.action, a.before, a.after, a.at, u.display_name AS actor
FROM audit_log a LEFT JOIN users u ON u.id = a.actor_user_id
WHERE a.object_kind = $1 AND a.object_id = $2
ORDER BY a.at DESC, a.id DESC LIMIT $3

-- name: chain_rows_after
-- A chain's rows after an anchored seq, for the anchorer (market/audit_anchors.py).
SELECT id, seq, actor_user_id, actor_org_id, action, object_kind, object_id, before, after,
       at, prev_hash, hash
FROM audit_log WHERE chain_org_id = $1 AND seq > $2 ORDER BY seq
