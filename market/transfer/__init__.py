"""Escrow until the title has moved (docs/rules.md §Transfer of title): a paid sale's money
is held by the exchange while the pledge registration is released and the transfer
recorded, then routed through the waterfall (completed) or refunded (unwound)."""
