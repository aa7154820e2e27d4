"""The catalogs: every key used is defined, in both languages, and one language at a time."""

from __future__ import annotations

import re

import jinja2

from market import i18n
from market.settings import ROOT

KEY = re.compile(r"""_\(\s*['"]([a-z0-9_.]+)['"]\s*[,)]""")


def test_template_keys_exist_in_catalogue() -> None:
    used = {
        key
        for path in (ROOT / "templates").rglob("*.*")
        for key in KEY.findall(path.read_text(encoding="utf-8"))
    }
    assert used, "no translated text found: the scan is broken"
    missing = sorted(k for k in used if not i18n.has(k))
    assert missing == []


def test_dynamic_keys_cover_every_value() -> None:
    from typing import get_args

    from market.accounts.models import OrgKind, OrgStatus, Role

    for prefix, values in (("kind", OrgKind), ("status", OrgStatus), ("role", Role)):
        for value in get_args(values):
            assert i18n.has(f"{prefix}.{value}")


def test_both_catalogs_hold_the_same_keys_and_chinese_is_chinese() -> None:
    i18n.check_catalogs()
    for key, zh in i18n.catalog("zh").items():
        en = i18n.catalog("en")[key]
        assert zh.strip() and en.strip(), key
        # A text of placeholders and punctuation alone ("%(ref)s「%(title)s」") has no words.
        wordless = not re.search(r"\w", re.sub(r"%\(\w+\)s", "", zh))
        assert re.search(r"[\u4e00-\u9fff]", zh) or wordless or key == "lang.switch", (
            f"{key} has no Chinese"
        )
        assert set(re.findall(r"%\((\w+)\)s", zh)) == set(re.findall(r"%\((\w+)\)s", en)), key


def test_gettext_fills_placeholders_and_falls_back_to_the_key() -> None:
    assert i18n.gettext("zh", "login.locked", minutes=15) == "失败次数过多，请 15 分钟后再试。"
    assert i18n.gettext("en", "nav.home", key="a parameter may be called key", lang="or lang")
    assert i18n.gettext("en", "nav.home") == "Home"
    assert i18n.gettext("zh", "no.such.key") == "no.such.key"
    assert i18n.pick("fr") == "zh"


def test_accept_language_picks_by_quality() -> None:
    assert i18n.from_accept_language("en-GB,en;q=0.9,zh;q=0.8") == "en"
    assert i18n.from_accept_language("fr, zh-CN;q=0.5, en;q=0.4") == "zh"
    assert i18n.from_accept_language("en;q=0, zh;q=0.1") == "zh"
    assert i18n.from_accept_language("de") is None
    assert i18n.from_accept_language("en;q=x") is None


def test_templates_speak_the_language_of_their_context() -> None:
    env = jinja2.Environment(autoescape=True)
    i18n.install(env)
    template = env.from_string("{{ _('nav.home') }} {{ _('login.locked', minutes='<b>', key=1) }}")
    assert template.render(lang="zh").startswith("首页 失败次数过多，请 &lt;b&gt;")
    assert template.render(lang="en").startswith("Home Too many")
