-- The outbid collapse (market/notify/delivery.py) looks for a newer outbid to the same
-- bidder on the same lot before sending; without this it would scan the outbox.
CREATE INDEX outbox_outbid ON outbox (recipient_user_id, lot_id, id) WHERE event = 'outbid';
