-- The double-entry ledger (docs/rules.md §Money). Every movement of money
-- is an entry whose legs sum to zero — PostgreSQL itself refuses anything else — and each
-- entry is idempotent by its source: posting the same source twice is a no-op.
-- Sign convention: a leg's amount is a debit when positive, a credit when negative.

CREATE TABLE ledger_accounts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code         text NOT NULL UNIQUE,  -- e.g. exchange:clearing, deposit:reg:42, forfeit:lot:7
    kind         text NOT NULL CHECK (kind IN ('asset', 'liability', 'income', 'expense', 'equity')),
    name         text NOT NULL,
    owner_org_id bigint REFERENCES organisations (id),
    lot_id       bigint REFERENCES lots (id),
    created_at   timestamptz NOT NULL
);

CREATE TABLE ledger_entries (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_kind text NOT NULL,  -- what caused it: deposit_confirmed, deposit_released, …
    source_id   text NOT NULL,  -- which one: the idempotency key (TigerBeetle-style)
    memo        text NOT NULL DEFAULT '',
    reverses    bigint REFERENCES ledger_entries (id),  -- a reversal is a new entry, never an edit
    at          timestamptz NOT NULL,
    UNIQUE (source_kind, source_id)
);

CREATE TABLE ledger_legs (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entry_id   bigint NOT NULL REFERENCES ledger_entries (id),
    account_id bigint NOT NULL REFERENCES ledger_accounts (id),
    amount_fen bigint NOT NULL CHECK (amount_fen <> 0)
);
CREATE INDEX ledger_legs_entry ON ledger_legs (entry_id);
CREATE INDEX ledger_legs_account ON ledger_legs (account_id);

-- Checked at commit, when all legs of the entry are in: at least two legs, summing to zero.
CREATE FUNCTION ledger_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    total bigint;
    legs  integer;
BEGIN
    SELECT coalesce(sum(amount_fen), 0), count(*) INTO total, legs
    FROM ledger_legs WHERE entry_id = NEW.entry_id;
    IF total <> 0 OR legs < 2 THEN
        RAISE EXCEPTION 'ledger entry % is unbalanced: % legs summing to % fen',
            NEW.entry_id, legs, total USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER ledger_legs_balanced AFTER INSERT ON ledger_legs
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_entry_balanced();

CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only (% on %): post a reversal instead', TG_OP, TG_TABLE_NAME;
END $$;
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_legs_append_only BEFORE UPDATE OR DELETE ON ledger_legs
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
