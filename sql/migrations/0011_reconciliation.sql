-- Reconciliation (docs/rules.md §Reconciliation): the statement of one case lists its payouts.
CREATE INDEX payouts_case ON payouts (case_id, created_at);
