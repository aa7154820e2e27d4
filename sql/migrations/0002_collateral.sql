-- The banks' collateral registry (docs/rules.md §Collateral and monitoring): pledgors, IP assets, pledges, loans, CSV
-- imports and monitoring flags. Everything here belongs to one bank (bank_org_id) and
-- is only ever read through queries that name it: another bank's row is "not found".

CREATE TABLE pledgors (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bank_org_id bigint NOT NULL REFERENCES organisations (id),
    credit_code text NOT NULL CHECK (credit_code ~ '^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$'),
    name        text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    region      text NOT NULL DEFAULT '' CHECK (length(region) <= 60),  -- e.g. 四川省成都市
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    UNIQUE (bank_org_id, credit_code)
);

CREATE TABLE ip_assets (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bank_org_id          bigint NOT NULL REFERENCES organisations (id),
    pledgor_id           bigint NOT NULL REFERENCES pledgors (id),
    kind                 text NOT NULL CHECK (kind IN ('patent', 'trademark', 'software_copyright')),
    number               text NOT NULL,  -- normalised application / registration number
    title                text NOT NULL CHECK (length(btrim(title)) BETWEEN 1 AND 300),
    abstract             text NOT NULL DEFAULT '',
    -- patents: type and filing date give the term (invention 20 y; utility model 10 y;
    -- design 15 y if filed from 2021-06-01, else 10 y — 专利法 art. 42)
    patent_type          text CHECK (patent_type IN ('invention', 'utility_model', 'design')),
    filing_date          date,
    term_ends_on         date,
    ipc_codes            text[] NOT NULL DEFAULT '{}',
    annuity_paid_through date,
    -- trademarks: Nice classes 1–45 and validity
    nice_classes         integer[] NOT NULL DEFAULT '{}',
    valid_until          date,
    -- software copyrights
    registered_on        date,
    owners               text[] NOT NULL CHECK (cardinality(owners) >= 1),  -- owner, then co-owners
    legal_status         text NOT NULL CHECK (legal_status IN
                             ('pending', 'valid', 'lapsed', 'invalidated', 'expired')),
    licences             text NOT NULL DEFAULT '',  -- existing licences: licensee, kind, term
    encumbrances         text NOT NULL DEFAULT '',  -- other pledges, seizures, disputes
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    UNIQUE (bank_org_id, kind, number),
    CONSTRAINT patent_has_type CHECK (kind <> 'patent' OR (patent_type IS NOT NULL AND filing_date IS NOT NULL)),
    CONSTRAINT trademark_has_class CHECK (kind <> 'trademark' OR cardinality(nice_classes) >= 1)
);
CREATE INDEX ip_assets_pledgor ON ip_assets (pledgor_id);
CREATE INDEX ip_assets_annuity ON ip_assets (annuity_paid_through) WHERE kind = 'patent';

CREATE TABLE pledges (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bank_org_id        bigint NOT NULL REFERENCES organisations (id),
    registration_no    text NOT NULL CHECK (length(btrim(registration_no)) BETWEEN 1 AND 60),
    pledgor_id         bigint NOT NULL REFERENCES pledgors (id),
    secured_amount_fen bigint NOT NULL CHECK (secured_amount_fen > 0),
    registered_on      date,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    UNIQUE (bank_org_id, registration_no)
);

CREATE TABLE pledge_assets (
    pledge_id bigint NOT NULL REFERENCES pledges (id) ON DELETE CASCADE,
    asset_id  bigint NOT NULL REFERENCES ip_assets (id),
    PRIMARY KEY (pledge_id, asset_id)
);
CREATE INDEX pledge_assets_asset ON pledge_assets (asset_id);

CREATE TABLE loans (
    id                        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bank_org_id               bigint NOT NULL REFERENCES organisations (id),
    loan_no                   text NOT NULL CHECK (length(btrim(loan_no)) BETWEEN 1 AND 60),
    pledgor_id                bigint NOT NULL REFERENCES pledgors (id),
    pledge_id                 bigint REFERENCES pledges (id),
    principal_fen             bigint NOT NULL CHECK (principal_fen > 0),
    rate_bp                   integer NOT NULL CHECK (rate_bp BETWEEN 0 AND 10000),  -- annual, basis points
    outstanding_principal_fen bigint NOT NULL CHECK (outstanding_principal_fen >= 0),
    outstanding_interest_fen  bigint NOT NULL DEFAULT 0 CHECK (outstanding_interest_fen >= 0),
    disbursed_on              date,
    default_date              date,
    npl_class                 text CHECK (npl_class IN ('substandard', 'doubtful', 'loss')),
    pool_code                 text,  -- guarantee pool it is enrolled in (docs/rules.md §Guarantee pools)
    created_at                timestamptz NOT NULL,
    updated_at                timestamptz NOT NULL,
    UNIQUE (bank_org_id, loan_no),
    CONSTRAINT outstanding_within_principal CHECK (outstanding_principal_fen <= principal_fen)
);
CREATE INDEX loans_pledge ON loans (pledge_id);

-- A CSV upload and its fate. The file is kept (content, sha256) so an import can be
-- re-run or audited; progress counters are what the page polls.
CREATE TABLE collateral_imports (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bank_org_id    bigint NOT NULL REFERENCES organisations (id),
    uploaded_by    bigint NOT NULL REFERENCES users (id),
    filename       text NOT NULL,
    encoding       text,
    sha256         bytea NOT NULL CHECK (length(sha256) = 32),
    content        bytea NOT NULL,
    status         text NOT NULL CHECK (status IN ('queued', 'validating', 'writing', 'done', 'rejected', 'failed')),
    -- 'web': uploaded in the page, run by the worker (a stuck one is re-queued);
    -- 'api': run inside the request (a stuck one is marked failed, never re-run later).
    via            text NOT NULL DEFAULT 'web' CHECK (via IN ('web', 'api', 'demo')),
    total_rows     integer NOT NULL DEFAULT 0,
    processed_rows integer NOT NULL DEFAULT 0,    -- rows validated
    written_rows   integer NOT NULL DEFAULT 0,    -- rows copied into the write transaction
    error_count    integer NOT NULL DEFAULT 0,    -- all errors; `errors` keeps the first 200
    errors         jsonb NOT NULL DEFAULT '[]',   -- [{line, column, key, reason}]
    summary        jsonb NOT NULL DEFAULT '{}',   -- counts created / updated
    created_at     timestamptz NOT NULL,
    started_at     timestamptz,                   -- claimed by a run
    finished_at    timestamptz
);
CREATE INDEX collateral_imports_bank ON collateral_imports (bank_org_id, created_at DESC);
-- What the sweeper looks at: imports not yet finished.
CREATE INDEX collateral_imports_unfinished ON collateral_imports (created_at)
    WHERE status IN ('queued', 'validating', 'writing');

-- Monitoring signals (大数据监测): the daily job raises a flag once and resolves it when the
-- condition clears; the notification issue delivers them to the bank.
CREATE TABLE monitoring_flags (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bank_org_id bigint NOT NULL REFERENCES organisations (id),
    asset_id    bigint NOT NULL REFERENCES ip_assets (id),
    kind        text NOT NULL CHECK (kind IN ('annuity_due', 'annuity_grace', 'lapsed',
                                              'expiring', 'expired', 'invalidated')),
    detail      jsonb NOT NULL DEFAULT '{}',
    raised_at   timestamptz NOT NULL,
    resolved_at timestamptz
);
-- At most one open flag of a kind per asset: re-running the job raises nothing twice.
CREATE UNIQUE INDEX monitoring_flags_open ON monitoring_flags (asset_id, kind) WHERE resolved_at IS NULL;
CREATE INDEX monitoring_flags_bank ON monitoring_flags (bank_org_id) WHERE resolved_at IS NULL;
