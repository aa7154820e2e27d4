-- The collateral registry (docs/rules.md §Collateral and monitoring). Every query of a bank's
-- data names bank_org_id.

-- name: lock_bank
-- Serialises writers of one bank's registry (imports, monitoring) until the transaction ends.
SELECT pg_advisory_xact_lock($1::int, $2::int)

-- ---------------------------------------------------------------------------------------
-- imports: the upload record and its progress
-- ---------------------------------------------------------------------------------------

-- name: insert_import
INSERT INTO collateral_imports (bank_org_id, uploaded_by, filename, sha256, content, status, via,
                                created_at, started_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
RETURNING id

-- name: claim_import
-- A queued import becomes this run's: a second run of the same job finds nothing to do.
UPDATE collateral_imports SET status = 'validating', started_at = $2
WHERE id = $1 AND status = 'queued'
RETURNING id, bank_org_id, uploaded_by, filename, content, via

-- name: import_progress
-- Written on its own connection while the import's transaction is still open.
UPDATE collateral_imports
SET status = $2, total_rows = $3, processed_rows = $4, written_rows = $5, encoding = $6
WHERE id = $1 AND status IN ('validating', 'writing')

-- name: reject_import
UPDATE collateral_imports
SET status = 'rejected', errors = $2, error_count = $3, total_rows = $4, processed_rows = $5,
    encoding = $6, finished_at = $7
WHERE id = $1

-- name: fail_import
-- $2: the problem (a code) the import page shows.
UPDATE collateral_imports
SET status = 'failed', errors = $2, error_count = 1, finished_at = $3
WHERE id = $1 AND status NOT IN ('done', 'rejected')

-- name: finish_import
-- In the write transaction: the import is done exactly when its rows are committed.
UPDATE collateral_imports
SET status = 'done', summary = $2, total_rows = $3, processed_rows = $3, written_rows = $3,
    encoding = $4, finished_at = $5
WHERE id = $1

-- name: get_import
SELECT id, filename, encoding, status, via, total_rows, processed_rows, written_rows, error_count,
       errors, summary, created_at, finished_at
FROM collateral_imports WHERE id = $2 AND bank_org_id = $1

-- name: recent_imports
SELECT id, filename, encoding, status, via, total_rows, processed_rows, written_rows, error_count,
       '[]'::jsonb AS errors, summary, created_at, finished_at
FROM collateral_imports WHERE bank_org_id = $1
ORDER BY created_at DESC, id DESC LIMIT $2

-- name: queued_imports
-- Uploads still waiting a minute after they were made: their job may have been lost.
SELECT id FROM collateral_imports
WHERE status = 'queued' AND via = 'web' AND created_at < $1
ORDER BY created_at LIMIT 500

-- name: requeue_stale_imports
-- A web import claimed but unfinished long after the job timeout died with its worker; its
-- transaction rolled back, so running it again from the start is safe.
UPDATE collateral_imports
SET status = 'queued', started_at = NULL, processed_rows = 0, written_rows = 0
WHERE status IN ('validating', 'writing') AND via = 'web' AND started_at < $1
RETURNING id

-- name: fail_stale_api_imports
-- An API (or demo) import runs inside the request that started it; one left unclaimed or
-- unfinished long after lost its request. $3: the problem (a code) the import page shows.
UPDATE collateral_imports
SET status = 'failed', finished_at = $2, errors = $3, error_count = 1
WHERE via <> 'web'
  AND ((status IN ('validating', 'writing') AND started_at < $1)
       OR (status = 'queued' AND created_at < $1))
RETURNING id

-- ---------------------------------------------------------------------------------------
-- the set-based write of a validated file (rows staged in the temp table by COPY)
-- ---------------------------------------------------------------------------------------

-- name: create_staging
CREATE TEMP TABLE collateral_import_rows (
    line                      integer NOT NULL,
    registration_no           text NOT NULL,
    pledge_registered_on      date,
    secured_amount_fen        bigint NOT NULL,
    pledgor_credit_code       text NOT NULL,
    pledgor_name              text NOT NULL,
    pledgor_region            text NOT NULL,
    loan_no                   text NOT NULL,
    principal_fen             bigint NOT NULL,
    rate_bp                   integer NOT NULL,
    outstanding_principal_fen bigint NOT NULL,
    outstanding_interest_fen  bigint NOT NULL,
    disbursed_on              date,
    default_date              date,
    npl_class                 text,
    pool_code                 text,
    kind                      text NOT NULL,
    number                    text NOT NULL,
    title                     text NOT NULL,
    abstract                  text NOT NULL,
    patent_type               text,
    filing_date               date,
    term_ends_on              date,
    ipc_codes                 text[] NOT NULL,
    annuity_paid_through      date,
    nice_classes              integer[] NOT NULL,
    valid_until               date,
    registered_on             date,
    owners                    text[] NOT NULL,
    legal_status              text NOT NULL,
    licences                  text NOT NULL,
    encumbrances              text NOT NULL
) ON COMMIT DROP

-- name: drop_staging
DROP TABLE IF EXISTS pg_temp.collateral_import_rows

-- name: analyze_staging
ANALYZE collateral_import_rows

-- name: existing_counts
-- How many of the file's keys the bank has already: those are updates, the rest creations.
SELECT
  (SELECT count(*) FROM pledgors p WHERE p.bank_org_id = $1
     AND p.credit_code IN (SELECT pledgor_credit_code FROM collateral_import_rows)) AS pledgors,
  (SELECT count(*) FROM ip_assets a WHERE a.bank_org_id = $1
     AND (a.kind, a.number) IN (SELECT kind, number FROM collateral_import_rows)) AS assets,
  (SELECT count(*) FROM pledges g WHERE g.bank_org_id = $1
     AND g.registration_no IN (SELECT registration_no FROM collateral_import_rows)) AS pledges,
  (SELECT count(*) FROM loans l WHERE l.bank_org_id = $1
     AND l.loan_no IN (SELECT loan_no FROM collateral_import_rows)) AS loans

-- name: upsert_pledgors
-- Rows of one key agree (checked before), so DISTINCT ON just picks one. Unchanged rows are
-- not rewritten.
INSERT INTO pledgors (bank_org_id, credit_code, name, region, created_at, updated_at)
SELECT DISTINCT ON (r.pledgor_credit_code) $1, r.pledgor_credit_code, r.pledgor_name,
       r.pledgor_region, $2::timestamptz, $2::timestamptz
FROM collateral_import_rows r
ORDER BY r.pledgor_credit_code, r.line
ON CONFLICT (bank_org_id, credit_code) DO UPDATE
SET name = EXCLUDED.name, region = EXCLUDED.region, updated_at = EXCLUDED.updated_at
WHERE (pledgors.name, pledgors.region) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.region)

-- name: upsert_assets
INSERT INTO ip_assets (bank_org_id, pledgor_id, kind, number, title, abstract, patent_type,
                       filing_date, term_ends_on, ipc_codes, annuity_paid_through, nice_classes,
                       valid_until, registered_on, owners, legal_status, licences, encumbrances,
                       created_at, updated_at)
SELECT DISTINCT ON (r.kind, r.number) $1, p.id, r.kind, r.number, r.title, r.abstract,
       r.patent_type, r.filing_date, r.term_ends_on, r.ipc_codes, r.annuity_paid_through,
       r.nice_classes, r.valid_until, r.registered_on, r.owners, r.legal_status, r.licences,
       r.encumbrances, $2::timestamptz, $2::timestamptz
FROM collateral_import_rows r
JOIN pledgors p ON p.bank_org_id = $1 AND p.credit_code = r.pledgor_credit_code
ORDER BY r.kind, r.number, r.line
ON CONFLICT (bank_org_id, kind, number) DO UPDATE
SET pledgor_id = EXCLUDED.pledgor_id, title = EXCLUDED.title, abstract = EXCLUDED.abstract,
    patent_type = EXCLUDED.patent_type, filing_date = EXCLUDED.filing_date,
    term_ends_on = EXCLUDED.term_ends_on, ipc_codes = EXCLUDED.ipc_codes,
    annuity_paid_through = EXCLUDED.annuity_paid_through, nice_classes = EXCLUDED.nice_classes,
    valid_until = EXCLUDED.valid_until, registered_on = EXCLUDED.registered_on,
    owners = EXCLUDED.owners, legal_status = EXCLUDED.legal_status,
    licences = EXCLUDED.licences, encumbrances = EXCLUDED.encumbrances,
    updated_at = EXCLUDED.updated_at
WHERE (ip_assets.pledgor_id, ip_assets.title, ip_assets.abstract, ip_assets.patent_type,
       ip_assets.filing_date, ip_assets.term_ends_on, ip_assets.ipc_codes,
       ip_assets.annuity_paid_through, ip_assets.nice_classes, ip_assets.valid_until,
       ip_assets.registered_on, ip_assets.owners, ip_assets.legal_status, ip_assets.licences,
       ip_assets.encumbrances)
   IS DISTINCT FROM
      (EXCLUDED.pledgor_id, EXCLUDED.title, EXCLUDED.abstract, EXCLUDED.patent_type,
       EXCLUDED.filing_date, EXCLUDED.term_ends_on, EXCLUDED.ipc_codes,
       EXCLUDED.annuity_paid_through, EXCLUDED.nice_classes, EXCLUDED.valid_until,
       EXCLUDED.registered_on, EXCLUDED.owners, EXCLUDED.legal_status, EXCLUDED.licences,
       EXCLUDED.encumbrances)

-- name: upsert_pledges
INSERT INTO pledges (bank_org_id, registration_no, pledgor_id, secured_amount_fen, registered_on,
                     created_at, updated_at)
SELECT DISTINCT ON (r.registration_no) $1, r.registration_no, p.id, r.secured_amount_fen,
       r.pledge_registered_on, $2::timestamptz, $2::timestamptz
FROM collateral_import_rows r
JOIN pledgors p ON p.bank_org_id = $1 AND p.credit_code = r.pledgor_credit_code
ORDER BY r.registration_no, r.line
ON CONFLICT (bank_org_id, registration_no) DO UPDATE
SET pledgor_id = EXCLUDED.pledgor_id, secured_amount_fen = EXCLUDED.secured_amount_fen,
    registered_on = EXCLUDED.registered_on, updated_at = EXCLUDED.updated_at
WHERE (pledges.pledgor_id, pledges.secured_amount_fen, pledges.registered_on)
   IS DISTINCT FROM (EXCLUDED.pledgor_id, EXCLUDED.secured_amount_fen, EXCLUDED.registered_on)

-- name: unlink_unlisted_assets
-- A re-uploaded pledge holds exactly the file's assets among those files brought: links
-- the file no longer lists go; an asset added by the single-asset form stays.
WITH wanted AS (
    SELECT g.id AS pledge_id, a.id AS asset_id
    FROM collateral_import_rows r
    JOIN pledges g ON g.bank_org_id = $1 AND g.registration_no = r.registration_no
    JOIN ip_assets a ON a.bank_org_id = $1 AND a.kind = r.kind AND a.number = r.number
)
DELETE FROM pledge_assets pa
WHERE pa.pledge_id IN (SELECT pledge_id FROM wanted)
  AND pa.source = 'csv'
  AND NOT EXISTS (
      SELECT 1 FROM wanted w WHERE w.pledge_id = pa.pledge_id AND w.asset_id = pa.asset_id)

-- name: link_assets
-- $2: 'csv' (a file: it holds every asset it lists from now on, one added by the form
-- too) or 'form' (one asset added: a link there already keeps its source).
INSERT INTO pledge_assets (pledge_id, asset_id, source)
SELECT g.id, a.id, $2
FROM collateral_import_rows r
JOIN pledges g ON g.bank_org_id = $1 AND g.registration_no = r.registration_no
JOIN ip_assets a ON a.bank_org_id = $1 AND a.kind = r.kind AND a.number = r.number
ON CONFLICT (pledge_id, asset_id) DO UPDATE SET source = 'csv' WHERE $2::text = 'csv'

-- name: form_assets_of_pledges
-- How many assets of the bank's pledges were added by the form (the upload page says a
-- file keeps them).
SELECT count(*) FROM pledge_assets pa JOIN pledges g ON g.id = pa.pledge_id
WHERE g.bank_org_id = $1 AND pa.source = 'form'

-- name: pledge_for_form
-- A pledge of the bank with its pledgor and loan, to fill in the single-asset form.
SELECT g.registration_no, g.registered_on, g.secured_amount_fen, p.name AS pledgor_name,
       p.credit_code, p.region, l.loan_no, l.principal_fen, l.rate_bp,
       l.outstanding_principal_fen, l.outstanding_interest_fen, l.disbursed_on,
       l.default_date, l.npl_class, l.pool_code
FROM pledges g
JOIN pledgors p ON p.id = g.pledgor_id
LEFT JOIN loans l ON l.pledge_id = g.id AND l.bank_org_id = g.bank_org_id
WHERE g.id = $2 AND g.bank_org_id = $1
ORDER BY l.id LIMIT 1

-- name: upsert_loans
INSERT INTO loans (bank_org_id, loan_no, pledgor_id, pledge_id, principal_fen, rate_bp,
                   outstanding_principal_fen, outstanding_interest_fen, disbursed_on,
                   default_date, npl_class, pool_code, created_at, updated_at)
SELECT DISTINCT ON (r.loan_no) $1, r.loan_no, p.id, g.id, r.principal_fen, r.rate_bp,
       r.outstanding_principal_fen, r.outstanding_interest_fen, r.disbursed_on, r.default_date,
       r.npl_class, r.pool_code, $2::timestamptz, $2::timestamptz
FROM collateral_import_rows r
JOIN pledgors p ON p.bank_org_id = $1 AND p.credit_code = r.pledgor_credit_code
JOIN pledges g ON g.bank_org_id = $1 AND g.registration_no = r.registration_no
ORDER BY r.loan_no, r.line
ON CONFLICT (bank_org_id, loan_no) DO UPDATE
SET pledgor_id = EXCLUDED.pledgor_id, pledge_id = EXCLUDED.pledge_id,
    principal_fen = EXCLUDED.principal_fen, rate_bp = EXCLUDED.rate_bp,
    outstanding_principal_fen = EXCLUDED.outstanding_principal_fen,
    outstanding_interest_fen = EXCLUDED.outstanding_interest_fen,
    disbursed_on = EXCLUDED.disbursed_on, default_date = EXCLUDED.default_date,
    npl_class = EXCLUDED.npl_class, pool_code = EXCLUDED.pool_code,
    updated_at = EXCLUDED.updated_at
WHERE (loans.pledgor_id, loans.pledge_id, loans.principal_fen, loans.rate_bp,
       loans.outstanding_principal_fen, loans.outstanding_interest_fen, loans.disbursed_on,
       loans.default_date, loans.npl_class, loans.pool_code)
   IS DISTINCT FROM
      (EXCLUDED.pledgor_id, EXCLUDED.pledge_id, EXCLUDED.principal_fen, EXCLUDED.rate_bp,
       EXCLUDED.outstanding_principal_fen, EXCLUDED.outstanding_interest_fen,
       EXCLUDED.disbursed_on, EXCLUDED.default_date, EXCLUDED.npl_class, EXCLUDED.pool_code)

-- ---------------------------------------------------------------------------------------
-- monitoring flags
-- ---------------------------------------------------------------------------------------

-- name: banks_with_assets
SELECT DISTINCT bank_org_id FROM ip_assets ORDER BY bank_org_id

-- name: monitor_assets
-- What assess() needs of every asset of a bank.
SELECT id, kind, legal_status, annuity_paid_through, term_ends_on, valid_until
FROM ip_assets WHERE bank_org_id = $1

-- name: open_flag_keys
SELECT asset_id, kind FROM monitoring_flags WHERE bank_org_id = $1 AND resolved_at IS NULL

-- name: raise_flags
-- The partial unique index lets a flag be open once per asset and kind.
INSERT INTO monitoring_flags (bank_org_id, asset_id, kind, detail, raised_at)
SELECT $1, f.asset_id, f.kind, f.detail::jsonb, $2
FROM unnest($3::bigint[], $4::text[], $5::text[]) AS f (asset_id, kind, detail)
ON CONFLICT (asset_id, kind) WHERE resolved_at IS NULL DO NOTHING

-- name: resolve_flags
UPDATE monitoring_flags m SET resolved_at = $2
FROM unnest($3::bigint[], $4::text[]) AS f (asset_id, kind)
WHERE m.bank_org_id = $1 AND m.resolved_at IS NULL AND m.asset_id = f.asset_id AND m.kind = f.kind

-- name: open_flags
SELECT id, asset_id, kind, detail, raised_at FROM monitoring_flags
WHERE bank_org_id = $1 AND asset_id = ANY($2::bigint[]) AND resolved_at IS NULL
ORDER BY asset_id, raised_at, id

-- name: asset_flag_history
SELECT id, kind, detail, raised_at, resolved_at FROM monitoring_flags
WHERE bank_org_id = $1 AND asset_id = $2
ORDER BY raised_at DESC, id DESC LIMIT 100

-- ---------------------------------------------------------------------------------------
-- reading the registry
-- ---------------------------------------------------------------------------------------

-- name: loan_with_pledgor
SELECT l.id, l.loan_no, l.principal_fen, l.rate_bp, l.outstanding_principal_fen,
       l.outstanding_interest_fen, l.disbursed_on, l.default_date, l.npl_class, l.pool_code,
       l.pledge_id, p.id AS pledgor_id, p.credit_code, p.name AS pledgor_name, p.region
FROM loans l JOIN pledgors p ON p.id = l.pledgor_id
WHERE l.bank_org_id = $1 AND l.id = $2

-- name: pledge_by_id
SELECT id, registration_no, registered_on, secured_amount_fen, pledgor_id
FROM pledges WHERE bank_org_id = $1 AND id = $2

-- name: pledge_assets
SELECT a.id, a.pledgor_id, a.kind, a.number, a.title, a.abstract, a.patent_type, a.filing_date,
       a.term_ends_on, a.ipc_codes, a.annuity_paid_through, a.nice_classes, a.valid_until,
       a.registered_on, a.owners, a.legal_status, a.licences, a.encumbrances
FROM pledge_assets pa JOIN ip_assets a ON a.id = pa.asset_id
WHERE a.bank_org_id = $1 AND pa.pledge_id = $2
ORDER BY a.kind, a.number

-- name: assets_by_ids
SELECT id, pledgor_id, kind, number, title, abstract, patent_type, filing_date, term_ends_on,
       ipc_codes, annuity_paid_through, nice_classes, valid_until, registered_on, owners,
       legal_status, licences, encumbrances
FROM ip_assets WHERE bank_org_id = $1 AND id = ANY($2::bigint[])

-- name: asset_pledges
-- The pledges an asset secures, with their loans.
SELECT g.id, g.registration_no, g.secured_amount_fen, l.id AS loan_id, l.loan_no,
       l.default_date, l.npl_class
FROM pledge_assets pa
JOIN pledges g ON g.id = pa.pledge_id
LEFT JOIN loans l ON l.pledge_id = g.id AND l.bank_org_id = $1
WHERE g.bank_org_id = $1 AND pa.asset_id = $2
ORDER BY g.registration_no

-- name: pledgor_by_id
SELECT id, credit_code, name, region FROM pledgors WHERE bank_org_id = $1 AND id = $2

-- name: overview_counts
SELECT
  (SELECT count(*) FROM pledgors WHERE bank_org_id = $1) AS pledgors,
  (SELECT count(*) FROM pledges WHERE bank_org_id = $1) AS pledges,
  (SELECT count(*) FROM loans WHERE bank_org_id = $1) AS loans,
  (SELECT count(*) FROM loans WHERE bank_org_id = $1 AND default_date IS NOT NULL) AS defaulted,
  (SELECT coalesce(sum(outstanding_principal_fen), 0)::bigint FROM loans WHERE bank_org_id = $1)
      AS outstanding_fen,
  (SELECT count(*) FROM ip_assets WHERE bank_org_id = $1 AND kind = 'patent') AS patents,
  (SELECT count(*) FROM ip_assets WHERE bank_org_id = $1 AND kind = 'trademark') AS trademarks,
  (SELECT count(*) FROM ip_assets WHERE bank_org_id = $1 AND kind = 'software_copyright')
      AS software,
  (SELECT count(*) FROM monitoring_flags WHERE bank_org_id = $1 AND resolved_at IS NULL)
      AS open_flags

-- name: pledge_page
-- The registry table: one row per pledge with its loan, defaulted loans first.
SELECT g.id, g.registration_no, g.registered_on, g.secured_amount_fen,
       p.name AS pledgor_name, p.credit_code,
       (SELECT count(*) FROM pledge_assets pa WHERE pa.pledge_id = g.id) AS asset_count,
       l.id AS loan_id, l.loan_no, l.principal_fen, l.outstanding_principal_fen,
       l.outstanding_interest_fen, l.rate_bp, l.default_date, l.npl_class, l.pool_code
FROM pledges g
JOIN pledgors p ON p.id = g.pledgor_id
LEFT JOIN loans l ON l.pledge_id = g.id AND l.bank_org_id = $1
WHERE g.bank_org_id = $1
ORDER BY (l.default_date IS NULL), g.registration_no, l.loan_no
LIMIT $2 OFFSET $3

-- name: asset_page
-- The assets table with the kinds of their open flags.
SELECT a.id, a.kind, a.number, a.title, a.patent_type, a.legal_status, a.term_ends_on,
       a.annuity_paid_through, a.valid_until, p.name AS pledgor_name,
       coalesce((SELECT array_agg(m.kind ORDER BY m.kind) FROM monitoring_flags m
                 WHERE m.asset_id = a.id AND m.resolved_at IS NULL), '{}') AS flags
FROM ip_assets a JOIN pledgors p ON p.id = a.pledgor_id
WHERE a.bank_org_id = $1
ORDER BY a.kind, a.number
LIMIT $2 OFFSET $3

-- name: count_assets
SELECT count(*) FROM ip_assets WHERE bank_org_id = $1

-- name: count_pledge_rows
SELECT count(*) FROM pledges g LEFT JOIN loans l ON l.pledge_id = g.id AND l.bank_org_id = $1
WHERE g.bank_org_id = $1
