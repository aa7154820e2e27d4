"""Texts of the pool pages of the pools area (key: (zh, en))."""

from __future__ import annotations

MESSAGES: dict[str, tuple[str, str]] = {
    "pool.nav.dashboard": ("资金池", "Pool"),
    "pool.nav.claims": ("补偿申请", "Claims"),
    "pool.nav.reconciliation": ("对账", "Reconciliation"),
    "pool.nav.bank": ("风险补偿", "Guarantee pools"),
}
