-- name: insert_org
INSERT INTO organisations (kind, name, name_en, credit_code, status, created_at, party_type,
                           id_number)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
RETURNING id, kind, name, party_type, credit_code, status, status_reason

-- name: insert_user
INSERT INTO users (org_id, email, display_name, password_hash, role, language, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING id

-- name: credit_code_taken
SELECT EXISTS (SELECT 1 FROM organisations WHERE credit_code = $1)

-- name: id_number_taken
SELECT EXISTS (SELECT 1 FROM organisations WHERE id_number = $1)

-- name: email_taken
SELECT EXISTS (SELECT 1 FROM users WHERE email = $1)

-- name: login_user
-- The password hash of an active user, by e-mail.
SELECT u.id, u.password_hash FROM users u WHERE u.email = $1 AND u.disabled_at IS NULL

-- name: viewer
-- A signed-in user with their organisation, for every web request.
SELECT u.id AS user_id, u.email, u.display_name, u.role, u.language,
       o.id AS org_id, o.kind AS org_kind, o.name AS org_name, o.status AS org_status
FROM users u JOIN organisations o ON o.id = u.org_id
WHERE u.id = $1 AND u.disabled_at IS NULL

-- name: set_language
UPDATE users SET language = $2 WHERE id = $1

-- name: org_by_id
SELECT id, kind, name, name_en, party_type, credit_code, status, status_reason, created_at,
       decided_at
FROM organisations WHERE id = $1

-- name: lock_org
SELECT id, kind, name, credit_code, status, status_reason FROM organisations WHERE id = $1 FOR UPDATE

-- name: decide_org
UPDATE organisations SET status = $2, status_reason = $3, decided_by = $4, decided_at = $5
WHERE id = $1
RETURNING id, kind, name, party_type, credit_code, status, status_reason

-- name: orgs_by_status
-- The operator's review queue, oldest first.
SELECT o.id, o.kind, o.name, o.party_type, o.credit_code, o.status, o.status_reason,
       o.created_at,
       (SELECT u.email FROM users u WHERE u.org_id = o.id ORDER BY u.id LIMIT 1) AS contact
FROM organisations o
WHERE o.status = ANY($1::text[])
ORDER BY o.created_at, o.id
LIMIT 200

-- name: org_users
SELECT id, email, display_name, role, language, created_at, disabled_at
FROM users WHERE org_id = $1 ORDER BY id

-- name: insert_token
INSERT INTO api_tokens (org_id, created_by, name, public_id, secret_sha256, scopes, created_at,
                        expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
RETURNING id, name, scopes, created_at, expires_at, revoked_at

-- name: org_tokens
SELECT id, name, scopes, created_at, expires_at, revoked_at, last_used_at
FROM api_tokens WHERE org_id = $1 ORDER BY id DESC

-- name: org_token
-- One token of the caller's organisation; another organisation's token is not found.
SELECT id, name, scopes, created_at, expires_at, revoked_at, last_used_at
FROM api_tokens WHERE id = $1 AND org_id = $2

-- name: revoke_token
UPDATE api_tokens SET revoked_at = $3, revoked_by = $4
WHERE id = $1 AND org_id = $2 AND revoked_at IS NULL
RETURNING id

-- name: token_for_auth
SELECT t.id, t.org_id, t.created_by, t.secret_sha256, t.scopes, t.expires_at, t.revoked_at,
       t.last_used_at, o.kind AS org_kind, o.status AS org_status, u.language
FROM api_tokens t JOIN organisations o ON o.id = t.org_id JOIN users u ON u.id = t.created_by
WHERE t.public_id = $1

-- name: touch_token
UPDATE api_tokens SET last_used_at = $2 WHERE id = $1

-- name: count_orgs
SELECT count(*) FROM organisations
