"""Disposal cases: the creditor's claim, valuation and disclosure documents."""
