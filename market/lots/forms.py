"""The lot pages' forms: yuan and Beijing time in, the API's shapes (fen, instants) out.

What a person typed wrong is recorded on the `Form` (market/web.py) beside the form's own
field (start_price, bidding_starts_at…); FIELDS maps the service's field names to those,
so a refusal of the rules shows beside the field the person typed into. The functions
here return plain data for `msgspec.convert`, which the page runs inside `form.submit`
so that a value the API's types refuse is shown beside its field as well.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from market.lots.lifecycle import relist_floor
from market.lots.models import LotOut
from market.lots.terms import Offers, TermsPolicy
from market.money import MAX_FEN
from market.web import Form

# The service's and the API's field names (fen, seconds) → the form's fields (yuan, minutes).
FORM_FIELD = {
    "start_price_fen": "start_price",
    "deposit_fen": "deposit",
    "increment_fen": "increment",
    "valuation_fen": "lot_valuation",
    "extension_window_s": "extension_window_min",
    "extension_s": "extension_min",
    "premium_bp": "premium_pct",
    "listing": "listing_period_days",  # a listing's block (docs/rules.md §Listing)
}
# The offers block's fields (`terms.offers.valuation.spreads.none_bp`, by their last part)
# → the form's; an error of the spreads as a whole shows beside the first spread.
OFFER_FIELD = {
    "offers": "offers_mode",
    "mode": "offers_mode",
    "valuation": "discount_rate_pct",
    "discount_rate_bp": "discount_rate_pct",
    "spreads": "spread_none_pct",
    "none_bp": "spread_none_pct",
    "deposit_bp": "spread_deposit_pct",
    "bank_guarantee_bp": "spread_guarantee_pct",
    "credibility_bp": "credibility_pct",
    "margin_bp": "margin_pct",
    "decision_days": "decision_days",
}
# The fields the editor shows a problem beside; any other problem is the form's.
EDITOR_FIELDS = frozenset(
    {
        "title",
        "description",
        "asset_ids",
        "auction_kind",
        "lot_valuation",
        "start_price",
        "deposit",
        "increment",
        "bidding_starts_at",
        "bidding_ends_at",
        "extension_window_min",
        "extension_min",
        "payment_days",
        "fee",
        "premium_pct",
        "preemptive_holders",
        "version",
        "mode",
        "listing_period_days",
        *set(OFFER_FIELD.values()),
    }
)


class FormFields(Mapping[str, str]):
    """A field of the service or of the API's body (`terms.start_price_fen`,
    `terms.preemptive_holders[0].name`) → the form field it came from."""

    def __getitem__(self, name: str) -> str:
        inner = name.removeprefix("terms.")
        if inner == "offers" or inner.startswith("offers."):
            return OFFER_FIELD.get(inner.split(".")[-1], "offers_mode")
        base = name.removeprefix("terms.").removeprefix("fee.").split("[")[0].split(".")[0]
        return FORM_FIELD.get(base, base)

    def __iter__(self) -> Iterator[str]:
        return iter(FORM_FIELD)

    def __len__(self) -> int:
        return len(FORM_FIELD)


FIELDS = FormFields()


def placed(errors: dict[str, str], shown: frozenset[str], other: str = "form") -> dict[str, str]:
    """The errors, those of fields the page does not show moved to `other` (the form's
    own place for them)."""
    out: dict[str, str] = {}
    for name, text in errors.items():
        out.setdefault(name if name in shown else other, text)
    return out


def local_time(form: Form, name: str, zone: ZoneInfo) -> datetime | None:
    """A `datetime-local` field, read in the exchange's time zone (Beijing time)."""
    text = form.text(name)
    if not text:
        form.fail(name, "required")
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=zone)
    except ValueError:
        form.fail(name, "not_a_local_time")
        return None


def _whole(form: Form, name: str) -> int | None:
    """An optional whole number ≥ 0 (minutes, days); empty takes the rules' default."""
    text = form.text(name)
    if not text:
        return None
    if not (text.isascii() and text.isdigit()):
        form.fail(name, "whole_number")
        return None
    return int(text)


def percent_bp(form: Form, name: str) -> int | None:
    """A percentage as typed (3, 2.5, 0.25) → whole basis points; empty → None."""
    text = form.text(name)
    if not text:
        return None
    try:
        bp = Decimal(text) * 100
    except InvalidOperation:
        form.fail(name, "not_a_percentage")
        return None
    if not bp.is_finite() or bp != bp.to_integral_value():
        form.fail(name, "not_a_percentage")
        return None
    return int(bp)


def _premium_bp(form: Form, name: str) -> int | None:
    """The buyer's premium; empty is none."""
    return percent_bp(form, name) if form.text(name) else 0


def offers(form: Form) -> dict[str, Any]:
    """The offers block's fields, as OffersInput's data; what is left empty takes the
    defaults (docs/rules.md §Licence offers and decision)."""
    spreads = {
        key: bp
        for key, name in (
            ("none_bp", "spread_none_pct"),
            ("deposit_bp", "spread_deposit_pct"),
            ("bank_guarantee_bp", "spread_guarantee_pct"),
        )
        if (bp := percent_bp(form, name)) is not None
    }
    valuation: dict[str, Any] = {
        key: bp
        for key, name in (
            ("discount_rate_bp", "discount_rate_pct"),
            ("credibility_bp", "credibility_pct"),
            ("margin_bp", "margin_pct"),
        )
        if (bp := percent_bp(form, name)) is not None
    }
    if spreads:
        valuation["spreads"] = spreads
    return {
        "mode": form.text("offers_mode") or "bids",
        "valuation": valuation,
        "decision_days": _whole(form, "decision_days"),
    }


def holders(text: str) -> list[dict[str, Any]]:
    """One holder a line, in rank order: `name` or `name, credit code`."""
    out = []
    for rank, line in enumerate((ln for ln in text.splitlines() if ln.strip()), start=1):
        name, _, code = (part.strip() for part in line.replace("，", ",").partition(","))
        out.append({"rank": rank, "name": name, "credit_code": code or None})
    return out


def terms(form: Form, zone: ZoneInfo) -> dict[str, Any]:
    """The terms fields, as TermsInput's data. A listing's schedule follows from its period
    (docs/rules.md §Listing): its bidding fields are not read."""
    listing = form.text("mode") == "listing"
    window_min = _whole(form, "extension_window_min")
    extension_min = _whole(form, "extension_min")
    fee: dict[str, Any] = {"kind": "commission"}
    if form.text("fee_kind") == "buyer_premium":
        fee = {"kind": "buyer_premium", "premium_bp": _premium_bp(form, "premium_pct")}
    return {
        "start_price_fen": form.yuan("start_price", max_fen=MAX_FEN),
        "deposit_fen": form.yuan("deposit", max_fen=MAX_FEN),
        "increment_fen": form.yuan("increment", max_fen=MAX_FEN, required=False),
        "bidding_starts_at": None if listing else local_time(form, "bidding_starts_at", zone),
        "bidding_ends_at": None if listing else local_time(form, "bidding_ends_at", zone),
        "mode": "listing" if listing else "auction",
        "listing": {"period_working_days": _whole(form, "listing_period_days")},
        "extension_window_s": None if window_min is None else window_min * 60,
        "extension_s": None if extension_min is None else extension_min * 60,
        "payment_days": _whole(form, "payment_days"),
        "fee": fee,
        "preemptive_holders": holders(form.values.get("preemptive_holders", "")),
        "offers": offers(form),
    }


def draft(form: Form, zone: ZoneInfo) -> dict[str, Any]:
    """The editor's fields, as LotDraft's data (LotUpdate's with `version`)."""
    title = form.text("title")
    if not title:
        form.fail("title", "required")
    data: dict[str, Any] = {
        "title": title,
        "description": form.values.get("description", ""),
        "asset_ids": form.ids("asset_ids"),
        "valuation_fen": form.yuan("lot_valuation", max_fen=MAX_FEN, required=False),
        "auction_kind": "sealed" if form.text("auction_kind") == "sealed" else "english",
        "terms": terms(form, zone),
    }
    if "version" in form.values:
        data["version"] = form.id("version")
    return data


def action(name: str, form: Form, zone: ZoneInfo) -> dict[str, Any]:
    """An action form (its name is the path's), as the API's ActionInput data."""
    match name:
        case "withdraw" | "pause":
            reason = form.text("reason")
            if not reason:
                form.fail("reason", "required")
            return {"action": name, "reason": reason}
        case "relist":
            return {"action": name, "terms": terms(form, zone)}
        case "fixed_price":
            return {"action": name, "ends_at": local_time(form, "ends_at", zone)}
    return {"action": name}


def form_values(lot: LotOut, zone: ZoneInfo) -> dict[str, str]:
    """A saved lot back into the form's strings."""
    t = lot.terms

    def yuan(fen: int | None) -> str:
        return "" if fen is None else f"{fen / 100:.2f}"

    def local(value: datetime | None) -> str:
        return "" if value is None else value.astimezone(zone).strftime("%Y-%m-%dT%H:%M")

    return {
        "title": lot.title,
        # Computed from the lot's assets (docs/rules.md §Lot terms): left empty, so a
        # change of assets is not refused for the share of the assets before it.
        "lot_valuation": "",
        "auction_kind": lot.auction_kind,
        "mode": t.mode,
        "listing_period_days": str(t.listing.period_working_days) if t.listing else "",
        "description": lot.description,
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
        **offers_values(t.offers),
    }


def offers_values(block: Offers) -> dict[str, str]:
    """A saved offers block back into the form's strings (percentages)."""
    v = block.valuation

    def pct(bp: int) -> str:
        return f"{bp / 100:g}"

    return {
        "offers_mode": block.mode,
        "discount_rate_pct": pct(v.discount_rate_bp),
        "spread_none_pct": pct(v.spreads.none_bp),
        "spread_deposit_pct": pct(v.spreads.deposit_bp),
        "spread_guarantee_pct": pct(v.spreads.bank_guarantee_bp),
        "credibility_pct": pct(v.credibility_bp),
        "margin_pct": pct(v.margin_bp),
        "decision_days": str(block.decision_days),
    }


def next_round_values(
    lot: LotOut, policy: TermsPolicy, now: datetime, zone: ZoneInfo
) -> dict[str, str]:
    """Suggestions for the relist or fixed-price form: the lowest start the rules allow and
    the earliest schedule (docs/rules.md §Lot lifecycle)."""
    start = relist_floor(policy, lot.first_start_fen)
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
