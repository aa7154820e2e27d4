"""The lot editor's form: yuan and Beijing time in, fen and UTC terms out.

Errors name the form's own fields (start_price, bidding_starts_at…) so the page can put
each message next to its input.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from market.errors import Invalid
from market.lots.models import LotDraft
from market.lots.terms import Fee, PreemptiveHolder, TermsInput
from market.money import parse_cny
from market.web import REQUIRED, WHOLE_NUMBER

# Terms fields (fen, as the API names them) → the form's fields (yuan).
FORM_FIELD = {
    "start_price_fen": "start_price",
    "deposit_fen": "deposit",
    "increment_fen": "increment",
    "valuation_fen": "lot_valuation",
}


def _money(form: dict[str, str], name: str, *, required: bool = True) -> int | None:
    raw = form.get(name, "").strip()
    if not raw:
        if required:
            raise Invalid(REQUIRED, field=name)
        return None
    try:
        return parse_cny(raw)
    except ValueError as exc:
        raise Invalid(str(exc), field=name) from None


def local_time(form: dict[str, str], name: str, zone: ZoneInfo) -> datetime:
    raw = form.get(name, "").strip()
    try:
        return datetime.fromisoformat(raw).replace(tzinfo=zone)
    except ValueError:
        raise Invalid(
            "日期时间格式如 2026-05-01T10:00（北京时间） / "
            "a date and time like 2026-05-01T10:00 (Beijing time)",
            field=name,
        ) from None


def _int(form: dict[str, str], name: str) -> int | None:
    raw = form.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise Invalid(WHOLE_NUMBER, field=name)
    return int(raw)


def holders(text: str) -> tuple[PreemptiveHolder, ...]:
    """One holder a line, in rank order: `name` or `name, credit code`."""
    out = []
    for rank, line in enumerate((ln for ln in text.splitlines() if ln.strip()), start=1):
        name, _, code = (part.strip() for part in line.replace("，", ",").partition(","))
        out.append(PreemptiveHolder(rank=rank, name=name, credit_code=code or None))
    return tuple(out)


def terms_from_form(form: dict[str, str], zone: ZoneInfo) -> TermsInput:
    start = _money(form, "start_price")
    deposit = _money(form, "deposit")
    window_min = _int(form, "extension_window_min")
    extension_min = _int(form, "extension_min")
    fee = Fee()
    if form.get("fee_kind") == "buyer_premium":
        premium = form.get("premium_pct", "").strip() or "0"
        try:
            fee = Fee(kind="buyer_premium", premium_bp=int(Decimal(premium) * 100))
        except (ArithmeticError, ValueError):
            raise Invalid(
                "百分比，如 3 或 2.5 / a percentage like 3 or 2.5", field="premium_pct"
            ) from None
    data: dict[str, Any] = {
        "start_price_fen": start,
        "deposit_fen": deposit,
        "increment_fen": _money(form, "increment", required=False),
        "bidding_starts_at": local_time(form, "bidding_starts_at", zone),
        "bidding_ends_at": local_time(form, "bidding_ends_at", zone),
        "extension_window_s": None if window_min is None else window_min * 60,
        "extension_s": None if extension_min is None else extension_min * 60,
        "payment_days": _int(form, "payment_days"),
        "fee": fee,
        "preemptive_holders": holders(form.get("preemptive_holders", "")),
    }
    try:
        return msgspec.convert(data, TermsInput, from_attributes=True)
    except msgspec.ValidationError as exc:
        raise Invalid(str(exc), field="form") from None


def draft_from_form(form: dict[str, str], asset_ids: list[int], zone: ZoneInfo) -> LotDraft:
    title = form.get("title", "").strip()
    if not title:
        raise Invalid(REQUIRED, field="title")
    return LotDraft(
        title=title,
        description=form.get("description", ""),
        asset_ids=asset_ids,
        valuation_fen=_money(form, "lot_valuation", required=False),
        auction_kind="sealed" if form.get("auction_kind") == "sealed" else "english",
        terms=terms_from_form(form, zone),
    )


def form_field(api_field: str | None) -> str:
    return FORM_FIELD.get(api_field or "", api_field or "form")


def form_values(draft: Any, zone: ZoneInfo) -> dict[str, str]:
    """A saved lot back into the form's strings."""
    t = draft.terms

    def yuan(fen: int | None) -> str:
        return "" if fen is None else f"{fen / 100:.2f}"

    def local(value: datetime | None) -> str:
        return "" if value is None else value.astimezone(zone).strftime("%Y-%m-%dT%H:%M")

    return {
        "title": draft.title,
        "lot_valuation": yuan(draft.valuation_fen),
        "auction_kind": draft.auction_kind,
        "description": draft.description,
        "start_price": yuan(t.start_price_fen),
        "deposit": yuan(t.deposit_fen),
        "increment": yuan(t.increment_fen),
        "bidding_starts_at": local(t.bidding_starts_at),
        "bidding_ends_at": local(t.bidding_ends_at),
        "extension_window_min": str(t.extension_window_s // 60),
        "extension_min": str(t.extension_s // 60),
        "payment_days": str(t.payment_days),
        "fee_kind": t.fee.kind,
        "premium_pct": f"{t.fee.premium_bp / 100:g}",
        "preemptive_holders": "\n".join(
            f"{h.name}, {h.credit_code}" if h.credit_code else h.name for h in t.preemptive_holders
        ),
    }


def next_round_values(lot: Any, policy: Any, now: datetime, zone: ZoneInfo) -> dict[str, str]:
    """Suggestions for the relist or fixed-price form: the lowest start the rules allow and
    the earliest schedule (issue 3: ≤ 20 % lower, 15 days' notice, ≤ 60 days of sale)."""
    start = -(-lot.first_start_fen * (10_000 - policy.relist_max_reduction_bp) // 10_000)
    start = -(-start // 100) * 100  # whole yuan, rounded up to stay within the rule
    starts = (now + policy.relist_notice + timedelta(hours=1)).astimezone(zone)
    return {
        "start_price": f"{start / 100:.2f}",
        "deposit": f"{start // 10 / 100:.2f}",
        "bidding_starts_at": starts.strftime("%Y-%m-%dT%H:%M"),
        "bidding_ends_at": (starts + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (now + policy.fixed_price_max_duration)
        .astimezone(zone)
        .strftime("%Y-%m-%dT%H:%M"),
    }
