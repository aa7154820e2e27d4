-- A bid batch whose lots' states this process holds in memory is written without locking
-- the lots first: one statement (auctions.sql save_batch), its own transaction, instead of
-- BEGIN, a locking SELECT, the writes and COMMIT. The statement re-checks each lot's
-- round, status, auction_seq and end against the values the batch was decided on, and
-- counts the Idempotency-Key answers it could store (a key already stored is a retry,
-- whose first answer must be replayed instead). This function fails the whole statement
-- — nothing written — when any lot moved on (another process's writer, the closer, a
-- pause) or any answer was already there; the writer then decides the batch again the
-- locking way (auctions/writer.py, docs/bidding.md "One statement a batch").
CREATE FUNCTION bid_batch_current(
    lots_current bigint, lots_in_batch int, answers_stored bigint, answers_in_batch int
) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    IF lots_current <> lots_in_batch THEN
        RAISE EXCEPTION 'bid batch: % of its % lots changed since they were read',
            lots_in_batch - lots_current, lots_in_batch
            USING ERRCODE = 'serialization_failure';
    END IF;
    IF answers_stored <> answers_in_batch THEN
        RAISE EXCEPTION 'bid batch: % of its % Idempotency-Keys were answered before',
            answers_in_batch - answers_stored, answers_in_batch
            USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN lots_current;
END
$$;
