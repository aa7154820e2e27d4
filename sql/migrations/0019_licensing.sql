-- Licensing as a way out of a defaulted pledge (docs/rules.md §Licensing, §Licensing
-- royalties, §Open licence): licence offers competing with the hammer, the bank's decision
-- under the lot's announced rule, licence contracts with their royalty streams, and open
-- licences (开放许可) taken by notice.
--
-- The pledgor organisation (kind 'pledgor') is the borrower of the banks' registry rows in
-- `pledgors` with the same unified social credit code; it sees the cases of those loans.

-- A lot whose terms take licence offers waits, after its close, for the bank's decision
-- ('deciding'); a licence chosen ends it as 'licensed'.
ALTER TABLE lots DROP CONSTRAINT lots_status_check;
ALTER TABLE lots ADD CONSTRAINT lots_status_check CHECK (status IN ('draft', 'announced',
    'bidding', 'deciding', 'sold', 'licensed', 'failed', 'paused', 'withdrawn', 'returned'));
CREATE INDEX lots_deciding ON lots (id) WHERE status = 'deciding';

-- The pledgor's consent to license the pledged rights (民法典 art. 444: a pledged patent is
-- licensed only with the pledgor's and the pledgee's agreement). The bank's listing is its
-- own consent; the pledgor's is this row. A lot that takes licence offers is published only
-- once its case has one.
CREATE TABLE licensing_consents (
    case_id         bigint PRIMARY KEY REFERENCES disposal_cases (id),
    pledgor_org_id  bigint NOT NULL REFERENCES organisations (id),
    user_id         bigint NOT NULL REFERENCES users (id),
    consented_at    timestamptz NOT NULL
);

-- An offer on a lot: a licence of the lot's rights to the offeror, or a sale and licence
-- back to the pledgor. `terms` is the validated offer (market/licensing/value.py
-- LicenceOffer / SaleAndLicenceBack); the offeror holds a registration with its deposit.
CREATE TABLE licence_offers (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lot_id          bigint NOT NULL REFERENCES lots (id),
    round           smallint NOT NULL,
    registration_id bigint NOT NULL REFERENCES registrations (id),
    offeror_org_id  bigint NOT NULL REFERENCES organisations (id),
    user_id         bigint NOT NULL REFERENCES users (id),
    kind            text NOT NULL CHECK (kind IN ('licence', 'sale_and_licence_back')),
    licence_kind    text NOT NULL CHECK (licence_kind IN ('exclusive', 'sole', 'non_exclusive')),
    terms           jsonb NOT NULL,
    status          text NOT NULL CHECK (status IN ('submitted', 'withdrawn', 'chosen',
                                                    'not_chosen')),
    submitted_at    timestamptz NOT NULL,
    settled_at      timestamptz  -- withdrawn or decided
);
CREATE INDEX licence_offers_lot ON licence_offers (lot_id, round) WHERE status = 'submitted';
CREATE INDEX licence_offers_offeror ON licence_offers (offeror_org_id, submitted_at DESC);

-- The bank's decision on a lot that took offers: the hammer stands, or a licence set is
-- chosen, within `deadline_at` of the close; with the comparison it rested on.
CREATE TABLE licence_decisions (
    lot_id              bigint NOT NULL REFERENCES lots (id),
    round               smallint NOT NULL,
    status              text NOT NULL CHECK (status IN ('open', 'hammer_stands', 'licensed',
                                                        'nothing_chosen')),
    top_registration_id bigint REFERENCES registrations (id),
    top_price_fen       bigint CHECK (top_price_fen > 0),
    closed_at           timestamptz NOT NULL,
    deadline_at         timestamptz NOT NULL,
    chosen_offer_ids    bigint[] NOT NULL DEFAULT '{}',
    reason              text NOT NULL DEFAULT '',
    comparison          jsonb,
    decided_by          bigint REFERENCES users (id),  -- NULL: the deadline passed
    decided_at          timestamptz,
    PRIMARY KEY (lot_id, round),
    CONSTRAINT top_bid_whole CHECK ((top_registration_id IS NULL) = (top_price_fen IS NULL))
);
CREATE INDEX licence_decisions_due ON licence_decisions (deadline_at) WHERE status = 'open';

-- An open licence (开放许可, 专利法 arts. 50–52): the patentee, with the pledgee's consent,
-- declares through CNIPA a standing non-exclusive licence on published terms.
CREATE TABLE open_licences (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id           bigint NOT NULL REFERENCES disposal_cases (id),
    asset_id          bigint NOT NULL REFERENCES ip_assets (id),
    bank_org_id       bigint NOT NULL REFERENCES organisations (id),
    pledgor_org_id    bigint NOT NULL REFERENCES organisations (id),
    terms             jsonb NOT NULL,  -- the published royalty terms
    status            text NOT NULL CHECK (status IN ('proposed', 'declared', 'withdrawn')),
    bank_consented_at timestamptz,
    cnipa_number      text,
    declared_on       date,
    withdrawn_on      date,
    created_at        timestamptz NOT NULL
);
-- One standing declaration per patent.
CREATE UNIQUE INDEX open_licences_standing ON open_licences (asset_id)
    WHERE status IN ('proposed', 'declared');

-- A licence contract: a chosen offer or an open licence taken; its royalty terms
-- (market/licensing/royalties.py RoyaltyTerms) make its schedule.
CREATE TABLE licence_contracts (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reference           text NOT NULL UNIQUE,  -- XK-2026-000001, written on every payment
    case_id             bigint NOT NULL REFERENCES disposal_cases (id),
    bank_org_id         bigint NOT NULL REFERENCES organisations (id),
    lot_id              bigint REFERENCES lots (id),
    offer_id            bigint UNIQUE REFERENCES licence_offers (id),
    open_licence_id     bigint REFERENCES open_licences (id),
    licensee_org_id     bigint NOT NULL REFERENCES organisations (id),
    pledgor_org_id      bigint REFERENCES organisations (id),
    kind                text NOT NULL CHECK (kind IN ('exclusive', 'sole', 'non_exclusive')),
    field_of_use        text NOT NULL DEFAULT '',
    territory           text NOT NULL DEFAULT '',
    upfront_fen         bigint NOT NULL DEFAULT 0 CHECK (upfront_fen >= 0),
    terms               jsonb NOT NULL,
    status              text NOT NULL CHECK (status IN ('awaiting_acceptance', 'active',
                                                        'terminated', 'ended')),
    -- 专利实施许可合同备案: recorded with CNIPA within three months of signature
    recordal_due_on     date NOT NULL,
    recordal_number     text,
    recordal_document   bigint REFERENCES case_documents (id),
    recorded_on         date,
    terminated_at       timestamptz,
    termination_reason  text,
    cancellation_number text,  -- the recordal's cancellation after a termination
    cancelled_on        date,
    created_at          timestamptz NOT NULL,
    accepted_at         timestamptz,
    CONSTRAINT from_offer_or_open CHECK ((offer_id IS NULL) <> (open_licence_id IS NULL))
);
CREATE INDEX licence_contracts_case ON licence_contracts (case_id);
CREATE INDEX licence_contracts_licensee ON licence_contracts (licensee_org_id, created_at DESC);
CREATE INDEX licence_contracts_bank ON licence_contracts (bank_org_id, created_at DESC);
CREATE UNIQUE INDEX licence_contracts_one_taker ON licence_contracts (open_licence_id,
    licensee_org_id) WHERE open_licence_id IS NOT NULL AND status <> 'terminated';
CREATE SEQUENCE licence_contract_numbers OWNED BY licence_contracts.reference;

-- The licensee's report of a period's net sales, and what it makes due.
CREATE TABLE royalty_reports (
    contract_id    bigint NOT NULL REFERENCES licence_contracts (id),
    period         text NOT NULL,  -- 2027Q1, 2027H2, 2027
    net_sales_fen  bigint NOT NULL CHECK (net_sales_fen >= 0),
    units          bigint NOT NULL DEFAULT 0 CHECK (units >= 0),
    due_fen        bigint NOT NULL CHECK (due_fen >= 0),
    due_on         date NOT NULL,
    reported_by    bigint REFERENCES users (id),
    reported_at    timestamptz NOT NULL,
    PRIMARY KEY (contract_id, period)
);

-- A royalty payment received into the clearing account and routed once: the receipt's
-- source is royalty:<contract>:<period>, unique across receipts.
CREATE TABLE royalty_payments (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    contract_id    bigint NOT NULL REFERENCES licence_contracts (id),
    period         text NOT NULL,
    amount_fen     bigint NOT NULL CHECK (amount_fen > 0),
    interest_fen   bigint NOT NULL DEFAULT 0 CHECK (interest_fen >= 0),
    paid_on        date NOT NULL,
    receipt_id     bigint NOT NULL REFERENCES receipts (id),
    statement_line_id bigint REFERENCES statement_lines (id),
    created_at     timestamptz NOT NULL,
    UNIQUE (contract_id, period)
);

-- The bank's royalty audit: an adjustment of a reported period, with its reason.
CREATE TABLE royalty_adjustments (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    contract_id    bigint NOT NULL REFERENCES licence_contracts (id),
    period         text NOT NULL,
    net_sales_fen  bigint NOT NULL CHECK (net_sales_fen >= 0),  -- as the audit found them
    due_change_fen bigint NOT NULL,
    reason         text NOT NULL CHECK (length(btrim(reason)) BETWEEN 1 AND 1000),
    user_id        bigint NOT NULL REFERENCES users (id),
    created_at     timestamptz NOT NULL
);
CREATE INDEX royalty_adjustments_contract ON royalty_adjustments (contract_id, period);
