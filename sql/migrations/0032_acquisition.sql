-- Disposal by agreement (docs/rules.md §Acquisition and pledge-to-equity): the bank, or an
-- approved acquisition institution, takes a case's assets at an agreed price (协议折价 /
-- 收储, Civil Code art. 436), or the bank converts its claim into equity of the borrower
-- (质权转股权) at an appraised value. Each attempt waits out the loss-bearing pools'
-- objection window, then completes (the timed sweep) unless a pool objected or the bank
-- withdrew it.

CREATE TABLE agreed_disposals (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id               bigint NOT NULL REFERENCES disposal_cases (id),
    bank_org_id           bigint NOT NULL REFERENCES organisations (id),
    kind                  text NOT NULL CHECK (kind IN ('acquisition', 'equity')),
    -- who takes the assets (or the shares): the bank itself, or an acquirer organisation
    taker_org_id          bigint NOT NULL REFERENCES organisations (id),
    amount_fen            bigint NOT NULL CHECK (amount_fen > 0),  -- agreed price / conversion value
    floor_fen             bigint NOT NULL CHECK (floor_fen >= 0),  -- the guard when proposed
    consent_document_id   bigint NOT NULL REFERENCES case_documents (id),
    -- pledge-to-equity: the appraisal of the equity and what the bank receives
    appraisal_document_id bigint REFERENCES case_documents (id),
    appraiser             text,
    report_no             text,
    appraised_fen         bigint CHECK (appraised_fen > 0),
    valued_on             date,
    appraisal_valid_until date,
    equity_shares         bigint CHECK (equity_shares > 0),
    equity_percent        numeric(7, 4) CHECK (equity_percent > 0 AND equity_percent <= 100),
    status                text NOT NULL CHECK (status IN ('pending', 'objected', 'withdrawn',
                                                          'completed')),
    objection_until       timestamptz NOT NULL,
    proposed_by           bigint NOT NULL REFERENCES users (id),
    proposed_at           timestamptz NOT NULL,
    ended_at              timestamptz,
    objected_org_id       bigint REFERENCES organisations (id),
    objected_by           bigint REFERENCES users (id),
    objection_reason      text,
    receipt_id            bigint REFERENCES receipts (id),
    -- the bank's debt to the other payees of the waterfall, and its settlement
    owed_fen              bigint CHECK (owed_fen >= 0),
    settlement_reference  text UNIQUE,
    settled_at            timestamptz,
    settled_line_id       bigint REFERENCES statement_lines (id),
    CONSTRAINT equity_is_appraised CHECK (kind <> 'equity' OR (appraised_fen IS NOT NULL
        AND valued_on IS NOT NULL AND equity_percent IS NOT NULL
        AND appraisal_document_id IS NOT NULL)),
    CONSTRAINT objection_has_reason CHECK ((status = 'objected') = (objection_reason IS NOT NULL)),
    CONSTRAINT completed_has_receipt CHECK ((status = 'completed') = (receipt_id IS NOT NULL)),
    CONSTRAINT ended_when_not_pending CHECK ((status = 'pending') = (ended_at IS NULL))
);
-- One attempt at a time on a case: two proposals at once give one.
CREATE UNIQUE INDEX agreed_disposals_one_pending ON agreed_disposals (case_id)
    WHERE status = 'pending';
CREATE INDEX agreed_disposals_due ON agreed_disposals (objection_until) WHERE status = 'pending';
CREATE INDEX agreed_disposals_case ON agreed_disposals (case_id, proposed_at);

-- The equity a case's bank holds in the borrower after a pledge-to-equity.
CREATE TABLE case_equity (
    disposal_id   bigint PRIMARY KEY REFERENCES agreed_disposals (id),
    case_id       bigint NOT NULL REFERENCES disposal_cases (id),
    holder_org_id bigint NOT NULL REFERENCES organisations (id),
    shares        bigint,
    percent       numeric(7, 4) NOT NULL,
    value_fen     bigint NOT NULL CHECK (value_fen > 0),
    acquired_on   date NOT NULL
);
CREATE INDEX case_equity_case ON case_equity (case_id);

ALTER TABLE receipts DROP CONSTRAINT receipts_kind_check;
ALTER TABLE receipts ADD CONSTRAINT receipts_kind_check CHECK (kind IN ('auction', 'fixed_price',
    'forfeit', 'licence_fee', 'royalty', 'other', 'acquisition', 'equity'));
