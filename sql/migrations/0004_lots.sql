-- Lots: what a case puts up for sale, its terms and its lifecycle
-- (docs/rules.md §Lot terms, §Lot lifecycle).
-- The lifecycle rules live in market/lots/lifecycle.py (pure); this table stores where
-- each lot is. Every transition is also a row in lot_transitions and in the audit log.

CREATE TABLE lots (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id             bigint NOT NULL REFERENCES disposal_cases (id),
    bank_org_id         bigint NOT NULL REFERENCES organisations (id),
    reference           text NOT NULL UNIQUE,  -- e.g. LOT-2026-000123
    title               text NOT NULL CHECK (length(btrim(title)) BETWEEN 1 AND 300),
    description         text NOT NULL DEFAULT '',
    status              text NOT NULL CHECK (status IN ('draft', 'announced', 'bidding', 'sold',
                            'failed', 'paused', 'withdrawn', 'returned')),
    round               smallint NOT NULL DEFAULT 1 CHECK (round IN (1, 2, 3)),  -- 3: fixed-price sale (变卖)
    -- terms of the current round, validated by market/lots/terms.py; the full validated
    -- terms (fees, extension, pre-emptive holders…) are kept in `terms` as well
    valuation_fen       bigint NOT NULL CHECK (valuation_fen > 0),
    start_price_fen     bigint NOT NULL CHECK (start_price_fen > 0),
    deposit_fen         bigint NOT NULL CHECK (deposit_fen > 0),
    increment_fen       bigint NOT NULL CHECK (increment_fen > 0),
    first_start_fen     bigint NOT NULL CHECK (first_start_fen > 0),  -- round 1 start: bound for relists
    terms               jsonb NOT NULL,
    -- schedule of the current round
    announced_at        timestamptz,
    bidding_starts_at   timestamptz,
    bidding_ends_at     timestamptz,
    -- pause (中止): where it was, until when it may resume
    paused_from         text CHECK (paused_from IN ('announced', 'bidding')),
    paused_at           timestamptz,
    resume_by           timestamptz,
    status_reason       text NOT NULL DEFAULT '',
    -- catalogue fields, filled from the assets when the lot is saved (market/lots/search.py)
    region              text NOT NULL DEFAULT '',
    asset_kinds         text[] NOT NULL DEFAULT '{}',
    ipc_keys            text[] NOT NULL DEFAULT '{}',  -- every prefix of every IPC code
    search              tsvector NOT NULL DEFAULT ''::tsvector,  -- CJK bigrams + words
    current_price_fen   bigint,  -- the auction engine keeps this; NULL before any bid
    version             integer NOT NULL DEFAULT 1,  -- optimistic lock for the lot editor
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    published_at        timestamptz,
    CONSTRAINT deposit_below_start CHECK (deposit_fen < start_price_fen),
    CONSTRAINT schedule_in_order CHECK (bidding_starts_at IS NULL OR bidding_ends_at IS NULL
                                        OR bidding_starts_at < bidding_ends_at),
    CONSTRAINT paused_has_origin CHECK ((status = 'paused') = (paused_from IS NOT NULL))
);
CREATE INDEX lots_case ON lots (case_id);
CREATE INDEX lots_bank ON lots (bank_org_id, updated_at DESC);
-- the worker's timed transitions
CREATE INDEX lots_to_open ON lots (bidding_starts_at) WHERE status = 'announced';
CREATE INDEX lots_to_close ON lots (bidding_ends_at) WHERE status = 'bidding';
CREATE INDEX lots_paused ON lots (resume_by) WHERE status = 'paused';
-- the public catalogue: only published states are searched
CREATE INDEX lots_catalogue_search ON lots USING gin (search) WHERE status <> 'draft';
CREATE INDEX lots_catalogue_search_live ON lots USING gin (search) WHERE status IN ('announced', 'bidding');
CREATE INDEX lots_catalogue_ipc ON lots USING gin (ipc_keys) WHERE status <> 'draft';
CREATE INDEX lots_catalogue_ending ON lots (bidding_ends_at, id) WHERE status IN ('announced', 'bidding');
CREATE INDEX lots_catalogue_price ON lots ((coalesce(current_price_fen, start_price_fen)), id);
CREATE INDEX lots_catalogue_published ON lots (published_at DESC NULLS LAST, id DESC) WHERE status <> 'draft';
CREATE INDEX lots_catalogue_region ON lots (region text_pattern_ops) WHERE status <> 'draft';
CREATE INDEX lots_catalogue_closed ON lots (status, published_at DESC NULLS LAST, id DESC) WHERE status NOT IN ('draft', 'announced', 'bidding');

CREATE TABLE lot_assets (
    lot_id   bigint NOT NULL REFERENCES lots (id),
    asset_id bigint NOT NULL REFERENCES ip_assets (id),
    PRIMARY KEY (lot_id, asset_id)
);
CREATE INDEX lot_assets_asset ON lot_assets (asset_id);

-- 优先购买权人: pre-emptive right holders, by rank (1 first). org_id is set once the
-- holder has an account, so the auction engine can give them priority codes.
CREATE TABLE lot_preemptive_holders (
    lot_id      bigint NOT NULL REFERENCES lots (id),
    rank        smallint NOT NULL CHECK (rank >= 1),
    name        text NOT NULL,
    credit_code text,
    org_id      bigint REFERENCES organisations (id),
    PRIMARY KEY (lot_id, rank)
);

-- Each round's terms and outcome: the history behind "relisted at most 20 % lower".
CREATE TABLE lot_rounds (
    lot_id            bigint NOT NULL REFERENCES lots (id),
    round             smallint NOT NULL CHECK (round IN (1, 2, 3)),
    start_price_fen   bigint NOT NULL,
    announced_at      timestamptz,
    bidding_starts_at timestamptz,
    bidding_ends_at   timestamptz,
    outcome           text CHECK (outcome IN ('sold', 'failed', 'withdrawn')),
    closed_at         timestamptz,
    PRIMARY KEY (lot_id, round)
);

CREATE TABLE lot_transitions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lot_id      bigint NOT NULL REFERENCES lots (id),
    action      text NOT NULL,
    from_status text NOT NULL,
    to_status   text NOT NULL,
    round       smallint NOT NULL,
    reason      text NOT NULL DEFAULT '',
    actor_user_id bigint REFERENCES users (id),  -- NULL: the worker, on time
    at          timestamptz NOT NULL
);
CREATE INDEX lot_transitions_lot ON lot_transitions (lot_id, id);
