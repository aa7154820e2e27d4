-- The exchange's statement import (market/exchange_account/statement.py) settles a line by
-- its reference: a registration's deposit (transfer reference BZJ…) or a sale's balance
-- (payment reference JK…), besides a royalty item (royalty_payments.statement_line_id).
-- The line so matched — by the import or by the operator's hand — is the proof of the
-- deposit's confirmation or the sale's payment. A deposit or a balance arrives once: two
-- lines can never both settle one (the unique indexes back the registration's and the
-- sale's row locks).
ALTER TABLE statement_lines ADD COLUMN registration_id bigint REFERENCES registrations (id);
ALTER TABLE statement_lines ADD COLUMN sale_id bigint REFERENCES sales (id);
CREATE UNIQUE INDEX statement_lines_one_per_deposit ON statement_lines (registration_id)
    WHERE registration_id IS NOT NULL;
CREATE UNIQUE INDEX statement_lines_one_per_sale ON statement_lines (sale_id)
    WHERE sale_id IS NOT NULL;
ALTER TABLE statement_lines ADD CONSTRAINT statement_lines_settles_one_thing
    CHECK (num_nonnulls(payout_id, registration_id, sale_id) <= 1
           AND (status IN ('matched', 'manual')
                OR (registration_id IS NULL AND sale_id IS NULL)));
