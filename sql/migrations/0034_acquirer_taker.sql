-- An approved acquisition institution (an `acquirer` organisation) takes a case's assets at
-- the agreed price (docs/rules.md §Acquisition and pledge-to-equity): it accepts the bank's
-- proposal within its deadline, and when the pools' objection window has passed the
-- attempt becomes a sale to it of the case's failed lot, in the lot's current round, which
-- then goes through the after-the-hammer steps like any sale.

ALTER TABLE agreed_disposals
    ADD COLUMN lot_id      bigint REFERENCES lots (id),      -- the failed lot sold to the taker
    ADD COLUMN lot_round   smallint,                          -- its round when proposed
    ADD COLUMN accept_by   timestamptz,                       -- the taker's deadline to accept
    ADD COLUMN accepted_at timestamptz,
    ADD COLUMN accepted_by bigint REFERENCES users (id),
    ADD COLUMN sale_id     bigint REFERENCES sales (id);

ALTER TABLE agreed_disposals DROP CONSTRAINT agreed_disposals_status_check;
-- declined: the taker said no; lapsed: it did not accept in time, or the lot moved on.
ALTER TABLE agreed_disposals ADD CONSTRAINT agreed_disposals_status_check
    CHECK (status IN ('pending', 'objected', 'withdrawn', 'completed', 'declined', 'lapsed'));
ALTER TABLE agreed_disposals DROP CONSTRAINT completed_has_receipt;
-- The bank's own acquisition completes with its receipt; a taker's with its sale (the
-- receipt comes when the title has moved).
ALTER TABLE agreed_disposals ADD CONSTRAINT completed_has_receipt CHECK (
    (status = 'completed') = (receipt_id IS NOT NULL OR sale_id IS NOT NULL));
ALTER TABLE agreed_disposals ADD CONSTRAINT taker_sells_a_lot CHECK (
    taker_org_id = bank_org_id
    OR (kind = 'acquisition' AND lot_id IS NOT NULL AND lot_round IS NOT NULL
        AND accept_by IS NOT NULL));
ALTER TABLE agreed_disposals ADD CONSTRAINT accepted_by_someone CHECK (
    (accepted_at IS NULL) = (accepted_by IS NULL));

-- The taker's registration in the lot's round carries no deposit (it never bids): nothing
-- is held, so it is written as settled.
ALTER TABLE registrations DROP CONSTRAINT registrations_deposit_fen_check;
ALTER TABLE registrations ADD CONSTRAINT registrations_deposit_fen_check CHECK (
    deposit_fen > 0 OR (deposit_fen = 0 AND deposit_status = 'released'));
