-- Reconciliation (issue 6 item 4): the statement of one case lists its payouts.
CREATE INDEX payouts_case ON payouts (case_id, created_at);
