-- Onboarding: organisations' documents, invitations, roles and deactivation
-- (market/accounts/onboarding.py, market/accounts/people.py).

-- name: insert_org_document
INSERT INTO organisation_documents (org_id, kind, filename, content_type, size_bytes, sha256,
                                    uploaded_by, uploaded_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
RETURNING id, kind, filename, content_type, size_bytes, sha256, uploaded_at

-- name: org_documents
SELECT id, kind, filename, content_type, size_bytes, sha256, uploaded_at
FROM organisation_documents WHERE org_id = $1 ORDER BY id

-- name: org_document
SELECT id, kind, filename, content_type, size_bytes, sha256, uploaded_at
FROM organisation_documents WHERE id = $1 AND org_id = $2

-- name: org_document_kinds
SELECT DISTINCT kind FROM organisation_documents WHERE org_id = $1

-- name: org_for_decision
-- The organisation to decide, locked, with what the decision needs.
SELECT id, kind, party_type, name, credit_code, status, status_reason
FROM organisations WHERE id = $1 FOR UPDATE

-- name: insert_organisation_decided
-- Tell the organisation's users (and its webhooks) how the exchange decided.
INSERT INTO outbox (event, recipient_org_id, payload, dedupe_key, created_at)
VALUES ('organisation_decided', $1,
        jsonb_build_object('org_id', $1::bigint, 'org_name', $2::text, 'status', $3::text,
                           'reason', $4::text),
        format('organisation_decided:%s:%s', $1::bigint, $3::text), $5)
ON CONFLICT (dedupe_key) DO NOTHING

-- name: revoke_open_invitations
UPDATE invitations SET revoked_at = $2
WHERE email = $1 AND accepted_at IS NULL AND revoked_at IS NULL
RETURNING id, org_id

-- name: insert_invitation
INSERT INTO invitations (org_id, email, role, language, nonce, invited_by, created_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
RETURNING id, org_id, email, role, language, created_at, expires_at, accepted_at, revoked_at

-- name: insert_invitation_event
-- The invitation e-mail: to an address, not yet a user, so no inbox (recipients.py).
INSERT INTO outbox (event, payload, dedupe_key, created_at)
SELECT 'invitation',
       jsonb_build_object('invitation_id', i.id, 'email', i.email, 'language', i.language,
                          'role', i.role, 'org_name', o.name, 'expires_at', i.expires_at,
                          'inviter', coalesce(u.display_name, o.name)),
       format('invitation:%s', i.id), $2
FROM invitations i
JOIN organisations o ON o.id = i.org_id
LEFT JOIN users u ON u.id = i.invited_by
WHERE i.id = $1
ON CONFLICT (dedupe_key) DO NOTHING

-- name: lock_invitation
SELECT i.id, i.org_id, i.email, i.role, i.language, i.nonce, i.created_at, i.expires_at,
       i.accepted_at, i.revoked_at, o.status AS org_status
FROM invitations i JOIN organisations o ON o.id = i.org_id
WHERE i.id = $1
FOR UPDATE OF i

-- name: invitation_nonce
SELECT nonce FROM invitations WHERE id = $1

-- name: accept_invitation
UPDATE invitations SET accepted_at = $2, user_id = $3 WHERE id = $1

-- name: org_invitations
SELECT id, org_id, email, role, language, created_at, expires_at, accepted_at, revoked_at
FROM invitations WHERE org_id = $1 ORDER BY id DESC LIMIT 200

-- name: revoke_invitation
UPDATE invitations SET revoked_at = $3
WHERE id = $1 AND org_id = $2 AND accepted_at IS NULL AND revoked_at IS NULL
RETURNING id, email

-- name: lock_admins
-- The organisation's active admins, locked: a demotion or deactivation that would leave
-- none waits for any other, then counts again.
SELECT id FROM users WHERE org_id = $1 AND role = 'admin' AND disabled_at IS NULL
ORDER BY id FOR UPDATE

-- name: org_user
SELECT id, email, display_name, role, language, created_at, disabled_at
FROM users WHERE id = $1 AND org_id = $2

-- name: user_role
SELECT role FROM users WHERE id = $1

-- name: set_role
UPDATE users SET role = $3 WHERE id = $1 AND org_id = $2

-- name: deactivate_user
UPDATE users SET disabled_at = $3, disabled_by = $4
WHERE id = $1 AND org_id = $2 AND disabled_at IS NULL
RETURNING id

-- name: revoke_user_tokens
-- A departed user's tokens stop with them: they answered for what the tokens did.
UPDATE api_tokens SET revoked_at = $2, revoked_by = $3
WHERE created_by = $1 AND revoked_at IS NULL
RETURNING id

-- name: operator_exists
-- Locks nothing: two racing bootstraps are decided by the advisory lock the command takes.
SELECT EXISTS (SELECT 1 FROM organisations WHERE kind = 'operator')

-- name: org_pools
-- The pools a pool manager organisation runs.
SELECT id, code, name FROM pools WHERE org_id = $1 ORDER BY id
