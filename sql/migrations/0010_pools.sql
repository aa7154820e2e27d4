-- Guarantee pools, compensation claims, the proceeds waterfall and reconciliation (docs/rules.md §Guarantee pools).
-- The rules themselves are data (a versioned JSON document per pool, validated by
-- market/pools/rules.py); the computations are pure functions over them; these tables hold
-- the facts: who is enrolled under which rule version, what was claimed and paid, every
-- receipt on a case and where each of its fen went, and the bank statements that prove
-- the money arrived.

-- A risk-compensation pool (风险补偿资金池), run by a pool organisation.
CREATE TABLE pools (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id      bigint NOT NULL REFERENCES organisations (id),
    code        text NOT NULL UNIQUE CHECK (code ~ '^[A-Z0-9][A-Z0-9-]{1,29}$'),
    name        text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    name_en     text CHECK (name_en IS NULL OR length(name_en) <= 200),
    capital_fen bigint NOT NULL CHECK (capital_fen >= 0),  -- the fund's size (Dongguan: CNY 1 bn)
    created_at  timestamptz NOT NULL
);
CREATE INDEX pools_org ON pools (org_id);

-- Rules are versioned and never edited: a loan keeps the version it was enrolled under.
CREATE TABLE pool_rule_versions (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pool_id        bigint NOT NULL REFERENCES pools (id),
    version        integer NOT NULL CHECK (version >= 1),
    rule           jsonb NOT NULL,
    effective_from date NOT NULL,
    note           text NOT NULL DEFAULT '',
    created_by     bigint REFERENCES users (id),
    created_at     timestamptz NOT NULL,
    UNIQUE (pool_id, version)
);

CREATE FUNCTION pool_rule_versions_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'pool rule versions are never edited (% on version %): add a new version',
        TG_OP, OLD.version;
END $$;
CREATE TRIGGER pool_rule_versions_frozen BEFORE UPDATE OR DELETE ON pool_rule_versions
    FOR EACH ROW EXECUTE FUNCTION pool_rule_versions_frozen();

-- A loan enrolled in a pool (备案). One pool per loan.
CREATE TABLE pool_enrolments (
    id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pool_id                bigint NOT NULL REFERENCES pools (id),
    rule_version_id        bigint NOT NULL REFERENCES pool_rule_versions (id),
    loan_id                bigint NOT NULL UNIQUE REFERENCES loans (id),
    bank_org_id            bigint NOT NULL REFERENCES organisations (id),
    enrolled_principal_fen bigint NOT NULL CHECK (enrolled_principal_fen > 0),
    renewal                boolean NOT NULL DEFAULT false,  -- 续贷: weighs 110 % under a fuse
    enrolled_on            date NOT NULL,
    created_by             bigint REFERENCES users (id),
    created_at             timestamptz NOT NULL
);
CREATE INDEX pool_enrolments_pool_bank ON pool_enrolments (pool_id, bank_org_id);

-- A bank's claim for compensation on a defaulted enrolled loan. The computation (amount and
-- its explanation) is kept as it was when filed and again when decided.
CREATE TABLE compensation_claims (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pool_id       bigint NOT NULL REFERENCES pools (id),
    enrolment_id  bigint NOT NULL REFERENCES pool_enrolments (id),
    loan_id       bigint NOT NULL REFERENCES loans (id),
    bank_org_id   bigint NOT NULL REFERENCES organisations (id),
    -- compensation: after the loss; advance: before write-off (Shanghai 前补偿);
    -- parked: into a guarantee deposit until write-off completes (Shanghai 保证金)
    timing        text NOT NULL CHECK (timing IN ('after_loss', 'advance', 'parked')),
    status        text NOT NULL CHECK (status IN ('filed', 'rejected', 'parked', 'paid')),
    loss_fen      bigint NOT NULL CHECK (loss_fen >= 0),      -- the basis the rule applies to
    amount_fen    bigint NOT NULL CHECK (amount_fen >= 0),    -- the pool's part, as computed
    explanation   jsonb NOT NULL,                              -- [{zh, en}] lines
    reason        text,                                        -- a rejection's reason
    filed_by      bigint NOT NULL REFERENCES users (id),
    filed_at      timestamptz NOT NULL,
    decided_by    bigint REFERENCES users (id),
    decided_at    timestamptz,
    paid_at       timestamptz
);
-- One undecided claim per loan: a double click cannot file twice.
CREATE UNIQUE INDEX compensation_claims_one_filed ON compensation_claims (loan_id)
    WHERE status = 'filed';
CREATE INDEX compensation_claims_pool ON compensation_claims (pool_id, status, filed_at DESC);

-- Who bears the loss under a paid claim: the pool, and the other parties of the rule
-- (insurer, evaluator, …) that paid their share alongside it. The bank's own share is what
-- is left of the claim; the waterfall returns recoveries to every row here and to the bank.
CREATE TABLE claim_shares (
    claim_id   bigint NOT NULL REFERENCES compensation_claims (id),
    position   smallint NOT NULL,
    party      text NOT NULL,          -- 'fund' (this pool) or the rule's party name
    org_id     bigint REFERENCES organisations (id),
    amount_fen bigint NOT NULL CHECK (amount_fen >= 0),
    PRIMARY KEY (claim_id, position)
);

-- Disposal costs advanced by someone (usually the bank): repaid first by the waterfall.
CREATE TABLE case_costs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id      bigint NOT NULL REFERENCES disposal_cases (id),
    kind         text NOT NULL CHECK (kind IN ('appraisal', 'auction', 'other')),
    payee_org_id bigint NOT NULL REFERENCES organisations (id),
    amount_fen   bigint NOT NULL CHECK (amount_fen > 0),
    memo         text NOT NULL DEFAULT '',
    recorded_by  bigint REFERENCES users (id),
    recorded_at  timestamptz NOT NULL
);
CREATE INDEX case_costs_case ON case_costs (case_id);

-- Money that came back on a case. `source` makes routing idempotent: the same sale,
-- forfeit or statement line can only ever be one receipt.
CREATE TABLE receipts (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id        bigint NOT NULL REFERENCES disposal_cases (id),
    kind           text NOT NULL CHECK (kind IN ('auction', 'fixed_price', 'forfeit',
                                                 'licence_fee', 'royalty', 'other')),
    source         text NOT NULL UNIQUE,     -- e.g. sale:12, forfeit:sale:12, licence:3:2026Q4
    amount_fen     bigint NOT NULL CHECK (amount_fen > 0),
    commission_fen bigint NOT NULL DEFAULT 0 CHECK (commission_fen >= 0 AND commission_fen <= amount_fen),
    lot_id         bigint REFERENCES lots (id),
    status         text NOT NULL CHECK (status IN ('routed', 'reversed')),
    entry_id       bigint NOT NULL REFERENCES ledger_entries (id),
    reversal_id    bigint REFERENCES ledger_entries (id),
    received_at    timestamptz NOT NULL,
    reversed_at    timestamptz
);
CREATE INDEX receipts_case ON receipts (case_id, received_at);

-- What one receipt owes one payee: the transfer the exchange makes, with the reference
-- written on it, that reconciliation later finds on the payee's bank statement.
CREATE TABLE payouts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    receipt_id   bigint NOT NULL REFERENCES receipts (id),
    case_id      bigint NOT NULL REFERENCES disposal_cases (id),
    payee_kind   text NOT NULL CHECK (payee_kind IN ('bank', 'pool', 'party', 'pledgor')),
    payee_org_id bigint REFERENCES organisations (id),
    pool_id      bigint REFERENCES pools (id),
    pledgor_id   bigint REFERENCES pledgors (id),
    party        text,
    amount_fen   bigint NOT NULL CHECK (amount_fen > 0),
    reference    text NOT NULL UNIQUE,
    status       text NOT NULL CHECK (status IN ('expected', 'received', 'reversed')),
    created_at   timestamptz NOT NULL,
    received_at  timestamptz,
    received_entry_id bigint REFERENCES ledger_entries (id)
);
CREATE INDEX payouts_receipt ON payouts (receipt_id);
CREATE INDEX payouts_payee_org ON payouts (payee_org_id, status);
CREATE INDEX payouts_pool ON payouts (pool_id, status);

-- Each fen of a receipt: the waterfall step, the payee and, for a claim step, which bearer.
CREATE TABLE distributions (
    receipt_id  bigint NOT NULL REFERENCES receipts (id),
    position    smallint NOT NULL,
    step        text NOT NULL CHECK (step IN ('commission', 'cost', 'claim_costs',
                                              'claim_interest', 'claim_principal', 'surplus')),
    payee_kind  text NOT NULL CHECK (payee_kind IN ('platform', 'bank', 'pool', 'party', 'pledgor')),
    payee_org_id bigint REFERENCES organisations (id),
    pool_id     bigint REFERENCES pools (id),
    claim_id    bigint REFERENCES compensation_claims (id),
    party       text,
    cost_id     bigint REFERENCES case_costs (id),
    payout_id   bigint REFERENCES payouts (id),
    amount_fen  bigint NOT NULL CHECK (amount_fen > 0),
    PRIMARY KEY (receipt_id, position)
);
CREATE INDEX distributions_claim ON distributions (claim_id) WHERE claim_id IS NOT NULL;
CREATE INDEX distributions_cost ON distributions (cost_id) WHERE cost_id IS NOT NULL;

-- A bank statement imported by a pool or a bank: the transfers it actually received.
CREATE TABLE statements (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id      bigint NOT NULL REFERENCES organisations (id),
    filename    text NOT NULL,
    sha256      bytea NOT NULL CHECK (length(sha256) = 32),
    line_count  integer NOT NULL,
    imported_by bigint NOT NULL REFERENCES users (id),
    imported_at timestamptz NOT NULL,
    UNIQUE (org_id, sha256)
);

CREATE TABLE statement_lines (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    statement_id bigint NOT NULL REFERENCES statements (id),
    org_id       bigint NOT NULL REFERENCES organisations (id),
    line_no      integer NOT NULL,
    value_date   date NOT NULL,
    amount_fen   bigint NOT NULL CHECK (amount_fen > 0),
    reference    text NOT NULL,
    counterparty text NOT NULL DEFAULT '',
    bank_txn_id  text,
    -- matched: reference, amount and date agree; the others wait for a person
    status       text NOT NULL CHECK (status IN ('matched', 'amount_mismatch', 'reference_typo',
                                                 'unknown', 'manual')),
    reason       text NOT NULL DEFAULT '',
    payout_id    bigint REFERENCES payouts (id),      -- matched (or manually matched) to
    candidate_id bigint REFERENCES payouts (id),      -- what it most likely was meant for
    matched_by   bigint REFERENCES users (id),
    matched_at   timestamptz,
    UNIQUE (statement_id, line_no)
);
-- A payout is received once: two statement lines can never both settle it.
CREATE UNIQUE INDEX statement_lines_one_per_payout ON statement_lines (payout_id)
    WHERE payout_id IS NOT NULL;
-- A transfer listed again in a later statement is the same transfer.
CREATE UNIQUE INDEX statement_lines_txn ON statement_lines (org_id, bank_txn_id)
    WHERE bank_txn_id IS NOT NULL;
CREATE INDEX statement_lines_open ON statement_lines (org_id, status)
    WHERE status IN ('amount_mismatch', 'reference_typo', 'unknown');

-- 核销: the bank wrote the loan off; a parked guarantee deposit is then paid out (Shanghai 保证金).
ALTER TABLE loans ADD COLUMN written_off_on date;
