"""UI texts of this area: key → (简体中文, English). Merged into market/i18n.py."""

MESSAGES: dict[str, tuple[str, str]] = {}
