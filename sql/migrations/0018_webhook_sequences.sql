-- Webhooks get every event, in order, numbered (docs/webhooks.md). A webhook delivery
-- belongs to a stream: its endpoint and its subject (the lot, else the asset of a monitoring
-- flag, else the organisation); `sequence` numbers the stream's deliveries 1, 2, 3 … in the
-- order the relay took their events, with no gap. webhook_streams holds each stream's last
-- number, so the relay numbers new deliveries from there.

ALTER TABLE deliveries
    ADD COLUMN subject  text,
    ADD COLUMN sequence bigint;

CREATE TABLE webhook_streams (
    endpoint_id   bigint NOT NULL REFERENCES webhook_endpoints (id),
    subject       text NOT NULL,
    last_sequence bigint NOT NULL CHECK (last_sequence > 0),
    PRIMARY KEY (endpoint_id, subject)
);

-- The webhook deliveries made before: numbered in the order of their events.
WITH numbered AS (
    SELECT d.id,
           CASE WHEN o.lot_id IS NOT NULL THEN 'lot:' || o.lot_id
                WHEN o.payload ? 'asset_id' THEN 'asset:' || (o.payload ->> 'asset_id')
                ELSE 'organisation' END AS subject,
           d.target, d.outbox_id
    FROM deliveries d JOIN outbox o ON o.id = d.outbox_id
    WHERE d.channel = 'webhook'
), ranked AS (
    SELECT id, subject, target,
           row_number() OVER (PARTITION BY target, subject ORDER BY outbox_id, id) AS sequence
    FROM numbered
)
UPDATE deliveries d SET subject = r.subject, sequence = r.sequence
FROM ranked r WHERE r.id = d.id;

INSERT INTO webhook_streams (endpoint_id, subject, last_sequence)
SELECT target::bigint, subject, max(sequence)
FROM deliveries WHERE channel = 'webhook'
GROUP BY target, subject;

ALTER TABLE deliveries ADD CONSTRAINT deliveries_webhook_numbered
    CHECK ((channel = 'webhook') = (subject IS NOT NULL AND sequence IS NOT NULL));

-- One number once per stream.
CREATE UNIQUE INDEX deliveries_stream ON deliveries (target, subject, sequence)
    WHERE channel = 'webhook';
-- A stream's pending deliveries: what a delivery waits for, and the next one to wake.
CREATE INDEX deliveries_stream_pending ON deliveries (target, subject, sequence)
    WHERE channel = 'webhook' AND status = 'pending';
