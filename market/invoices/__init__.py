"""Invoices of the exchange's fee on a sale (docs/rules.md §Invoices)."""
