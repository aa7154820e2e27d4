"""Every text key used in a template exists in both languages."""

from __future__ import annotations

import re

from market import i18n
from market.settings import ROOT

KEY = re.compile(r"""_\(\s*['"]([a-z0-9_.]+)['"]\s*[,)]""")


def test_template_keys_exist_in_catalogue() -> None:
    used = {
        key
        for path in (ROOT / "templates").rglob("*.html")
        for key in KEY.findall(path.read_text(encoding="utf-8"))
    }
    assert used, "no translated text found: the scan is broken"
    missing = sorted(used - set(i18n.CATALOG))
    assert missing == []


def test_dynamic_keys_cover_every_value() -> None:
    from typing import get_args

    from market.accounts.models import OrgKind, OrgStatus, Role

    for prefix, values in (("kind", OrgKind), ("status", OrgStatus), ("role", Role)):
        for value in get_args(values):
            assert f"{prefix}.{value}" in i18n.CATALOG


def test_every_entry_has_both_languages() -> None:
    for key, (zh, en) in i18n.CATALOG.items():
        assert zh.strip() and en.strip(), key
        assert re.search(r"[\u4e00-\u9fff]", zh) or key == "lang.switch", f"{key} has no Chinese"


def test_translator_falls_back_to_chinese() -> None:
    assert i18n.translator("fr")("nav.home") == "首页"
    assert i18n.translator("en")("nav.home") == "Home"
