-- Onboarding: every kind of organisation, people as buyers, roles inside an organisation,
-- invitations, the documents an approval rests on, and the bidding agreement's versions
-- (docs/rules.md §Onboarding).

-- The borrower that pledged the right is a party of its own (Civil Code art. 444).
ALTER TABLE organisations DROP CONSTRAINT organisations_kind_check;
ALTER TABLE organisations ADD CONSTRAINT organisations_kind_check
    CHECK (kind IN ('bank', 'buyer', 'pool', 'operator', 'acquirer', 'pledgor'));

-- A buyer is a company (统一社会信用代码) or a person bidding under their real name
-- (居民身份号码, GB 11643-1999; the check character is validated in market/validators.py).
ALTER TABLE organisations
    ADD COLUMN party_type text NOT NULL DEFAULT 'company'
        CHECK (party_type IN ('company', 'individual')),
    ADD COLUMN id_number text UNIQUE CHECK (id_number ~ '^[0-9]{17}[0-9X]$');
ALTER TABLE organisations DROP CONSTRAINT buyer_has_credit_code;
ALTER TABLE organisations ADD CONSTRAINT party_identified CHECK (
    (party_type = 'company' AND id_number IS NULL AND (kind <> 'buyer' OR credit_code IS NOT NULL))
    OR (party_type = 'individual' AND kind = 'buyer' AND id_number IS NOT NULL
        AND credit_code IS NULL));

-- Roles inside an organisation: admin (people, tokens, webhooks and everything an officer
-- does), officer (the organisation's work), read_only (sees, changes nothing).
ALTER TABLE users DROP CONSTRAINT users_role_check;
UPDATE users SET role = 'officer' WHERE role = 'member';
ALTER TABLE users ADD CONSTRAINT users_role_check
    CHECK (role IN ('admin', 'officer', 'read_only'));
ALTER TABLE users ADD COLUMN disabled_by bigint REFERENCES users (id);

-- An invitation to join an organisation. The link's secret is an HMAC of the nonce under
-- the exchange's secret key (market/accounts/invitations.py): the table holds nothing that
-- opens an account by itself.
CREATE TABLE invitations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id      bigint NOT NULL REFERENCES organisations (id),
    email       text NOT NULL CHECK (email = lower(email) AND email LIKE '%_@_%'),
    role        text NOT NULL CHECK (role IN ('admin', 'officer', 'read_only')),
    language    text NOT NULL DEFAULT 'zh' CHECK (language IN ('zh', 'en')),
    nonce       bytea NOT NULL CHECK (length(nonce) = 16),
    invited_by  bigint REFERENCES users (id),  -- null: the exchange (demo, onboarding script)
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL CHECK (expires_at > created_at),
    accepted_at timestamptz,
    user_id     bigint REFERENCES users (id),
    revoked_at  timestamptz,
    CHECK ((accepted_at IS NULL) = (user_id IS NULL))
);
CREATE INDEX invitations_org ON invitations (org_id, created_at DESC);
-- One open invitation per address: inviting again replaces it.
CREATE UNIQUE INDEX invitations_open ON invitations (email)
    WHERE accepted_at IS NULL AND revoked_at IS NULL;

-- The documents an organisation's approval rests on: business licence, authorisation letter,
-- identity document. The bytes are stored once per content in document_blobs.
CREATE TABLE organisation_documents (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id       bigint NOT NULL REFERENCES organisations (id),
    kind         text NOT NULL CHECK (kind IN ('business_licence', 'authorisation_letter',
                                               'identity_document', 'other')),
    filename     text NOT NULL CHECK (length(filename) BETWEEN 1 AND 200),
    content_type text NOT NULL,
    size_bytes   integer NOT NULL CHECK (size_bytes > 0),
    sha256       bytea NOT NULL REFERENCES document_blobs (sha256),
    uploaded_by  bigint REFERENCES users (id),
    uploaded_at  timestamptz NOT NULL
);
CREATE INDEX organisation_documents_org ON organisation_documents (org_id);

-- The bidding agreement (竞买协议), versioned: a registration records the version its
-- bidder accepted. Versions are added, never edited.
CREATE TABLE bidding_agreements (
    version      text PRIMARY KEY CHECK (version ~ '^[0-9]{4}-[0-9]{2}(-[0-9]+)?$'),
    title_zh     text NOT NULL,
    title_en     text NOT NULL,
    body_zh      text NOT NULL,
    body_en      text NOT NULL,
    effective_at timestamptz NOT NULL
);
INSERT INTO bidding_agreements (version, title_zh, title_en, body_zh, body_en, effective_at)
VALUES ('2020-01', '网络竞买协议', 'Online bidding agreement',
'一、竞买人已阅读并理解本标的的公告、竞买须知及全部披露文件，对标的现状（包括权利状态、剩余保护期、质押及许可情况）已充分了解，自愿参加竞买。
二、竞买人按公告交纳保证金；竞得的，保证金转作价款；未竞得的，保证金在竞价结束后按规则退还。
三、竞买人出价即不可撤回；竞得后不按期支付余款的，保证金不予退还，并承担由此产生的费用及损失。
四、竞价、延时、流拍、再次拍卖及变卖依交易所公布的规则进行（《最高人民法院关于人民法院网络司法拍卖若干问题的规定》参照执行）。
五、成交后，竞买人配合办理质押注销及权利转移登记手续。',
'1. The bidder has read and understood the lot''s announcement, the bidding rules and every disclosed document, knows the state of the rights (status, remaining term, pledges and licences) and bids of its own free will.
2. The bidder pays the deposit the announcement states; a winner''s deposit becomes part of the price, a loser''s is released after the close under the rules.
3. A bid cannot be withdrawn; a winner who does not pay the balance in time forfeits the deposit and bears the costs and losses this causes.
4. Bidding, extensions, failed auctions, re-auctions and fixed-price sales follow the exchange''s published rules (after the Supreme People''s Court''s provisions on online judicial auctions).
5. After the sale the bidder takes part in the release of the pledge and the registration of the transfer.',
'2020-01-01T00:00:00+08:00');

ALTER TABLE registrations ADD COLUMN agreement_version text REFERENCES bidding_agreements (version);
