-- An organisation's storage quota sums the sizes of every document of its cases, removed
-- ones included (docs/rules.md §Security): case_documents_case covers only those in place.
CREATE INDEX case_documents_case_size ON case_documents (case_id) INCLUDE (size_bytes);
