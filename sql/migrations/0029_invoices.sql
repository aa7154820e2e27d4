-- Invoices of the exchange's fee on a sale (docs/rules.md §Invoices): each payer's
-- invoicing details (开票信息), the invoice requests a paid sale makes, the exports of
-- requests for the finance system, and the cancellations an unwound sale asks for.

-- 开票信息: one row per organisation, replaced when changed (the audit chain keeps the past).
CREATE TABLE invoice_details (
    org_id          bigint PRIMARY KEY REFERENCES organisations (id),
    invoice_type    text NOT NULL CHECK (invoice_type IN ('vat_special', 'vat_ordinary')),
    title           text NOT NULL CHECK (length(btrim(title)) BETWEEN 1 AND 200),   -- 发票抬头
    -- 纳税人识别号: the 18-character credit code, or an older 15- or 20-character number.
    taxpayer_number text CHECK (taxpayer_number ~ '^([0-9A-Z]{15}|[0-9A-Z]{18}|[0-9A-Z]{20})$'),
    address_phone   text CHECK (length(address_phone) BETWEEN 1 AND 200),           -- 地址、电话
    bank_account    text CHECK (length(bank_account) BETWEEN 1 AND 200),            -- 开户行及账号
    updated_by      bigint REFERENCES users (id),
    updated_at      timestamptz NOT NULL,
    -- A special invoice carries every field (增值税专用发票).
    CONSTRAINT special_invoice_complete CHECK (
        invoice_type <> 'vat_special'
        OR (taxpayer_number IS NOT NULL AND address_phone IS NOT NULL AND bank_account IS NOT NULL))
);

-- One export of invoice requests for the finance system: the CSV file as it was sent.
CREATE TABLE invoice_exports (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    period       text NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),  -- a Beijing month
    requests     integer NOT NULL CHECK (requests > 0),
    csv          bytea NOT NULL,
    sha256       bytea NOT NULL CHECK (length(sha256) = 32),
    created_by   bigint REFERENCES users (id),
    created_at   timestamptz NOT NULL
);

-- An invoice to issue (kind 'invoice': the fee of a paid sale) or to take back (kind
-- 'red_letter': a 红字发票 for an invoice already sent to the finance system, when the sale
-- was unwound). The payer's details, the amount and its tax are a snapshot: what the
-- finance system must print, whatever changes later.
CREATE TABLE invoice_requests (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sale_id         bigint NOT NULL REFERENCES sales (id),
    kind            text NOT NULL CHECK (kind IN ('invoice', 'red_letter')),
    cancels_id      bigint REFERENCES invoice_requests (id),
    payer_org_id    bigint NOT NULL REFERENCES organisations (id),
    fee_kind        text NOT NULL CHECK (fee_kind IN ('commission', 'buyer_premium')),
    invoice_type    text NOT NULL CHECK (invoice_type IN ('vat_special', 'vat_ordinary')),
    title           text NOT NULL,
    taxpayer_number text,
    address_phone   text,
    bank_account    text,
    amount_fen      bigint NOT NULL CHECK (amount_fen > 0),        -- 价税合计
    vat_rate_bp     integer NOT NULL CHECK (vat_rate_bp BETWEEN 0 AND 10000),
    tax_fen         bigint NOT NULL CHECK (tax_fen >= 0),
    net_fen         bigint NOT NULL CHECK (net_fen >= 0),
    status          text NOT NULL CHECK (status IN ('requested', 'exported', 'issued', 'cancelled')),
    export_id       bigint REFERENCES invoice_exports (id),
    invoice_number  text UNIQUE CHECK (invoice_number ~ '^([0-9]{8}|[0-9]{20})$'),
    invoice_date    date,
    reason          text,
    created_at      timestamptz NOT NULL,
    exported_at     timestamptz,
    issued_at       timestamptz,
    cancelled_at    timestamptz,
    -- One invoice and at most one red-letter request per sale: a second request is refused.
    UNIQUE (sale_id, kind),
    CHECK (net_fen + tax_fen = amount_fen),
    CHECK ((kind = 'red_letter') = (cancels_id IS NOT NULL)),
    CHECK ((status IN ('exported', 'issued')) = (export_id IS NOT NULL)),
    CHECK ((status = 'issued') = (invoice_number IS NOT NULL AND invoice_date IS NOT NULL))
);
CREATE INDEX invoice_requests_payer ON invoice_requests (payer_org_id, id DESC);
CREATE INDEX invoice_requests_to_export ON invoice_requests (created_at) WHERE status = 'requested';

-- A sale unwound: no invoice is made for it any more (invoices.requests.cancel_for_sale).
CREATE TABLE invoice_cancellations (
    sale_id      bigint PRIMARY KEY REFERENCES sales (id),
    reason       text NOT NULL CHECK (length(btrim(reason)) BETWEEN 1 AND 500),
    created_at   timestamptz NOT NULL
);
