"""Exchange listing (挂牌): a lot listed at a price for a disclosure period counted in
working days, intents with deposits, and what the period's end leads to (docs/rules.md
§Listing)."""
