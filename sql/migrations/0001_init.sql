-- Foundation: organisations (tenants), their users, API tokens and the audit log.
-- Times are written by the application from its injected clock (market/clock.py).

CREATE TABLE organisations (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('bank', 'buyer', 'pool', 'operator', 'acquirer')),
    name          text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    name_en       text CHECK (name_en IS NULL OR length(name_en) <= 200),
    -- 统一社会信用代码, GB 32100-2015; the check character is validated in market/validators.py.
    credit_code   text UNIQUE CHECK (credit_code ~ '^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$'),
    status        text NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'suspended')),
    status_reason text,
    decided_by    bigint,
    decided_at    timestamptz,
    created_at    timestamptz NOT NULL,
    -- Buyers take part only once an operator approved them, on the strength of their credit code.
    CONSTRAINT buyer_has_credit_code CHECK (kind <> 'buyer' OR credit_code IS NOT NULL)
);
CREATE INDEX organisations_pending ON organisations (created_at) WHERE status = 'pending';

CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id        bigint NOT NULL REFERENCES organisations (id),
    email         text NOT NULL CHECK (email = lower(email) AND email LIKE '%_@_%'),
    display_name  text NOT NULL CHECK (length(btrim(display_name)) BETWEEN 1 AND 100),
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('admin', 'member')),
    language      text NOT NULL DEFAULT 'zh' CHECK (language IN ('zh', 'en')),
    created_at    timestamptz NOT NULL,
    disabled_at   timestamptz
);
CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE INDEX users_org ON users (org_id);
ALTER TABLE organisations
    ADD CONSTRAINT organisations_decided_by_fkey FOREIGN KEY (decided_by) REFERENCES users (id);

-- Tokens for banks' systems. Only a SHA-256 of the secret is kept: the secret is 256 random
-- bits, so a slow password hash would add nothing but latency on every API call.
CREATE TABLE api_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id       bigint NOT NULL REFERENCES organisations (id),
    created_by   bigint NOT NULL REFERENCES users (id),
    name         text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 100),
    public_id    text NOT NULL UNIQUE CHECK (public_id ~ '^[a-z0-9]{12}$'),
    secret_sha256 bytea NOT NULL CHECK (length(secret_sha256) = 32),
    scopes       text[] NOT NULL CHECK (cardinality(scopes) > 0),
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz,
    revoked_by   bigint REFERENCES users (id)
);
CREATE INDEX api_tokens_org ON api_tokens (org_id);

-- Append-only audit log, one hash chain per organisation (chain 0: the exchange itself).
-- Each row stores the previous row's hash; market/audit.py computes and verifies them.
CREATE TABLE audit_log (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chain_org_id   bigint NOT NULL,
    seq            bigint NOT NULL CHECK (seq > 0),
    actor_user_id  bigint,
    actor_org_id   bigint,
    action         text NOT NULL,
    object_kind    text NOT NULL,
    object_id      text NOT NULL,
    before         jsonb,
    after          jsonb,
    at             timestamptz NOT NULL,
    prev_hash      bytea NOT NULL CHECK (length(prev_hash) = 32),
    hash           bytea NOT NULL CHECK (length(hash) = 32),
    UNIQUE (chain_org_id, seq)
);
CREATE INDEX audit_log_object ON audit_log (object_kind, object_id);

-- The head of each chain. Appending locks the head row, so appends to one chain are
-- serialised and seq has no gaps; a deleted last row shows as head ≠ last row.
CREATE TABLE audit_heads (
    chain_org_id bigint PRIMARY KEY,
    seq          bigint NOT NULL,
    hash         bytea NOT NULL
);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP;
END $$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
