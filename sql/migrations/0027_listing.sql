-- Exchange listing (挂牌, docs/rules.md §Listing): a lot listed at a price for a disclosure
-- period counted in working days. The lot row keeps its state (announced during the period,
-- `bidding_starts_at` = the period's end); these tables record what each period's end found
-- and the negotiated transfer (协议转让) that one qualified intent leads to.

-- Each end of a listing's period (a period extended ends again: one row per end).
CREATE TABLE listing_periods (
    lot_id      bigint NOT NULL REFERENCES lots (id),
    round       smallint NOT NULL,
    ends_at     timestamptz NOT NULL,
    outcome     text NOT NULL CHECK (outcome IN ('no_intent', 'negotiation', 'auction')),
    qualified   integer NOT NULL CHECK (qualified >= 0),  -- intents with a confirmed deposit
    extended_to timestamptz,                               -- set when the bank extended it
    PRIMARY KEY (lot_id, round, ends_at)
);

-- One qualified intent: the transfer at not less than the listing price, confirmed by the
-- buyer and then the bank by `confirm_by`, or lapsed.
CREATE TABLE listing_transfers (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lot_id             bigint NOT NULL REFERENCES lots (id),
    round              smallint NOT NULL,
    registration_id    bigint NOT NULL REFERENCES registrations (id),
    buyer_org_id       bigint NOT NULL REFERENCES organisations (id),
    listing_price_fen  bigint NOT NULL CHECK (listing_price_fen > 0),
    price_fen          bigint CHECK (price_fen >= listing_price_fen),  -- the buyer's, when it confirms
    confirm_by         timestamptz NOT NULL,
    buyer_confirmed_at timestamptz,
    buyer_confirmed_by bigint REFERENCES users (id),
    bank_confirmed_at  timestamptz,
    bank_confirmed_by  bigint REFERENCES users (id),
    status             text NOT NULL CHECK (status IN ('awaiting', 'transferred', 'lapsed')),
    sale_id            bigint REFERENCES sales (id),
    created_at         timestamptz NOT NULL,
    UNIQUE (lot_id, round),
    CONSTRAINT bank_after_buyer CHECK (bank_confirmed_at IS NULL OR buyer_confirmed_at IS NOT NULL),
    CONSTRAINT transferred_has_sale CHECK ((status = 'transferred') = (sale_id IS NOT NULL))
);
CREATE INDEX listing_transfers_due ON listing_transfers (confirm_by) WHERE status = 'awaiting';
