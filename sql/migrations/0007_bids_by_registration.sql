-- "My auctions": a registration's own bids, newest first, without scanning a hot lot.
CREATE INDEX bids_registration ON bids (registration_id, seq DESC);
