"""Texts of the bank pages of the pools area (key: (zh, en))."""

from __future__ import annotations

MESSAGES: dict[str, tuple[str, str]] = {}
