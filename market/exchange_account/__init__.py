"""The exchange's own bank account (the clearing account, `exchange:clearing`, where
deposits and balances arrive): its one statement import, which settles each incoming
line by the reference in its 附言, and the operator's hand decisions on what it leaves
(docs/rules.md §Reconciliation, §Registration and deposits)."""
