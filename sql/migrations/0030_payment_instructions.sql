-- Payment instructions: every amount the exchange owes out (a released deposit, a refund, a
-- payout of the waterfall), the payee's settlement account, the payment files handed to the
-- exchange's bank and the outgoing lines of the clearing account's statement that prove them
-- paid (docs/rules.md §Payments out; docs/payment_file.md).

-- A payee's settlement account (收款账户): an organisation's (set by its admin), a pool's own
-- (set by its manager; otherwise the manager organisation's is used) or a pledgor registry
-- row's (set by the bank, used while the pledgor has no organisation of its own).
CREATE TABLE settlement_accounts (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_kind     text NOT NULL CHECK (owner_kind IN ('org', 'pool', 'pledgor')),
    owner_id       bigint NOT NULL,
    account_name   text NOT NULL CHECK (length(btrim(account_name)) BETWEEN 1 AND 100),
    account_number text NOT NULL CHECK (account_number ~ '^[0-9]{8,32}$'),
    bank_name      text NOT NULL CHECK (length(btrim(bank_name)) BETWEEN 2 AND 100),
    updated_by     bigint NOT NULL REFERENCES users (id),
    updated_at     timestamptz NOT NULL,
    UNIQUE (owner_kind, owner_id)
);

-- A value date of payment files; once closed, nothing more is exported for it.
CREATE TABLE payment_periods (
    value_date date PRIMARY KEY,
    closed_at  timestamptz,
    closed_by  bigint REFERENCES users (id),
    CHECK ((closed_at IS NULL) = (closed_by IS NULL))
);

CREATE TABLE payment_files (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    value_date  date NOT NULL REFERENCES payment_periods (value_date),
    line_count  integer NOT NULL CHECK (line_count > 0),
    total_fen   bigint NOT NULL CHECK (total_fen > 0),
    content     bytea NOT NULL,  -- the file exactly as handed out
    sha256      bytea NOT NULL CHECK (length(sha256) = 32),
    created_by  bigint NOT NULL REFERENCES users (id),
    created_at  timestamptz NOT NULL
);
CREATE INDEX payment_files_value_date ON payment_files (value_date, id);

CREATE TABLE payment_instructions (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source            text NOT NULL UNIQUE CHECK (length(source) BETWEEN 1 AND 100),
    purpose           text NOT NULL CHECK (purpose IN ('deposit_refund', 'sale_refund', 'payout')),
    payee_kind        text NOT NULL CHECK (payee_kind IN ('org', 'pool', 'pledgor', 'party')),
    payee_org_id      bigint REFERENCES organisations (id),
    pool_id           bigint REFERENCES pools (id),
    pledgor_id        bigint REFERENCES pledgors (id),
    party             text,
    payout_id         bigint UNIQUE REFERENCES payouts (id),
    amount_fen        bigint NOT NULL CHECK (amount_fen > 0),
    reference         text NOT NULL UNIQUE CHECK (reference ~ '^[A-Z0-9]{6,30}$'),
    due_at            timestamptz NOT NULL,
    status            text NOT NULL CHECK (status IN ('pending', 'in_file', 'paid', 'cancelled')),
    -- One file at a time: an instruction never goes out in two files.
    file_id           bigint REFERENCES payment_files (id),
    file_line         integer,
    paid_at           timestamptz,
    paid_statement_id bigint REFERENCES statements (id),
    paid_line_no      integer,
    paid_entry_id     bigint REFERENCES ledger_entries (id),
    cancelled_reason  text,
    created_at        timestamptz NOT NULL,
    CHECK (payee_kind <> 'org' OR payee_org_id IS NOT NULL),
    CHECK (payee_kind <> 'pool' OR pool_id IS NOT NULL),
    CHECK (payee_kind <> 'pledgor' OR pledgor_id IS NOT NULL),
    CHECK (payee_kind <> 'party' OR party IS NOT NULL),
    CHECK (status <> 'in_file' OR file_id IS NOT NULL),
    CHECK ((file_id IS NULL) = (file_line IS NULL)),
    CHECK ((status = 'paid') = (paid_at IS NOT NULL)),
    CHECK ((status = 'cancelled') = (cancelled_reason IS NOT NULL))
);
CREATE INDEX payment_instructions_pending ON payment_instructions (due_at, id)
    WHERE status = 'pending';
CREATE INDEX payment_instructions_payee_org ON payment_instructions (payee_org_id, created_at, id);
CREATE INDEX payment_instructions_pool ON payment_instructions (pool_id) WHERE pool_id IS NOT NULL;
CREATE INDEX payment_instructions_pledgor ON payment_instructions (pledgor_id)
    WHERE pledgor_id IS NOT NULL;
CREATE INDEX payment_instructions_file ON payment_instructions (file_id, file_line)
    WHERE file_id IS NOT NULL;

-- Money paid out of the exchange's clearing account, as its statement shows it.
CREATE TABLE outgoing_lines (
    statement_id   bigint NOT NULL REFERENCES statements (id),
    line_no        integer NOT NULL,
    org_id         bigint NOT NULL REFERENCES organisations (id),
    value_date     date NOT NULL,
    amount_fen     bigint NOT NULL CHECK (amount_fen > 0),
    reference      text NOT NULL,
    counterparty   text NOT NULL,
    bank_txn_id    text,
    status         text NOT NULL CHECK (status IN ('matched', 'amount_mismatch', 'unknown')),
    instruction_id bigint UNIQUE REFERENCES payment_instructions (id),
    created_at     timestamptz NOT NULL,
    PRIMARY KEY (statement_id, line_no),
    CHECK ((status = 'matched') = (instruction_id IS NOT NULL))
);
CREATE UNIQUE INDEX outgoing_lines_txn ON outgoing_lines (org_id, bank_txn_id)
    WHERE bank_txn_id IS NOT NULL;

-- Whom each instruction pays, by name, and the account it is paid to: a pool's own account,
-- else its manager organisation's; a pledgor's organisation's if it is onboarded (approved,
-- same credit code), else the one its bank recorded; an organisation's own. A party named in
-- a pool's rule with no organisation here has none.
CREATE VIEW payment_payees AS
SELECT i.id AS instruction_id,
       COALESCE(o.name, p.code, pl.name, i.party) AS payee_name,
       a.account_name, a.account_number, a.bank_name
FROM payment_instructions i
LEFT JOIN organisations o ON o.id = i.payee_org_id AND i.payee_kind = 'org'
LEFT JOIN pools p ON p.id = i.pool_id
LEFT JOIN pledgors pl ON pl.id = i.pledgor_id
LEFT JOIN LATERAL (
    SELECT po.id FROM organisations po
    WHERE po.kind = 'pledgor' AND po.status = 'approved' AND po.credit_code = pl.credit_code
) po ON true
LEFT JOIN LATERAL (
    SELECT s.account_name, s.account_number, s.bank_name
    FROM settlement_accounts s
    WHERE (s.owner_kind = 'org' AND s.owner_id = CASE i.payee_kind
                                                   WHEN 'org' THEN i.payee_org_id
                                                   WHEN 'pool' THEN p.org_id
                                                   WHEN 'pledgor' THEN po.id END)
       OR (s.owner_kind = 'pool' AND i.payee_kind = 'pool' AND s.owner_id = i.pool_id)
       OR (s.owner_kind = 'pledgor' AND i.payee_kind = 'pledgor' AND s.owner_id = i.pledgor_id)
    ORDER BY CASE s.owner_kind WHEN 'pool' THEN 0 WHEN 'org' THEN 1 ELSE 2 END
    LIMIT 1
) a ON true;

-- A pool's payouts as its figures count them (market/pools/dashboard.py): received once the
-- money left the exchange — the pool's own statement showed it, or the clearing account's
-- outgoing line did — at the instant the ledger moved it off the payable account
-- (docs/rules.md §Payments out).
CREATE VIEW pool_payouts_seen AS
SELECT p.id, p.receipt_id, p.case_id, p.pool_id, p.payee_kind, p.payee_org_id, p.party,
       p.amount_fen, p.reference, p.created_at,
       CASE WHEN p.status = 'expected' AND i.status = 'paid' THEN 'received'
            ELSE p.status END AS status,
       coalesce(i.paid_at, p.received_at) AS received_at
FROM payouts p
LEFT JOIN payment_instructions i ON i.payout_id = p.id
WHERE p.payee_kind = 'pool';
