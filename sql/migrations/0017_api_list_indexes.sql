-- Indexes of the API's lists (market/paging.py, sql/queries/api.sql): each list is read in
-- its (sort key, id) order from the cursor on, so an index in that order per organisation
-- lets a page be read without sorting the organisation's whole collection.
CREATE INDEX lots_bank_created ON lots (bank_org_id, created_at DESC, id DESC);
CREATE INDEX ip_assets_bank_number ON ip_assets (bank_org_id, number, id);
CREATE INDEX sales_buyer ON sales (buyer_org_id, closed_at DESC, id DESC);
CREATE INDEX compensation_claims_bank ON compensation_claims (bank_org_id, filed_at DESC, id DESC);
CREATE INDEX inbox_user_created ON inbox (user_id, created_at DESC, id DESC);
CREATE INDEX api_tokens_org_created ON api_tokens (org_id, created_at DESC, id DESC);
