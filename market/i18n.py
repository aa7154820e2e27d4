"""The exchange's two languages: Simplified Chinese first, English available (brief).

Every text a person reads — pages, e-mails, inbox and webhook texts, the `detail` of an API
error — comes from the Babel (gettext) catalogs under `market/locale/<locale>/LC_MESSAGES/`,
one domain per area (`cases.po`, `pools.po` …), merged here into one catalog per language.
A message id is the text's key (`cases.title`, `problem.too_low`), never the text itself,
so a key missing from a catalog shows as the key and a test finds it (tests/test_i18n.py,
tests/test_every_page.py). Placeholders are gettext's python-format: `%(name)s`, a literal
percent sign `%%`. A page, an e-mail or an error detail speaks one language at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any, Literal

import jinja2
from babel.messages.pofile import read_po
from markupsafe import Markup

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")
DEFAULT: Lang = "zh"
# The catalogs' locale of each language the UI offers.
LOCALES: dict[Lang, str] = {"zh": "zh_CN", "en": "en"}
LOCALE_DIR = Path(__file__).resolve().parent / "locale"


class CatalogError(RuntimeError):
    """The catalogs disagree with themselves: a key defined twice, or in one language only."""


@cache
def catalog(lang: Lang) -> Mapping[str, str]:
    """Every translated text of `lang`: message id → text (all domains merged)."""
    merged: dict[str, str] = {}
    for path in sorted((LOCALE_DIR / LOCALES[lang] / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as f:
            domain = read_po(f, locale=LOCALES[lang], domain=path.stem)
        for message in domain:
            if not message.id:
                continue  # the header
            key = str(message.id)
            if key in merged:
                raise CatalogError(f"{key} is defined twice ({path.name} and another domain)")
            if message.string:
                merged[key] = str(message.string)
    return merged


def check_catalogs() -> None:
    """Every language has exactly the same keys (called by the tests and `market run`)."""
    keys = {lang: set(catalog(lang)) for lang in LANGS}
    for lang in LANGS:
        for other in LANGS:
            only = keys[lang] - keys[other]
            if only:
                raise CatalogError(f"in {LOCALES[lang]} but not {LOCALES[other]}: {sorted(only)}")


def pick(lang: str | None) -> Lang:
    """A language the UI speaks: English when asked for, else Chinese."""
    return "en" if lang == "en" else DEFAULT


def from_accept_language(header: str | None) -> Lang | None:
    """The first of our languages an Accept-Language header names (RFC 9110 §12.5.4,
    by quality), or None when it names neither."""
    if not header:
        return None
    ranked: list[tuple[float, int, Lang]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGS and quality > 0:
            ranked.append((-quality, position, pick(primary)))
    return min(ranked)[2] if ranked else None


def has(key: str) -> bool:
    return key in catalog(DEFAULT)


def gettext(lang: Lang, key: str, /, **params: object) -> str:
    """The text of `key` in `lang` with its placeholders filled; the key itself when the
    catalog lacks it (which the tests look for)."""
    text = catalog(lang).get(key)
    if text is None:
        return key
    return text % params if params or "%" in text else text


def translator(lang: Lang) -> Callable[..., str]:
    """`_(key, **params)` in one language, for code that renders several texts."""

    def _(key: str, /, **params: object) -> str:
        return gettext(lang, key, **params)

    return _


def label(lang: Lang, prefix: str, value: str) -> str:
    """The person's word for an internal value (a status, a kind, a role): `prefix.value`."""
    return gettext(lang, f"{prefix}.{value}")


def message_ids() -> Iterable[str]:
    return catalog(DEFAULT).keys()


# --- Jinja2 ---------------------------------------------------------------------------


@jinja2.pass_context
def _gettext(context: jinja2.runtime.Context, key: str) -> str:
    return catalog(pick(context.get("lang"))).get(key, key)


@jinja2.pass_context
def _ngettext(context: jinja2.runtime.Context, singular: str, plural: str, n: int) -> str:
    # Message ids are keys and Chinese has no plural: a count picks between two keys.
    return _gettext(context, singular if n == 1 else plural)


@jinja2.pass_context
def _message(context: jinja2.runtime.Context, key: str, /, **params: object) -> str:
    """`_(key, **params)` as newstyle gettext gives it — the text of `key` in the
    template's `lang`, always formatted, its parameters escaped in HTML — in one call
    where the extension makes three (an e-mail renders some thirty texts, the worker
    hundreds of e-mails a second: bench/notifications.py)."""
    text = catalog(pick(context.get("lang"))).get(key, key)
    if context.eval_ctx.autoescape:
        return Markup(text) % params  # noqa: S704 - our catalog; % escapes the values
    return text % params


def install(env: jinja2.Environment) -> None:
    """Jinja2's i18n extension with the language taken from the template's `lang`:
    `{{ _('cases.title') }}`, `{{ _('login.locked', minutes=15) }}`, `{% trans %}`.
    Newstyle gettext escapes the parameters in HTML templates and always formats, hence
    `%%` for a percent sign."""
    env.add_extension("jinja2.ext.i18n")
    install_callables: Any = env.install_gettext_callables  # type: ignore[attr-defined]
    install_callables(gettext=_gettext, ngettext=_ngettext, newstyle=True)
    env.globals["_"] = _message
    # A text with its placeholders left in, for a script that fills them (static/*.js).
    env.globals["raw_text"] = _gettext
