"""One message per event, in the reader's language: e-mail, inbox and webhook text.

Templates are folders per event (STYLE.md "Background work"):
`templates/email/<event>/{subject.txt, body.txt, body.html}`; the HTML body extends
`templates/email/_base.html`. A template holds the message's shape — which sentences, in
which order, on which channel — and no words: every sentence is a catalog entry of the
`email` domain (market/locale/*/LC_MESSAGES/email.po) with its values as placeholders,
`{{ _('email.outbid.body', lot=what, price=cny(p.get('price_fen'))) }}`, rendered in the
template's `lang` (market.i18n.install). So a template renders one language, and the
wording of both languages is kept side by side in the catalogs.

What a template sees:
* `lang` — "zh" or "en"; `html_lang` — its HTML language tag; `channel` — "email",
  "inbox" or "webhook" (only e-mail greets the reader and signs off; the inbox text carries
  no link, the page shows one);
* `p` — the outbox payload (whatever the producer wrote; read fields with `p.get`);
* `lot` — the lot now (id, reference, title, status, round, bidding_starts_at,
  bidding_ends_at, current_price_fen, start_price_fen, deposit_fen) or None;
* `ref` — the lot's reference (from the lot, else the payload's lot_reference), or "";
* `what` — the reference with the lot's title, as a sentence in `lang` names a lot;
* `name` — the reader's display name, or None (webhooks);
* `url` — the payload's `url`, else the site's page at its `path`, else the lot's public
  page (or the site when there is no lot); `site` — the site;
* `cny(fen)` — ¥1,200,000.00 (market.money.format_cny); None → "—";
* `local(value)` — an instant (datetime or ISO string) in Asia/Shanghai, "YYYY-MM-DD HH:MM";
* `label(prefix, value)` — the catalog's word for an internal value (`email.flag.lapsed`),
  the value itself when the catalog has none, "—" for no value.

Undefined names raise (StrictUndefined): a template mistake is a terminal delivery
failure the operator sees, never a message with a hole in it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import msgspec

from market import i18n
from market.i18n import Lang
from market.money import format_cny
from market.settings import ROOT

TEMPLATES = ROOT / "templates"
PARTS = ("subject.txt", "body.txt", "body.html")
_BLANKS = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")


class Rendered(msgspec.Struct, frozen=True, kw_only=True):
    lang: Lang
    subject: str
    text: str
    html: str  # e-mail only; "" for the inbox and webhooks


class RenderError(Exception):
    """A template is missing or broken: nothing can be sent until someone fixes it."""


def cny(fen: object) -> str:
    if fen is None or isinstance(fen, bool):
        return "—"
    if isinstance(fen, int):
        return format_cny(fen)
    raise TypeError(f"an amount in fen must be an integer, got {fen!r}")


@lru_cache(maxsize=4)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_time(value: object, tz: str = "Asia/Shanghai") -> str:
    """ "2026-01-05 10:00" in `tz` (the exchange's display zone) for an aware instant."""
    if value is None or value == "":
        return "—"
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(when, datetime) or when.tzinfo is None:
        raise TypeError(f"an instant with its zone is expected, got {value!r}")
    return when.astimezone(_zone(tz)).strftime("%Y-%m-%d %H:%M")


def content_language(lang: Lang) -> str:
    """The language tag of a message in `lang` (HTML `lang`, e-mail Content-Language)."""
    return "zh-CN" if lang == "zh" else "en"


@jinja2.pass_context
def label(context: jinja2.runtime.Context, prefix: str, value: object) -> str:
    """The reader's word for an internal value, e.g. a monitoring flag's kind."""
    if value is None or value == "":
        return "—"
    key = f"{prefix}.{value}"
    return i18n.gettext(i18n.pick(context.get("lang")), key) if i18n.has(key) else str(value)


@lru_cache(maxsize=2)
def _environment(tz: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
        undefined=jinja2.StrictUndefined,
        # Templates change with a deployment, not while it runs: no stat() per message.
        auto_reload=False,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    i18n.install(env)
    env.globals["cny"] = cny
    env.globals["label"] = label
    env.globals["local"] = lambda value: local_time(value, tz)
    env.filters["local"] = lambda value: local_time(value, tz)
    return env


def has_templates(event: str) -> bool:
    folder = TEMPLATES / "email" / event
    return all((folder / part).is_file() for part in PARTS)


def render(
    event: str,
    lang: Lang,
    *,
    payload: Mapping[str, Any],
    lot: Mapping[str, Any] | None,
    name: str | None,
    base_url: str,
    tz: str = "Asia/Shanghai",
    channel: str = "email",
) -> Rendered:
    """The subject, text and — for e-mail, the one channel that sends it — HTML of one
    event for one reader; RenderError if broken."""
    env = _environment(tz)
    site = base_url.rstrip("/")
    ref = (lot or {}).get("reference") or payload.get("lot_reference") or ""
    title = (lot or {}).get("title") or payload.get("lot_title") or ""
    what = i18n.gettext(lang, "email.lot_named", ref=ref, title=title) if title else ref
    if payload.get("url"):
        url = str(payload["url"])
    elif payload.get("path"):  # a page of the exchange the event is about
        url = f"{site}{payload['path']}"
    elif event == "organisation_decided":
        url = f"{site}/account"
    elif event == "offer_received" and payload.get("lot_id"):
        url = f"{site}/bank/lots/{payload['lot_id']}/offers"
    elif event in ("offer_outbid_by_value", "offer_chosen", "offer_not_chosen"):
        url = f"{site}/my/offers"
    elif payload.get("contract_id"):
        url = f"{site}/licences/{payload['contract_id']}"
    elif event == "monitoring_flag" and payload.get("asset_id"):
        url = f"{site}/bank/collateral/assets/{payload['asset_id']}"
    else:
        url = f"{site}/lots/{ref}" if ref else site
    context = {
        "lang": lang,
        "html_lang": content_language(lang),
        "channel": channel,
        "p": dict(payload),
        "lot": dict(lot) if lot is not None else None,
        "ref": ref,
        "what": what,
        "name": name,
        "site": site,
        "url": url,
    }
    parts = PARTS if channel == "email" else PARTS[:2]
    try:
        subject, text, *html = (
            env.get_template(f"email/{event}/{part}").render(context) for part in parts
        )
    except (jinja2.TemplateError, TypeError, ValueError, KeyError, AttributeError) as exc:
        raise RenderError(f"template email/{event}: {type(exc).__name__}: {exc}") from exc
    # A subject is one line (RFC 5322 folding is the mail library's job, not ours).
    subject = " ".join(subject.split())
    if not subject:
        raise RenderError(f"template email/{event}: empty subject")
    # Paragraphs are separated by one blank line, however the conditionals fell.
    text = _BLANKS.sub("\n\n", text).strip() + "\n"
    return Rendered(lang=lang, subject=subject, text=text, html=html[0].strip() if html else "")
