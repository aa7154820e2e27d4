"""The exchange's documents of a sale: the 成交确认书 and the 交易凭证 (docs/rules.md §Sale
documents)."""
