-- The API's lists (market/paging.py): each reads one page in a fixed (sort key, id) order,
-- after the cursor's (key, id) when there is one (NULL: the first page), and one row more
-- than the page holds (that row only says another page follows). Every list names the
-- caller's organisation in its WHERE: another organisation's rows never appear.

-- name: page_loans
-- The bank's loans by loan number. Filters: $2 defaulted (true/false), $3 NPL class,
-- $4 pool code; cursor $5/$6 (loan_no, id); $7 the rows to read.
SELECT l.id, l.loan_no, l.pledgor_id, p.name AS pledgor_name, l.pledge_id, l.principal_fen,
       l.rate_bp, l.outstanding_principal_fen, l.outstanding_interest_fen, l.disbursed_on,
       l.default_date, l.npl_class, l.pool_code,
       (SELECT c.id FROM disposal_cases c WHERE c.loan_id = l.id AND c.status = 'open')
           AS open_case_id
FROM loans l JOIN pledgors p ON p.id = l.pledgor_id
WHERE l.bank_org_id = $1
  AND ($2::boolean IS NULL OR (l.default_date IS NOT NULL) = $2)
  AND ($3::text IS NULL OR l.npl_class = $3)
  AND ($4::text IS NULL OR l.pool_code = $4)
  AND ($5::text IS NULL OR (l.loan_no, l.id) > ($5, $6::bigint))
ORDER BY l.loan_no, l.id
LIMIT $7

-- name: page_assets
-- The bank's pledged IP by number. Filters: $2 kind, $3 legal status, $4 with an open
-- monitoring flag (true/false); cursor $5/$6 (number, id); $7 the rows to read.
SELECT a.id, a.kind, a.number, a.title, a.patent_type, a.legal_status, a.term_ends_on,
       a.annuity_paid_through, a.valid_until, a.pledgor_id, p.name AS pledgor_name,
       coalesce((SELECT array_agg(m.kind ORDER BY m.kind) FROM monitoring_flags m
                 WHERE m.asset_id = a.id AND m.resolved_at IS NULL), '{}') AS flags
FROM ip_assets a JOIN pledgors p ON p.id = a.pledgor_id
WHERE a.bank_org_id = $1
  AND ($2::text IS NULL OR a.kind = $2)
  AND ($3::text IS NULL OR a.legal_status = $3)
  AND ($4::boolean IS NULL OR EXISTS (SELECT 1 FROM monitoring_flags m
                                      WHERE m.asset_id = a.id AND m.resolved_at IS NULL) = $4)
  AND ($5::text IS NULL OR (a.number, a.id) > ($5, $6::bigint))
ORDER BY a.number, a.id
LIMIT $7

-- name: page_cases
-- The bank's cases, newest first (disposal_cases_bank). Filters: $2 status, $3 loan;
-- cursor $4/$5 (opened_at, id); $6 the rows to read.
SELECT c.id, c.reference, c.status, c.loan_id, l.loan_no, p.name AS pledgor_name,
       c.claim_principal_fen + c.claim_interest_fen + c.claim_costs_fen AS claim_total_fen,
       v.value_fen AS valuation_fen, v.method AS valuation_method,
       v.valid_until AS valuation_valid_until, c.opened_at,
       ARRAY(SELECT DISTINCT a.kind FROM case_assets ca JOIN ip_assets a ON a.id = ca.asset_id
             WHERE ca.case_id = c.id) AS asset_kinds,
       ARRAY(SELECT DISTINCT d.item FROM case_documents d
             WHERE d.case_id = c.id AND d.removed_at IS NULL) AS items
FROM disposal_cases c
JOIN loans l ON l.id = c.loan_id
JOIN pledgors p ON p.id = l.pledgor_id
LEFT JOIN valuations v ON v.case_id = c.id AND v.superseded_at IS NULL
WHERE c.bank_org_id = $1
  AND ($2::text IS NULL OR c.status = $2)
  AND ($3::bigint IS NULL OR c.loan_id = $3)
  AND ($4::timestamptz IS NULL OR (c.opened_at, c.id) < ($4, $5::bigint))
ORDER BY c.opened_at DESC, c.id DESC
LIMIT $6

-- name: page_bank_lots
-- The bank's lots, newest first. Filters: $2 status, $3 case; cursor $4/$5 (created_at,
-- id); $6 the rows to read. An open sealed round's count is hidden from its bank too
-- (docs/rules.md §Bidding).
SELECT id, reference, case_id, title, status, round, auction_kind, valuation_fen,
       start_price_fen, deposit_fen, increment_fen, current_price_fen,
       CASE WHEN auction_kind = 'sealed' AND status IN ('announced', 'bidding') THEN NULL
            ELSE bid_count END AS bid_count,
       bidding_starts_at, bidding_ends_at, created_at, updated_at, published_at
FROM lots
WHERE bank_org_id = $1
  AND ($2::text IS NULL OR status = $2)
  AND ($3::bigint IS NULL OR case_id = $3)
  AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5::bigint))
ORDER BY created_at DESC, id DESC
LIMIT $6

-- name: page_registrations
-- The buyer organisation's registrations, newest first (registrations_buyer). Filters:
-- $2 deposit status, $3 lot reference; cursor $4/$5 (created_at, id); $6 rows to read.
SELECT r.id, r.lot_id, l.reference AS lot_reference, l.title AS lot_title, r.round,
       r.bidder_code, r.preemptive_rank, r.deposit_fen, r.transfer_reference, r.deposit_status,
       r.confirmed_at, r.settled_at, r.created_at
FROM registrations r JOIN lots l ON l.id = r.lot_id
WHERE r.buyer_org_id = $1
  AND ($2::text IS NULL OR r.deposit_status = $2)
  AND ($3::text IS NULL OR l.reference = $3)
  AND ($4::timestamptz IS NULL OR (r.created_at, r.id) < ($4, $5::bigint))
ORDER BY r.created_at DESC, r.id DESC
LIMIT $6

-- name: page_bids
-- The buyer organisation's own accepted bids, newest first. Filters: $2 lot reference,
-- $3 kind; cursor $4/$5 (at, id); $6 rows to read.
SELECT b.id, b.lot_id, l.reference AS lot_reference, b.round, b.seq, b.registration_id,
       r.bidder_code, b.amount_fen, b.kind, b.at
FROM registrations r
JOIN bids b ON b.registration_id = r.id AND b.lot_id = r.lot_id AND b.round = r.round
JOIN lots l ON l.id = b.lot_id
WHERE r.buyer_org_id = $1
  AND ($2::text IS NULL OR l.reference = $2)
  AND ($3::text IS NULL OR b.kind = $3)
  AND ($4::timestamptz IS NULL OR (b.at, b.id) < ($4, $5::bigint))
ORDER BY b.at DESC, b.id DESC
LIMIT $6

-- name: page_sales
-- The buyer organisation's sales (lots it won), newest first. Filters: $2 status;
-- cursor $3/$4 (closed_at, id); $5 rows to read.
SELECT s.id, s.lot_id, s.round, s.registration_id, s.buyer_org_id, s.price_fen, s.fee_kind,
       s.fee_fen, s.deposit_fen, s.balance_due_fen, s.due_at, s.payment_reference, s.status,
       s.paid_at, s.closed_at, l.reference AS lot_reference, l.title AS lot_title
FROM sales s JOIN lots l ON l.id = s.lot_id
WHERE s.buyer_org_id = $1
  AND ($2::text IS NULL OR s.status = $2)
  AND ($3::timestamptz IS NULL OR (s.closed_at, s.id) < ($3, $4::bigint))
ORDER BY s.closed_at DESC, s.id DESC
LIMIT $5

-- name: page_payment_instructions
-- What the buyer organisation must transfer now, oldest first: the deposit of each
-- registration for a round still open (announced or bidding) not yet received, and the
-- balance of each sale awaiting payment. Filters: $2 kind ('deposit' | 'balance');
-- cursor $3/$4/$5 (since, kind, id); $6 rows to read.
SELECT * FROM (
    SELECT 'deposit'::text AS kind, r.id, r.created_at AS since, r.id AS registration_id,
           NULL::bigint AS sale_id, l.id AS lot_id, l.reference AS lot_reference,
           l.title AS lot_title, r.deposit_fen AS amount_fen,
           r.transfer_reference AS reference, l.bidding_ends_at AS deadline
    FROM registrations r JOIN lots l ON l.id = r.lot_id
    WHERE r.buyer_org_id = $1 AND r.deposit_status = 'awaiting'
      AND l.round = r.round AND l.status IN ('announced', 'bidding')
    UNION ALL
    SELECT 'balance'::text, s.id, s.closed_at, s.registration_id, s.id, l.id, l.reference,
           l.title, s.balance_due_fen, s.payment_reference, s.due_at
    FROM sales s JOIN lots l ON l.id = s.lot_id
    WHERE s.buyer_org_id = $1 AND s.status = 'awaiting_payment' AND s.balance_due_fen > 0
) due
WHERE ($2::text IS NULL OR due.kind = $2)
  AND ($3::timestamptz IS NULL OR (due.since, due.kind, due.id) > ($3, $4::text, $5::bigint))
ORDER BY due.since, due.kind, due.id
LIMIT $6

-- name: buyer_balance
-- The buyer organisation's money with the exchange, by state (fen).
SELECT
  (SELECT coalesce(sum(r.deposit_fen), 0) FROM registrations r JOIN lots l ON l.id = r.lot_id
   WHERE r.buyer_org_id = $1 AND r.deposit_status = 'awaiting'
     AND l.round = r.round AND l.status IN ('announced', 'bidding'))::bigint
      AS deposits_to_pay_fen,
  (SELECT coalesce(sum(deposit_fen), 0) FROM registrations
   WHERE buyer_org_id = $1 AND deposit_status = 'confirmed')::bigint AS deposits_held_fen,
  (SELECT coalesce(sum(deposit_fen), 0) FROM registrations
   WHERE buyer_org_id = $1 AND deposit_status = 'applied')::bigint AS deposits_applied_fen,
  (SELECT coalesce(sum(deposit_fen), 0) FROM registrations
   WHERE buyer_org_id = $1 AND deposit_status = 'released')::bigint AS deposits_released_fen,
  (SELECT coalesce(sum(deposit_fen), 0) FROM registrations
   WHERE buyer_org_id = $1 AND deposit_status = 'forfeited')::bigint AS deposits_forfeited_fen,
  (SELECT coalesce(sum(balance_due_fen), 0) FROM sales
   WHERE buyer_org_id = $1 AND status = 'awaiting_payment')::bigint AS balances_due_fen,
  (SELECT coalesce(sum(balance_due_fen), 0) FROM sales
   WHERE buyer_org_id = $1 AND status = 'awaiting_payment' AND due_at < $2)::bigint
      AS balances_overdue_fen,
  (SELECT coalesce(sum(price_fen + CASE WHEN fee_kind = 'buyer_premium' THEN fee_fen ELSE 0 END), 0)
   FROM sales WHERE buyer_org_id = $1 AND status IN ('paid', 'completed'))::bigint AS paid_fen

-- name: page_bank_claims
-- The bank's compensation claims, newest first. Filters: $2 status, $3 loan, $4 pool
-- code; cursor $5/$6 (filed_at, id); $7 rows to read.
SELECT cl.id, cl.loan_id, cl.pool_id, p.code AS pool_code, cl.timing, cl.status, cl.loss_fen,
       cl.amount_fen, cl.explanation, cl.reason, cl.filed_at, cl.decided_at, cl.paid_at,
       l.loan_no
FROM compensation_claims cl
JOIN pools p ON p.id = cl.pool_id
JOIN loans l ON l.id = cl.loan_id
WHERE cl.bank_org_id = $1
  AND ($2::text IS NULL OR cl.status = $2)
  AND ($3::bigint IS NULL OR cl.loan_id = $3)
  AND ($4::text IS NULL OR p.code = $4)
  AND ($5::timestamptz IS NULL OR (cl.filed_at, cl.id) < ($5, $6::bigint))
ORDER BY cl.filed_at DESC, cl.id DESC
LIMIT $7

-- name: page_pool_claims
-- Claims on the pools the organisation runs, newest first. Filters: $2 pool, $3 status,
-- $4 bank; cursor $5/$6 (filed_at, id); $7 rows to read.
SELECT c.id, c.pool_id, c.enrolment_id, c.loan_id, c.bank_org_id, c.timing, c.status,
       c.loss_fen, c.amount_fen, c.explanation, c.reason, c.filed_at, c.decided_at, c.paid_at,
       p.code AS pool_code, o.name AS bank_name, l.loan_no, v.version AS rule_version,
       fu.display_name AS filed_by_name, du.display_name AS decided_by_name
FROM compensation_claims c
JOIN pools p ON p.id = c.pool_id
JOIN organisations o ON o.id = c.bank_org_id
JOIN loans l ON l.id = c.loan_id
JOIN pool_enrolments e ON e.id = c.enrolment_id
JOIN pool_rule_versions v ON v.id = e.rule_version_id
JOIN users fu ON fu.id = c.filed_by
LEFT JOIN users du ON du.id = c.decided_by
WHERE p.org_id = $1
  AND ($2::bigint IS NULL OR c.pool_id = $2)
  AND ($3::text IS NULL OR c.status = $3)
  AND ($4::bigint IS NULL OR c.bank_org_id = $4)
  AND ($5::timestamptz IS NULL OR (c.filed_at, c.id) < ($5, $6::bigint))
ORDER BY c.filed_at DESC, c.id DESC
LIMIT $7

-- name: page_payouts
-- The organisation's own payouts (what the waterfall owes it: a bank's or a party's, a
-- pool's for the pools it runs), oldest first, as reconciliation.payout_rows shows them.
-- Filters: $2 status, $3 case; cursor $4/$5 (created_at, id); $6 rows to read.
SELECT p.id, p.reference, p.amount_fen, p.status, p.payee_kind, p.party, p.pool_id,
       p.created_at, p.received_at, p.case_id,
       cs.reference AS case_reference, r.kind AS receipt_kind,
       po.code AS pool_code, o.name AS payee_org_name, pl.name AS pledgor_name,
       sl.id AS line_id, sl.statement_id, sl.line_no, sl.value_date, sl.status AS line_status
FROM payouts p
JOIN receipts r ON r.id = p.receipt_id
JOIN disposal_cases cs ON cs.id = p.case_id
LEFT JOIN pools po ON po.id = p.pool_id
LEFT JOIN organisations o ON o.id = p.payee_org_id
LEFT JOIN pledgors pl ON pl.id = p.pledgor_id
LEFT JOIN statement_lines sl ON sl.payout_id = p.id AND sl.org_id = $1
WHERE p.payee_org_id = $1 AND p.payee_kind <> 'pledgor'
  AND (p.payee_kind <> 'pool' OR p.pool_id IN (SELECT id FROM pools WHERE org_id = $1))
  AND ($2::text IS NULL OR p.status = $2)
  AND ($3::bigint IS NULL OR p.case_id = $3)
  AND ($4::timestamptz IS NULL OR (p.created_at, p.id) > ($4, $5::bigint))
ORDER BY p.created_at, p.id
LIMIT $6

-- name: page_statements
-- The organisation's bank statements, newest first, with counts by outcome. Filters:
-- $2 with open lines (true/false); cursor $3/$4 (imported_at, id); $5 rows to read.
SELECT * FROM (
    SELECT s.id, s.filename, s.line_count, s.imported_at, u.display_name AS imported_by_name,
           count(l.id)::int AS lines,
           count(l.id) FILTER (WHERE l.status = 'matched')::int AS matched,
           count(l.id) FILTER (WHERE l.status = 'manual')::int AS manual,
           count(l.id) FILTER (WHERE l.status = 'set_aside')::int AS set_aside,
           count(l.id) FILTER (WHERE l.status IN ('amount_mismatch', 'reference_typo',
                                                  'unknown'))::int AS open
    FROM statements s
    JOIN users u ON u.id = s.imported_by
    LEFT JOIN statement_lines l ON l.statement_id = s.id
    WHERE s.org_id = $1
      AND ($3::timestamptz IS NULL OR (s.imported_at, s.id) < ($3, $4::bigint))
    GROUP BY s.id, u.display_name
) st
WHERE ($2::boolean IS NULL OR (st.open > 0) = $2)
ORDER BY st.imported_at DESC, st.id DESC
LIMIT $5

-- name: page_notifications
-- One user's messages, newest first. Filters: $2 unread only, $3 event; cursor $4/$5
-- (created_at, id); $6 rows to read.
SELECT i.id, i.event, i.title, i.body, i.lot_id, l.reference AS lot_reference,
       i.created_at, i.read_at
FROM inbox i LEFT JOIN lots l ON l.id = i.lot_id
WHERE i.user_id = $1
  AND (NOT $2 OR i.read_at IS NULL)
  AND ($3::text IS NULL OR i.event = $3)
  AND ($4::timestamptz IS NULL OR (i.created_at, i.id) < ($4, $5::bigint))
ORDER BY i.created_at DESC, i.id DESC
LIMIT $6

-- name: page_tokens
-- The organisation's API tokens, newest first. Filters: $2 active (neither revoked nor
-- expired at $3); cursor $4/$5 (created_at, id); $6 rows to read.
SELECT id, name, scopes, created_at, expires_at, revoked_at, last_used_at
FROM api_tokens
WHERE org_id = $1
  AND ($2::boolean IS NULL
       OR (revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $3)) = $2)
  AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5::bigint))
ORDER BY created_at DESC, id DESC
LIMIT $6

-- name: token_scopes
-- The scopes and expiry of the token a command is run through.
SELECT scopes, expires_at FROM api_tokens WHERE id = $1

-- name: import_asset_ids
-- The bank's assets a staged import file names (collateral_import_rows).
SELECT a.id FROM ip_assets a
WHERE a.bank_org_id = $1 AND (a.kind, a.number) IN (SELECT kind, number FROM collateral_import_rows)
ORDER BY a.id

-- name: import_loan_ids
-- The bank's loans a staged import file names (collateral_import_rows).
SELECT l.id FROM loans l
WHERE l.bank_org_id = $1 AND l.loan_no IN (SELECT loan_no FROM collateral_import_rows)
ORDER BY l.id

-- name: page_imports
-- The bank's portfolio uploads, newest first. Filters: $2 status; cursor $3/$4
-- (created_at, id); $5 rows to read.
SELECT id, filename, encoding, status, via, total_rows, processed_rows, written_rows,
       error_count, summary, created_at, finished_at
FROM collateral_imports
WHERE bank_org_id = $1
  AND ($2::text IS NULL OR status = $2)
  AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4::bigint))
ORDER BY created_at DESC, id DESC
LIMIT $5
