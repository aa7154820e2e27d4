"""Payments out: the instructions for every amount the exchange owes (refunds, payouts),
the payees' settlement accounts, the payment files for the exchange's bank and the
outgoing lines of the clearing account's statement that prove them paid
(docs/rules.md §Payments out)."""
