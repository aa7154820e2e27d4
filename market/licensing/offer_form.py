"""The offer form's fields: yuan, percentages and days in, OfferIn's data (fen, basis
points, dates) out, for `msgspec.convert` inside `Form.submit` (market/web.py), so that a
value the API's types refuse shows beside the field a person typed into, as the API names
it (`licence.security.amount_fen` → `security_amount`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from market.errors import AppError
from market.lots.forms import percent_bp
from market.money import MAX_FEN, parse_cny
from market.web import Form

# The API's field names (under `licence.`) → the form's.
FORM_FIELD: Final = {
    "upfront_fen": "upfront",
    "royalty_rate_bp": "royalty_rate_pct",
    "forecast_net_sales_fen": "forecast_net_sales",
    "per_unit_fen": "per_unit",
    "minimum_annual_fen": "minimum_annual",
    "security": "security_kind",
    "security.kind": "security_kind",
    "security.amount_fen": "security_amount",
    "security.expiry": "security_expiry",
    "price_fen": "price",
    "licence": "form",
    "reference": "form",
}
# The fields the offer form shows a problem beside; any other problem is the form's.
FIELDS_SHOWN: Final = frozenset(
    {
        "type",
        "price",
        "buy_back",
        "kind",
        "field_of_use",
        "territory",
        "term_start",
        "term_end",
        "upfront",
        "royalty_rate_pct",
        "forecast_net_sales",
        "per_unit",
        "forecast_units",
        "minimum_annual",
        "period",
        "security_kind",
        "security_amount",
        "security_expiry",
    }
)
KINDS: Final = ("exclusive", "sole", "non_exclusive")
PERIODS: Final = ("quarterly", "half_yearly", "yearly")
SECURITIES: Final = ("none", "deposit", "bank_guarantee")


class OfferFields(Mapping[str, str]):
    """A field of the offer as the API names it (`licence.term_end`, `buy_back[0].until`)
    → the form field it came from."""

    def __getitem__(self, name: str) -> str:
        inner = name.removeprefix("offer.").removeprefix("licence.")
        if inner.startswith("buy_back"):
            return "buy_back"
        return FORM_FIELD.get(inner, inner)

    def __iter__(self) -> Iterator[str]:
        return iter(FORM_FIELD)

    def __len__(self) -> int:
        return len(FORM_FIELD)


FIELDS = OfferFields()


def _units(form: Form, name: str) -> int:
    text = form.text(name)
    if not text:
        return 0
    if not (text.isascii() and text.isdigit()):
        form.fail(name, "whole_number")
        return 0
    return int(text)


def buy_back(form: Form) -> list[dict[str, Any]]:
    """One step a line: `YYYY-MM-DD, amount in yuan`."""
    steps: list[dict[str, Any]] = []
    for line in form.values.get("buy_back", "").splitlines():
        if not line.strip():
            continue
        day, _, amount = (part.strip() for part in line.replace("，", ",").partition(","))
        try:
            price = parse_cny(amount)
        except AppError as exc:
            form.fail("buy_back", exc.code, **exc.params)
            continue
        steps.append({"until": day, "price_fen": price})
    return steps


def offer(form: Form) -> dict[str, Any]:
    """The form's fields, as OfferIn's data."""
    security: dict[str, Any] = {"kind": form.text("security_kind") or "none"}
    if security["kind"] != "none":
        security["amount_fen"] = form.yuan("security_amount", max_fen=MAX_FEN)
    if security["kind"] == "bank_guarantee":
        security["expiry"] = form.date("security_expiry")
    licence: dict[str, Any] = {
        "kind": form.text("kind"),
        "field_of_use": form.text("field_of_use"),
        "territory": form.text("territory"),
        "term_start": form.date("term_start"),
        "term_end": form.date("term_end"),
        "upfront_fen": form.yuan("upfront", max_fen=MAX_FEN, required=False) or 0,
        "royalty_rate_bp": percent_bp(form, "royalty_rate_pct") or 0,
        "forecast_net_sales_fen": form.yuan("forecast_net_sales", max_fen=MAX_FEN, required=False)
        or 0,
        "per_unit_fen": form.yuan("per_unit", max_fen=MAX_FEN, required=False) or 0,
        "forecast_units": _units(form, "forecast_units"),
        "minimum_annual_fen": form.yuan("minimum_annual", max_fen=MAX_FEN, required=False) or 0,
        "period": form.text("period") or "yearly",
        "security": security,
    }
    for name in ("field_of_use", "territory"):
        if not licence[name]:
            form.fail(name, "required")
    if form.text("type") == "sale_and_licence_back":
        return {
            "type": "sale_and_licence_back",
            "licence": licence,
            "price_fen": form.yuan("price", max_fen=MAX_FEN),
            "buy_back": buy_back(form),
        }
    return {"type": "licence", "licence": licence}


def defaults() -> dict[str, str]:
    """An empty form's choices."""
    return {"type": "licence", "kind": "non_exclusive", "period": "yearly", "security_kind": "none"}
