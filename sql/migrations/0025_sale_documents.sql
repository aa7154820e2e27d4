-- The exchange's documents of a sale (docs/rules.md §Sale documents): the 成交确认书 written
-- at the close and the 交易凭证 once the balance is paid. One of each kind per sale (the
-- unique constraint is what makes two issuings at once yield one document); the code is
-- what anyone types on the public verification page; `content` is what the document
-- certifies. The row is written in the transaction of the sale (or of its payment); the
-- PDF is rendered from `content` alone by the worker, kept in document_blobs, and its
-- hash written here and into the bank's audit chain (market/documents/rendering.py).
CREATE TABLE sale_documents (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sale_id     bigint NOT NULL REFERENCES sales (id),
    kind        text NOT NULL CHECK (kind IN ('confirmation', 'certificate')),
    -- 20 characters of Crockford's base32, the last a check character
    code        text NOT NULL UNIQUE CHECK (code ~ '^[0-9A-HJKMNP-TV-Z]{20}$'),
    content     jsonb NOT NULL,
    issued_at   timestamptz NOT NULL,
    sha256      bytea REFERENCES document_blobs (sha256),
    size_bytes  integer CHECK (size_bytes > 0),
    rendered_at timestamptz,
    UNIQUE (sale_id, kind),
    CONSTRAINT rendered_whole CHECK ((sha256 IS NULL) = (size_bytes IS NULL)
                                     AND (sha256 IS NULL) = (rendered_at IS NULL))
);
-- The worker's queue: documents whose PDF is still to be rendered.
CREATE INDEX sale_documents_pending ON sale_documents (id) WHERE sha256 IS NULL;

-- A document, once issued, is a fact: only its rendering is added (once: the worker
-- updates a row whose sha256 is NULL), and it is never deleted.
CREATE TRIGGER sale_documents_append_only BEFORE UPDATE OR DELETE ON sale_documents
    FOR EACH ROW EXECUTE FUNCTION facts_append_only('sha256', 'size_bytes', 'rendered_at');
