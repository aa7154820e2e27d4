-- Licence offers competing with the hammer (docs/rules.md §Licence offers and decision):
-- a round the bank decides for a licence ends 'licensed'.
ALTER TABLE lot_rounds DROP CONSTRAINT lot_rounds_outcome_check;
ALTER TABLE lot_rounds ADD CONSTRAINT lot_rounds_outcome_check
    CHECK (outcome IN ('sold', 'failed', 'withdrawn', 'licensed'));

-- The offers of one registration (deposits kept or released with them).
CREATE INDEX licence_offers_registration ON licence_offers (registration_id);
