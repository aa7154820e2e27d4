-- Bids, deposits, sales and payouts are facts (docs/rules.md §Bidding, §Money): once
-- written, what they say never changes and they are never deleted. A registration's
-- deposit, a sale and a payout move through their statuses; every other column is fixed.
-- The triggers stop an application bug or a careless hand; a database superuser can
-- disable them, and for bids the seals below (verified by `market audit verify`) catch that.

CREATE FUNCTION facts_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    movable text[] := coalesce(TG_ARGV, '{}');  -- the columns an UPDATE may change
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION '% is append-only: rows are never deleted', TG_TABLE_NAME
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF (to_jsonb(NEW) - movable) IS DISTINCT FROM (to_jsonb(OLD) - movable) THEN
        RAISE EXCEPTION '% is append-only: only % may change', TG_TABLE_NAME, movable
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER bids_append_only BEFORE UPDATE OR DELETE ON bids
    FOR EACH ROW EXECUTE FUNCTION facts_append_only();
CREATE TRIGGER registrations_append_only BEFORE UPDATE OR DELETE ON registrations
    FOR EACH ROW EXECUTE FUNCTION facts_append_only('deposit_status', 'confirmed_at',
                                                    'confirmed_by', 'settled_at');
CREATE TRIGGER sales_append_only BEFORE UPDATE OR DELETE ON sales
    FOR EACH ROW EXECUTE FUNCTION facts_append_only('status', 'paid_at');
CREATE TRIGGER payouts_append_only BEFORE UPDATE OR DELETE ON payouts
    FOR EACH ROW EXECUTE FUNCTION facts_append_only('status', 'received_at',
                                                    'received_entry_id');

-- The bids of a lot's round, sealed in order (auctions/seals.py): each seal's digest chains
-- the previous seal's with every bid up to `through_seq`, and is written into the
-- exchange's keyed, anchored audit chain. This row is only the sealer's bookmark.
CREATE TABLE bid_seals (
    lot_id      bigint NOT NULL REFERENCES lots (id),
    round       smallint NOT NULL,
    through_seq integer NOT NULL,
    digest      bytea NOT NULL CHECK (length(digest) = 32),
    sealed_at   timestamptz NOT NULL,
    PRIMARY KEY (lot_id, round)
);
