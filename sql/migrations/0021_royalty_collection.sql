-- Collecting royalties (docs/rules.md §Licensing royalties, §Licence contracts): what the
-- schedule of 0019 needs to be paid, chased and audited.

-- A payment may use the licensee's credit (an audit that found the royalty overpaid): the
-- royalty and interest it settles are amount + credit. What the royalty part was is kept,
-- so a later audit of the period compares with what was paid.
ALTER TABLE royalty_payments ADD COLUMN credit_fen bigint NOT NULL DEFAULT 0
    CHECK (credit_fen >= 0);
ALTER TABLE royalty_payments ADD COLUMN kind text NOT NULL DEFAULT 'royalty'
    CHECK (kind IN ('royalty', 'licence_fee', 'adjustment'));
-- A statement line of the clearing account pays one period at most.
CREATE UNIQUE INDEX royalty_payments_one_per_line ON royalty_payments (statement_line_id)
    WHERE statement_line_id IS NOT NULL;
-- The bench and the operator read a contract's payments in order.
CREATE INDEX royalty_payments_contract ON royalty_payments (contract_id, paid_on);

-- An audit of a period already paid bills the difference separately (`billed_fen`, its
-- own payment period ADJ<id>, due `due_on`); a negative one is the licensee's credit.
ALTER TABLE royalty_adjustments ADD COLUMN billed_fen bigint NOT NULL DEFAULT 0;
ALTER TABLE royalty_adjustments ADD COLUMN due_on date;

-- Who ended the contract, for the audit trail and the pages.
ALTER TABLE licence_contracts ADD COLUMN terminated_by bigint REFERENCES users (id);
ALTER TABLE licence_contracts ADD COLUMN recorded_by bigint REFERENCES users (id);

-- Lists per party, newest first (the bank's and the licensee's exist since 0019).
CREATE INDEX licence_contracts_pledgor ON licence_contracts (pledgor_org_id, created_at DESC)
    WHERE pledgor_org_id IS NOT NULL;
CREATE INDEX licence_contracts_all ON licence_contracts (created_at DESC, id DESC);
-- The reminder job walks the contracts still running.
CREATE INDEX licence_contracts_running ON licence_contracts (id) WHERE status = 'active';
