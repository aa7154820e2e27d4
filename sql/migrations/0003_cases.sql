-- Disposal cases (质物处置), their valuation and disclosure documents
-- (docs/rules.md §Disposal cases and valuation).

CREATE TABLE disposal_cases (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bank_org_id        bigint NOT NULL REFERENCES organisations (id),
    loan_id            bigint NOT NULL REFERENCES loans (id),
    reference          text NOT NULL UNIQUE,  -- e.g. CZ-2026-000123, shown to everyone
    status             text NOT NULL CHECK (status IN ('open', 'closed')),
    -- the creditor's claim (Civil Code order later: costs, interest, principal)
    claim_principal_fen bigint NOT NULL CHECK (claim_principal_fen >= 0),
    claim_interest_fen  bigint NOT NULL CHECK (claim_interest_fen >= 0),
    claim_costs_fen     bigint NOT NULL CHECK (claim_costs_fen >= 0),
    notes              text NOT NULL DEFAULT '',
    opened_by          bigint NOT NULL REFERENCES users (id),
    opened_at          timestamptz NOT NULL,
    updated_at         timestamptz,  -- last claim edit
    closed_at          timestamptz
);
-- One open case per loan: a second "open case" click cannot create a twin.
CREATE UNIQUE INDEX disposal_cases_open_loan ON disposal_cases (loan_id) WHERE status = 'open';
CREATE INDEX disposal_cases_bank ON disposal_cases (bank_org_id, opened_at DESC);
-- The NNNNNN of a case reference: one exchange-wide counter, so references never repeat.
CREATE SEQUENCE disposal_case_numbers OWNED BY disposal_cases.reference;

CREATE TABLE case_assets (
    case_id  bigint NOT NULL REFERENCES disposal_cases (id),
    asset_id bigint NOT NULL REFERENCES ip_assets (id),
    PRIMARY KEY (case_id, asset_id)
);
CREATE INDEX case_assets_asset ON case_assets (asset_id);

-- A valuation of the case's collateral: an appraisal (valid one year, 5-day objection
-- window) or an internal valuation in the spirit of GB/T 42748-2023 with its inputs and
-- a readable explanation. The newest one not superseded is the case's valuation.
CREATE TABLE valuations (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id         bigint NOT NULL REFERENCES disposal_cases (id),
    method          text NOT NULL CHECK (method IN ('appraisal', 'internal')),
    value_fen       bigint NOT NULL CHECK (value_fen > 0),
    valued_on       date NOT NULL,
    valid_until     date NOT NULL,
    objection_until date,
    appraiser       text,
    report_no       text,
    inputs          jsonb NOT NULL DEFAULT '{}',
    explanation     text NOT NULL DEFAULT '',
    created_by      bigint NOT NULL REFERENCES users (id),
    created_at      timestamptz NOT NULL,
    superseded_at   timestamptz,
    CONSTRAINT appraisal_names_appraiser CHECK (method <> 'appraisal' OR appraiser IS NOT NULL)
);
CREATE UNIQUE INDEX valuations_current ON valuations (case_id) WHERE superseded_at IS NULL;
CREATE INDEX valuations_history ON valuations (case_id, created_at DESC);

-- Document bytes, stored once per content (sha256) in PostgreSQL, the source of truth.
CREATE TABLE document_blobs (
    sha256     bytea PRIMARY KEY CHECK (length(sha256) = 32),
    content    bytea NOT NULL,
    size_bytes integer NOT NULL CHECK (size_bytes > 0)
);
-- PDFs, images and Office files are compressed already; stored uncompressed, a download
-- can read the bytes in slices (substring) without decompressing the whole value each time.
ALTER TABLE document_blobs ALTER COLUMN content SET STORAGE EXTERNAL;

CREATE TABLE case_documents (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id      bigint NOT NULL REFERENCES disposal_cases (id),
    item         text NOT NULL,  -- checklist item key (market/cases/checklist.py)
    filename     text NOT NULL CHECK (length(filename) BETWEEN 1 AND 200),
    content_type text NOT NULL,
    size_bytes   integer NOT NULL CHECK (size_bytes > 0),
    sha256       bytea NOT NULL REFERENCES document_blobs (sha256),
    public       boolean NOT NULL DEFAULT true,  -- shown on the published lot page
    uploaded_by  bigint NOT NULL REFERENCES users (id),
    uploaded_at  timestamptz NOT NULL,
    removed_at   timestamptz
);
CREATE INDEX case_documents_case ON case_documents (case_id) WHERE removed_at IS NULL;
