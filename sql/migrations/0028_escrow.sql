-- Escrow until the title has moved (docs/rules.md §Transfer of title). A paid sale's money
-- stays in the exchange's clearing account while the pledge registration is released and
-- the transfer recorded; then the sale is `completed` (its price routed through the
-- waterfall) or, when a step fails or its deadline passes, `unwound` (the buyer refunded).
ALTER TABLE sales DROP CONSTRAINT sales_status_check;
ALTER TABLE sales ADD CONSTRAINT sales_status_check
    CHECK (status IN ('awaiting_payment', 'paid', 'completed', 'unwound', 'defaulted'));

-- One transfer per paid sale: its deadlines, as the policy set them at payment (a
-- rejected notice may move its step's deadline later), and how it ended.
CREATE TABLE transfers (
    sale_id         bigint PRIMARY KEY REFERENCES sales (id),
    status          text NOT NULL DEFAULT 'in_escrow'
                    CHECK (status IN ('in_escrow', 'completed', 'unwound')),
    opened_at       timestamptz NOT NULL,
    release_due_at  timestamptz NOT NULL,
    recordal_due_at timestamptz NOT NULL,
    check_due_at    timestamptz,  -- set once every notice is in, cleared by a rejection
    ended_at        timestamptz,
    cause           text CHECK (cause IN ('pledgor_dispute', 'lapsed_right', 'bank', 'buyer')),
    note            text NOT NULL DEFAULT '' CHECK (length(note) <= 1000),
    buyer_at_fault  boolean,
    ended_by        bigint REFERENCES users (id),
    CHECK ((status = 'in_escrow') = (ended_at IS NULL)),
    CHECK ((status = 'unwound') = (cause IS NOT NULL))
);
CREATE INDEX transfers_in_escrow ON transfers (release_due_at, recordal_due_at)
    WHERE status = 'in_escrow';

-- The notices the parties upload: the bank's 质押登记注销通知书, the buyer's recordal of
-- the transfer (one per kind of asset in the lot). One standing notice of a kind per sale;
-- a rejected one stays on record beside its replacement.
CREATE TABLE transfer_notices (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sale_id         bigint NOT NULL REFERENCES transfers (sale_id),
    kind            text NOT NULL CHECK (kind IN ('pledge_release', 'patent_recordal',
                                                  'trademark_assignment',
                                                  'software_registration')),
    number          text NOT NULL CHECK (length(number) BETWEEN 1 AND 40),
    issued_on       date NOT NULL,
    document_id     bigint NOT NULL REFERENCES case_documents (id),
    uploaded_by     bigint NOT NULL REFERENCES users (id),
    uploaded_org_id bigint NOT NULL REFERENCES organisations (id),
    uploaded_at     timestamptz NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'accepted', 'rejected')),
    decided_by      bigint REFERENCES users (id),
    decided_at      timestamptz,
    reason          text NOT NULL DEFAULT '' CHECK (length(reason) <= 1000)
);
CREATE UNIQUE INDEX transfer_notices_standing ON transfer_notices (sale_id, kind)
    WHERE status <> 'rejected';
