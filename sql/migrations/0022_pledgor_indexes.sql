-- The pledgor's reads and the open licences' list (docs/rules.md §The pledgor, §Open
-- licence): a pledgor organisation finds its cases by credit code, through the loans of the
-- banks' registry rows; a CNIPA announcement number belongs to one declaration.
CREATE INDEX pledgors_credit_code ON pledgors (credit_code);
CREATE INDEX loans_pledgor ON loans (pledgor_id);
CREATE INDEX open_licences_case ON open_licences (case_id);
CREATE INDEX open_licences_public ON open_licences (declared_on DESC, id DESC)
    WHERE status IN ('declared', 'withdrawn');
CREATE UNIQUE INDEX open_licences_cnipa_number ON open_licences (cnipa_number)
    WHERE cnipa_number IS NOT NULL;
