-- A sandbox exchange's clock (market/sandbox, docs/operations.md §Sandbox mode): the
-- exchange's time is the system's plus `offset_ms`, which its operator only moves forward.
-- One row at most (the key is always true); no row is an offset of 0. The trigger keeps
-- the offset from going back whatever writes it.
CREATE TABLE exchange_clock (
    id        boolean PRIMARY KEY DEFAULT true CHECK (id),
    offset_ms bigint NOT NULL CHECK (offset_ms >= 0),
    moved_at  timestamptz NOT NULL,
    moved_by  bigint REFERENCES users (id)
);

CREATE FUNCTION exchange_clock_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.offset_ms < OLD.offset_ms THEN
        RAISE EXCEPTION 'the exchange clock only moves forward (% ms → % ms)',
            OLD.offset_ms, NEW.offset_ms;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER exchange_clock_forward_only BEFORE UPDATE ON exchange_clock
    FOR EACH ROW EXECUTE FUNCTION exchange_clock_forward_only();
