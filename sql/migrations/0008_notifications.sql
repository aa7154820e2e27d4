-- Notifications (docs/rules.md §Notifications). The outbox (0006) holds every event owed to someone, written
-- in the transaction of the change that caused it; here is what delivery needs: per-user
-- preferences, the in-app inbox, webhook endpoints, saved interests, and one delivery
-- record per (outbox row, channel, target) so a job that runs twice has one effect.

CREATE TABLE notification_preferences (
    user_id bigint NOT NULL REFERENCES users (id),
    event   text NOT NULL,
    channel text NOT NULL CHECK (channel IN ('inbox', 'email', 'webhook')),
    enabled boolean NOT NULL,
    PRIMARY KEY (user_id, event, channel)
);

CREATE TABLE webhook_endpoints (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id     bigint NOT NULL REFERENCES organisations (id),
    url        text NOT NULL CHECK (url ~ '^https?://'),
    format     text NOT NULL CHECK (format IN ('json', 'wecom', 'dingtalk')),
    secret     text NOT NULL,  -- HMAC-SHA256 key for the json format's signature
    events     text[] NOT NULL DEFAULT '{}',  -- empty: every event of the organisation
    active     boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL
);
CREATE INDEX webhook_endpoints_org ON webhook_endpoints (org_id) WHERE active;

-- 订阅: a buyer's saved interests; a published lot that matches is announced to them.
CREATE TABLE saved_interests (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users (id),
    ipc_prefixes  text[] NOT NULL DEFAULT '{}',
    keywords      text[] NOT NULL DEFAULT '{}',
    price_min_fen bigint CHECK (price_min_fen >= 0),
    price_max_fen bigint CHECK (price_max_fen >= 0),
    created_at    timestamptz NOT NULL
);
CREATE INDEX saved_interests_user ON saved_interests (user_id);

-- Who has been told what, on which channel: unique, so delivering twice is impossible.
CREATE TABLE deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    outbox_id       bigint NOT NULL REFERENCES outbox (id),
    channel         text NOT NULL CHECK (channel IN ('inbox', 'email', 'webhook')),
    target          text NOT NULL,  -- user id, e-mail address or webhook endpoint id
    status          text NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'skipped')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    last_error      text,
    sent_at         timestamptz,
    created_at      timestamptz NOT NULL,
    UNIQUE (outbox_id, channel, target)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_failed ON deliveries (created_at) WHERE status = 'failed';

CREATE TABLE inbox (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users (id),
    outbox_id  bigint NOT NULL REFERENCES outbox (id),
    event      text NOT NULL,
    title      text NOT NULL,
    body       text NOT NULL,
    lot_id     bigint REFERENCES lots (id),
    created_at timestamptz NOT NULL,
    read_at    timestamptz,
    UNIQUE (user_id, outbox_id)
);
CREATE INDEX inbox_unread ON inbox (user_id) WHERE read_at IS NULL;
