-- A short receipt (docs/rules.md §Reconciliation): a statement line a little less than the
-- payout it pays — bank charges deducted in transit are the usual cause — settles the
-- payout as received for the amount seen, and the difference stays outstanding here with
-- the reason the person gave. It is later settled by a further statement line of exactly
-- the amount outstanding, or written off with the reason; once, by one person.
CREATE TABLE payout_shortfalls (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payout_id       bigint NOT NULL UNIQUE REFERENCES payouts (id),
    org_id          bigint NOT NULL REFERENCES organisations (id),
    line_id         bigint NOT NULL UNIQUE REFERENCES statement_lines (id),  -- the short line
    expected_fen    bigint NOT NULL CHECK (expected_fen > 0),
    received_fen    bigint NOT NULL CHECK (received_fen > 0),
    shortfall_fen   bigint NOT NULL CHECK (shortfall_fen > 0),
    reason          text NOT NULL CHECK (reason IN ('bank_charges', 'short_paid', 'other')),
    note            text NOT NULL DEFAULT '',
    status          text NOT NULL DEFAULT 'outstanding'
                    CHECK (status IN ('outstanding', 'settled', 'written_off')),
    settled_line_id bigint UNIQUE REFERENCES statement_lines (id),
    closed_by       bigint REFERENCES users (id),
    closed_at       timestamptz,
    close_note      text NOT NULL DEFAULT '',
    created_by      bigint NOT NULL REFERENCES users (id),
    created_at      timestamptz NOT NULL,
    CHECK (received_fen + shortfall_fen = expected_fen),
    CHECK (reason <> 'other' OR btrim(note) <> ''),
    CHECK ((status = 'outstanding') = (closed_at IS NULL AND closed_by IS NULL)),
    CHECK ((status = 'settled') = (settled_line_id IS NOT NULL)),
    CHECK (status <> 'written_off' OR btrim(close_note) <> '')
);
CREATE INDEX payout_shortfalls_outstanding ON payout_shortfalls (org_id)
    WHERE status = 'outstanding';
