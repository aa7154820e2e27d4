-- The auction engine's records (docs/rules.md §Registration and deposits, §Bidding): who takes part and their deposits, the bids,
-- standing proxy maxima, idempotent bid requests, sales and their payment, defaulters'
-- bars, and the outbox of events owed to people (delivered by the notifications issue).

ALTER TABLE lots
    ADD COLUMN auction_kind text NOT NULL DEFAULT 'english'
        CHECK (auction_kind IN ('english', 'fixed_price', 'sealed')),
    ADD COLUMN leader_registration_id bigint,
    ADD COLUMN bid_count integer NOT NULL DEFAULT 0,
    ADD COLUMN auction_seq integer NOT NULL DEFAULT 0,  -- the engine's sequence: bids and proxies
    ADD COLUMN first_bid_at timestamptz;                -- opens a fixed-price sale's window
COMMENT ON COLUMN lots.bidding_ends_at IS 'the effective end: moved by extensions';

-- 报名: an approved buyer organisation takes part in one round of one lot.
CREATE TABLE registrations (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lot_id             bigint NOT NULL REFERENCES lots (id),
    round              smallint NOT NULL,
    buyer_org_id       bigint NOT NULL REFERENCES organisations (id),
    user_id            bigint NOT NULL REFERENCES users (id),
    bidder_code        text NOT NULL CHECK (bidder_code ~ '^[A-Z0-9]{4,8}$'),  -- anonymous until the close
    preemptive_rank    smallint CHECK (preemptive_rank >= 1),
    deposit_fen        bigint NOT NULL CHECK (deposit_fen > 0),
    -- The buyer writes this on its bank transfer; the operator (later: the statement
    -- matcher) confirms the deposit by it.
    transfer_reference text NOT NULL UNIQUE,
    deposit_status     text NOT NULL CHECK (deposit_status IN
                           ('awaiting', 'confirmed', 'released', 'applied', 'forfeited')),
    confirmed_at       timestamptz,
    confirmed_by       bigint REFERENCES users (id),
    settled_at         timestamptz,  -- when released, applied or forfeited: once
    created_at         timestamptz NOT NULL,
    UNIQUE (lot_id, round, buyer_org_id),
    UNIQUE (lot_id, round, bidder_code)
);
CREATE INDEX registrations_buyer ON registrations (buyer_org_id, created_at DESC);
CREATE INDEX registrations_awaiting ON registrations (created_at) WHERE deposit_status = 'awaiting';

-- Accepted bids only; refusals are answered and, for retries, remembered in bid_requests.
CREATE TABLE bids (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lot_id          bigint NOT NULL REFERENCES lots (id),
    round           smallint NOT NULL,
    seq             integer NOT NULL,
    registration_id bigint NOT NULL REFERENCES registrations (id),
    amount_fen      bigint NOT NULL CHECK (amount_fen > 0),
    kind            text NOT NULL CHECK (kind IN ('manual', 'proxy', 'match', 'sealed')),
    at              timestamptz NOT NULL,
    UNIQUE (lot_id, round, seq)
);

CREATE TABLE proxy_maxima (
    registration_id bigint PRIMARY KEY REFERENCES registrations (id),
    lot_id          bigint NOT NULL REFERENCES lots (id),
    max_fen         bigint NOT NULL CHECK (max_fen > 0),
    seq             integer NOT NULL,
    set_at          timestamptz NOT NULL
);

-- Idempotency-Key: a retried request gets the first answer; the same key with another
-- body is refused. Written in the same transaction as the bid it answers.
CREATE TABLE bid_requests (
    registration_id bigint NOT NULL REFERENCES registrations (id),
    idempotency_key text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    request_sha256  bytea NOT NULL,
    status_code     smallint NOT NULL,
    response        jsonb NOT NULL,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (registration_id, idempotency_key)
);

-- 成交: the sale of one round, its payment and its fate.
CREATE TABLE sales (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lot_id              bigint NOT NULL REFERENCES lots (id),
    round               smallint NOT NULL,
    registration_id     bigint NOT NULL REFERENCES registrations (id),
    buyer_org_id        bigint NOT NULL REFERENCES organisations (id),
    price_fen           bigint NOT NULL CHECK (price_fen > 0),
    fee_kind            text NOT NULL CHECK (fee_kind IN ('commission', 'buyer_premium')),
    fee_fen             bigint NOT NULL CHECK (fee_fen >= 0),
    deposit_fen         bigint NOT NULL CHECK (deposit_fen >= 0),
    balance_due_fen     bigint NOT NULL CHECK (balance_due_fen >= 0),
    due_at              timestamptz NOT NULL,
    payment_reference   text NOT NULL UNIQUE,
    status              text NOT NULL CHECK (status IN ('awaiting_payment', 'paid', 'defaulted')),
    paid_at             timestamptz,
    closed_at           timestamptz NOT NULL,
    UNIQUE (lot_id, round)
);
CREATE INDEX sales_due ON sales (due_at) WHERE status = 'awaiting_payment';

-- 悔拍: a winner who did not pay is barred from the relist of the same assets.
CREATE TABLE buyer_bars (
    buyer_org_id bigint NOT NULL REFERENCES organisations (id),
    asset_id     bigint NOT NULL REFERENCES ip_assets (id),
    sale_id      bigint NOT NULL REFERENCES sales (id),
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (buyer_org_id, asset_id)
);

-- Events somebody must hear about, written in the transaction of the change that caused
-- them. dedupe_key makes "the same event twice" impossible (e.g. won:sale:12).
CREATE TABLE outbox (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event             text NOT NULL,
    recipient_org_id  bigint REFERENCES organisations (id),
    recipient_user_id bigint REFERENCES users (id),
    lot_id            bigint REFERENCES lots (id),
    payload           jsonb NOT NULL DEFAULT '{}',
    dedupe_key        text NOT NULL UNIQUE,
    created_at        timestamptz NOT NULL,
    relayed_at        timestamptz
);
CREATE INDEX outbox_unrelayed ON outbox (id) WHERE relayed_at IS NULL;
