-- A statement line that is no recovery the waterfall expects (bank interest, a payment for
-- something else, a duplicate to be sent back) is set aside by a person, with the reason:
-- it leaves the open exceptions without settling any payout, audited, and can still be
-- matched by hand later if it turns out to be one. `note` is the person's words, for a
-- set-aside line (required) and for a manual match (optional).
ALTER TABLE statement_lines DROP CONSTRAINT statement_lines_status_check;
ALTER TABLE statement_lines ADD CONSTRAINT statement_lines_status_check
    CHECK (status IN ('matched', 'amount_mismatch', 'reference_typo', 'unknown', 'manual',
                      'set_aside'));
ALTER TABLE statement_lines ADD COLUMN note text NOT NULL DEFAULT '';
ALTER TABLE statement_lines ADD CONSTRAINT statement_lines_set_aside_by_someone_for_a_reason
    CHECK (status <> 'set_aside'
           OR (payout_id IS NULL AND matched_by IS NOT NULL AND matched_at IS NOT NULL
               AND btrim(note) <> ''));
