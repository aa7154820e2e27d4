-- Lot numbers given at publication (docs/rules.md §Lot lifecycle): a draft carries a draft
-- id (DRAFT-000123), never a public number; the publishing transaction takes the next
-- number of its year (Beijing time) from this counter row, locked FOR UPDATE, so a refused
-- or abandoned draft uses none and publications get consecutive numbers.
CREATE TABLE lot_numbers (
    year        integer PRIMARY KEY CHECK (year BETWEEN 2000 AND 9999),
    last_number integer NOT NULL CHECK (last_number >= 0)
);

-- Lots numbered before keep their numbers: each year's counter goes on after the highest.
INSERT INTO lot_numbers (year, last_number)
SELECT substring(reference FROM '^LOT-([0-9]{4})-')::integer,
       max(substring(reference FROM '^LOT-[0-9]{4}-([0-9]+)$')::integer)
FROM lots
WHERE reference ~ '^LOT-[0-9]{4}-[0-9]+$'
GROUP BY 1;

-- A pledge's asset came from a CSV import or was added one at a time by the form
-- (docs/rules.md §Collateral and monitoring): a re-uploaded file replaces the assets the
-- files brought to the pledge, never one added by the form (unless the file lists it:
-- then the file holds it from there on).
ALTER TABLE pledge_assets
    ADD COLUMN source text NOT NULL DEFAULT 'csv' CHECK (source IN ('csv', 'form'));

-- 'form': one asset entered on the page, written by the request as a one-row import.
ALTER TABLE collateral_imports DROP CONSTRAINT collateral_imports_via_check;
ALTER TABLE collateral_imports
    ADD CONSTRAINT collateral_imports_via_check CHECK (via IN ('web', 'api', 'demo', 'form'));
