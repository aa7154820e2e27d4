"""Licensing as a way out of a defaulted pledge (docs/rules.md §Licensing)."""
