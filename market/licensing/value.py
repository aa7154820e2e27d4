"""Licensing against a sale, compared in money of today (docs/rules.md §Licensing).

Pure: no database, no clock — `today` is passed in. A defaulted pledge can be sold (the
auction's top `Bid`, or a `SaleAndLicenceBack`: a buyer pays now and licenses the patent
back to the pledgor) or licensed (`LicenceOffer`s: an upfront fee, a running royalty on net
sales and/or per unit, a minimum annual royalty, maybe secured by a deposit or a bank
guarantee). Licence money arrives over years and may not arrive at all, so every offer is
brought to its present value under the bank's `ValuationPolicy`:

* cash now counts at face value;
* the payments a licence promises — the upfront fee, the minimum royalty of each period —
  and the expected royalties above the minimum, cut by the credibility factor, are
  discounted per payment period at the policy's rate plus the credit spread of the
  security that stands behind them (what the security does not cover, at the spread of no
  security);
* royalties accrue only while both the licence and the patent last (专利法 art. 42 gives
  the patent's term; `patent_expiry`), and an offer whose term runs past the patent's
  expiry is refused.

Arithmetic is exact (`fractions.Fraction`); each line of the explanation is rounded once,
half-up, to the fen, and the total is the sum of the lines, so the explanation adds up.
`compare` then ranks the sets of offers that can stand together (one sale; one exclusive
licence; one sole licence; non-exclusive licences together) and says whether the hammer
stands: a licence set wins only if it beats the top bid by the policy's margin.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, timedelta
from fractions import Fraction
from typing import Annotated, Any, Final, Literal, TypeVar

import msgspec
from msgspec import Meta

from market.collateral.rules import PatentType, add_months, patent_term_end
from market.errors import BadValue, Invalid
from market.money import MAX_FEN
from market.pools.models import Line
from market.validators import application_year, patent_application_number, patent_type_code

BP: Final = 10_000  # basis points in 100 %
MONTHS_A_YEAR: Final = 12

Fen = Annotated[int, Meta(ge=0, le=MAX_FEN)]
PositiveFen = Annotated[int, Meta(ge=1, le=MAX_FEN)]
Share = Annotated[int, Meta(ge=0, le=BP)]  # a share of 100 %, in basis points
# A yearly rate: up to 50 % a year is already far beyond any bank's hurdle rate.
YearlyRate = Annotated[int, Meta(ge=0, le=5_000)]
Text = Annotated[str, Meta(min_length=1, max_length=200)]
Ref = Annotated[str, Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")]
Units = Annotated[int, Meta(ge=0, le=10**12)]

# 最高人民法院关于审理技术合同纠纷案件适用法律若干问题的解释 art. 25: 独占实施许可 (only the
# licensee uses it, not even the licensor), 排他实施许可 (the licensor and one licensee, no
# one else), 普通实施许可 (the licensor may license others too).
LicenceKind = Literal["exclusive", "sole", "non_exclusive"]
Period = Literal["quarterly", "half_yearly", "yearly"]
PERIOD_MONTHS: Final[dict[Period, int]] = {"quarterly": 3, "half_yearly": 6, "yearly": 12}
SetKind = Literal["sale", "sale_and_licence_back", "exclusive", "sole", "non_exclusive"]

T = TypeVar("T", bound=msgspec.Struct)


# --- what is offered ----------------------------------------------------------------------


class _Security(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="kind"
):
    """What stands behind a licensee's payments, told apart by `kind`."""


class NoSecurity(_Security, frozen=True, tag="none"):
    """Nothing stands behind the licensee's promise but the licensee."""


class Deposit(_Security, frozen=True, tag="deposit"):
    """A performance deposit (履约保证金) held for the licensor; drawn on, it is restored."""

    amount_fen: PositiveFen


class BankGuarantee(_Security, frozen=True, tag="bank_guarantee"):
    """A bank's guarantee (银行保函) of each payment up to its amount, until its expiry."""

    amount_fen: PositiveFen
    expiry: date  # the last day a payment falling due is covered


Security = NoSecurity | Deposit | BankGuarantee


class LicenceTerms(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a licence grants and what it pays. Royalties are forecast per year; payments
    fall at the end of each payment period counted from `term_start`."""

    kind: LicenceKind
    field_of_use: Text
    territory: Text
    term_start: date
    term_end: date  # the licence's last day
    upfront_fen: Fen = 0  # paid on `term_start`
    royalty_rate_bp: Share = 0  # of net sales
    forecast_net_sales_fen: Fen = 0  # a year
    per_unit_fen: Fen = 0
    forecast_units: Units = 0  # a year
    minimum_annual_fen: Fen = 0
    period: Period = "yearly"
    security: Security = NoSecurity()


class LicenceOffer(LicenceTerms, frozen=True, kw_only=True, forbid_unknown_fields=True):
    id: Ref
    licensee: Text  # who offers; two offers of one licensee are alternatives


class BuyBack(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The pledgor may buy the patent back from the buyer at `price_fen` until `until`."""

    until: date
    price_fen: PositiveFen


class SaleAndLicenceBack(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A buyer pays `price_fen` now and licenses the patent back to the pledgor. The
    licence back's royalties and any buy-back price are paid to the buyer, not the bank:
    they are terms of the deal, not part of its value to the bank."""

    id: Ref
    buyer: Text
    price_fen: PositiveFen
    licence_back: LicenceTerms
    buy_back: tuple[BuyBack, ...] = ()


class Bid(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The auction's top bid: cash now."""

    id: Ref = "bid"
    bidder: Text
    amount_fen: PositiveFen


Offer = LicenceOffer | SaleAndLicenceBack | Bid


# --- the bank's policy ----------------------------------------------------------------------


class Spreads(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Credit spread over the discount rate by the security behind a payment (docs/rules.md
    §Licensing): an unsecured promise of a firm that has just defaulted on its bank loan
    4 %, a restorable deposit 2 %, a bank's guarantee 0 (a bank's credit is what the
    discount rate already prices)."""

    none_bp: YearlyRate = 400
    deposit_bp: YearlyRate = 200
    bank_guarantee_bp: YearlyRate = 0


class ValuationPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The bank's numbers for valuing licences (docs/rules.md §Licensing)."""

    discount_rate_bp: YearlyRate = 800
    spreads: Spreads = Spreads()
    # How much of the royalties expected above the minimum the bank counts on.
    credibility_bp: Share = 5_000
    # The hammer stands unless a licence set is worth at least this much more than the bid.
    margin_bp: Share = 1_000


# --- the explanation ------------------------------------------------------------------------


class Valued(msgspec.Struct, frozen=True, kw_only=True):
    """An offer's present value and the lines that make it up: each line is a catalog key
    (`licensing.line.*`) with its numbers, its value in `pv_fen`; `total_fen` is their sum."""

    offer_id: str
    total_fen: int
    lines: list[Line]


class ValuedSet(msgspec.Struct, frozen=True, kw_only=True):
    kind: SetKind
    members: tuple[str, ...]  # offer ids
    pv_fen: int
    values: tuple[Valued, ...]
    is_bid: bool = False


class Comparison(msgspec.Struct, frozen=True, kw_only=True):
    """Every set ranked by present value (ties: sales first, then in the order given), the
    set that wins, and why (`licensing.reason.*`)."""

    sets: tuple[ValuedSet, ...]
    winner: ValuedSet | None
    reason: Line


# --- checks ---------------------------------------------------------------------------------


def _within(prefix: str, field: str | None) -> str | None:
    if not prefix:
        return field
    return f"{prefix}.{field}" if field else prefix


def checked(value: T, prefix: str = "") -> T:
    """`value` again, its constraints checked (msgspec checks them only when converting, not
    when a Struct is built in code); Invalid names the field at fault (`term_end`,
    `security.amount_fen`, under `prefix`)."""
    from market.problems import validation

    try:
        out = msgspec.convert(
            msgspec.to_builtins(value, builtin_types=(date,)), type(value), strict=True
        )
    except msgspec.ValidationError as exc:
        field, code, params = validation(str(exc))
        raise Invalid(code, field=_within(prefix, field), **params) from exc
    return out


def parse(raw: object, as_type: type[T], prefix: str = "") -> T:
    """A policy, bid or offer from submitted JSON, its constraints checked; Invalid names
    the field by its path (`security.expiry`)."""
    from market.problems import validation

    try:
        value = msgspec.convert(raw, as_type)
    except msgspec.ValidationError as exc:
        field, code, params = validation(str(exc))
        raise Invalid(code, field=_within(prefix, field), **params) from exc
    if isinstance(value, LicenceTerms | SaleAndLicenceBack):
        _check_terms(value, prefix)
    if isinstance(value, ValuationPolicy):
        check_policy(value)
    return value


def check_policy(policy: ValuationPolicy) -> None:
    """A better security never costs a higher spread: guarantee ≤ deposit ≤ none."""
    s = checked(policy).spreads
    if not s.bank_guarantee_bp <= s.deposit_bp <= s.none_bp:
        raise Invalid("licensing_spreads_not_ordered", field="spreads")


def _check_terms(value: LicenceTerms | SaleAndLicenceBack, prefix: str = "") -> None:
    """The checks of one offer that need no date from outside."""
    if isinstance(value, SaleAndLicenceBack):
        inner = _within(prefix, "licence_back") or "licence_back"
        _check_terms(value.licence_back, inner)
        last: date | None = None
        for i, step in enumerate(value.buy_back):
            field = _within(prefix, f"buy_back[{i}].until")
            if last is not None and step.until <= last:
                raise Invalid("buy_back_dates_not_ascending", field=field)
            if not value.licence_back.term_start <= step.until <= value.licence_back.term_end:
                raise Invalid(
                    "buy_back_outside_licence_back",
                    field=field,
                    term_start=value.licence_back.term_start.isoformat(),
                    term_end=value.licence_back.term_end.isoformat(),
                )
            last = step.until
        return
    if value.term_end < value.term_start:
        raise Invalid(
            "licence_term_ends_before_start",
            field=_within(prefix, "term_end"),
            term_start=value.term_start.isoformat(),
        )
    security = value.security
    if isinstance(security, BankGuarantee) and security.expiry < value.term_start:
        raise Invalid(
            "licence_guarantee_expires_before_start",
            field=_within(prefix, "security.expiry"),
            term_start=value.term_start.isoformat(),
        )
    pays = (
        value.upfront_fen or value.minimum_annual_fen or value.royalty_rate_bp or value.per_unit_fen
    )
    if isinstance(value, LicenceOffer) and not pays:
        raise Invalid("licence_pays_nothing", field=_within(prefix, "upfront_fen"))


def check_term(terms: LicenceTerms, today: date, patent_expiry: date, prefix: str = "") -> None:
    """A licence starts today or later and never runs past the patent's last day (专利法
    art. 42: a licence of an expired patent licenses nothing)."""
    if terms.term_start < today:
        raise Invalid(
            "licence_starts_before_today",
            field=_within(prefix, "term_start"),
            today=today.isoformat(),
        )
    if terms.term_end > patent_expiry:
        raise Invalid(
            "licence_term_past_patent_expiry",
            field=_within(prefix, "term_end"),
            term_end=terms.term_end.isoformat(),
            expiry=patent_expiry.isoformat(),
        )


def check_offer(offer: Offer, today: date, patent_expiry: date, prefix: str = "") -> Offer:
    """Every check of one offer: its constraints, its own dates, and its term against
    today and the patent's expiry."""
    offer = checked(offer, prefix)
    if isinstance(offer, LicenceOffer | SaleAndLicenceBack):
        _check_terms(offer, prefix)
    if isinstance(offer, LicenceOffer):
        check_term(offer, today, patent_expiry, prefix)
    elif isinstance(offer, SaleAndLicenceBack):
        check_term(offer.licence_back, today, patent_expiry, _within(prefix, "licence_back") or "")
    return offer


# --- patent terms ---------------------------------------------------------------------------

_KINDS: Final[tuple[PatentType, ...]] = ("invention", "utility_model", "design")
# ZC 0006-2003 §4.2: 8 and 9 are PCT applications entering the national phase; their
# number carries the year of entry, their term counts from the international filing date
# (专利法 art. 42 with 实施细则 on international applications), which can be years earlier.
_PCT_DIGITS: Final = frozenset("89")


def patent_expiry(application_number_or_kind: str, filing_date: date) -> date:
    """The last day of a patent's protection (专利法 art. 42: invention 20 years, utility
    model 10, design 15 from the filing date, 10 when filed before 2021-06-01), given its
    application number or its kind. A number must agree with the filing date's year (a PCT
    national-phase number may be of a later year)."""
    for kind in _KINDS:
        if application_number_or_kind == kind:
            return patent_term_end(kind, filing_date)
    try:
        body = patent_application_number(application_number_or_kind).split(".")[0]
    except BadValue as exc:
        raise BadValue(exc.code, field="application_number", **exc.params) from exc
    year = application_year(application_number_or_kind)
    digit = body[4] if len(body) == 12 else body[2]
    if filing_date.year > year or (digit not in _PCT_DIGITS and filing_date.year != year):
        raise Invalid("patent_filing_year_mismatch", field="filing_date", year=year)
    return patent_term_end(patent_type_code(application_number_or_kind), filing_date)


# --- present value --------------------------------------------------------------------------


def round_fen(amount: Fraction) -> int:
    """Half-up to the fen, as `market.money.percent_of` rounds (amounts here are ≥ 0)."""
    return math.floor(amount + Fraction(1, 2))


def _periods_until(today: date, day: date, months: int) -> int:
    """Whole payment periods from today until `day`, a part period counting as whole (money
    is never counted earlier than it comes)."""
    n = 0
    while add_months(today, n * months) < day:
        n += 1
    return n


def _cover(policy: ValuationPolicy, security: Security, due: date) -> tuple[int, int]:
    """(the spread, the amount covered) for a payment falling due on `due`."""
    s = policy.spreads
    if isinstance(security, Deposit):
        return s.deposit_bp, security.amount_fen
    if isinstance(security, BankGuarantee) and due <= security.expiry:
        return s.bank_guarantee_bp, security.amount_fen
    return s.none_bp, 0


def _discounted(
    amount: Fraction,
    *,
    terms: LicenceTerms,
    policy: ValuationPolicy,
    due: date,
    periods: int,
) -> tuple[Fraction, dict[str, Any]]:
    """`amount` due on `due`, `periods` payment periods from today: the part the security
    covers (up to its amount) at the rate plus its spread, the rest at the rate plus the
    spread of no security. Returns the exact value and the line's numbers."""
    months = PERIOD_MONTHS[terms.period]
    spread_bp, cover = _cover(policy, terms.security, due)
    secured_bp = policy.discount_rate_bp + spread_bp
    unsecured_bp = policy.discount_rate_bp + policy.spreads.none_bp
    covered = min(Fraction(cover), amount)

    def factor(rate_bp: int) -> Fraction:
        per_period = Fraction(rate_bp * months, BP * MONTHS_A_YEAR)
        return 1 / (1 + per_period) ** periods

    value = covered * factor(secured_bp) + (amount - covered) * factor(unsecured_bp)
    params: dict[str, Any] = {
        "due": due.isoformat(),
        "periods": periods,
        "per_year": MONTHS_A_YEAR // months,
        "covered_fen": round_fen(covered),
        "secured_rate_bp": secured_bp,
        "unsecured_rate_bp": unsecured_bp,
    }
    return value, params


def _licence_lines(
    terms: LicenceTerms, policy: ValuationPolicy, today: date, patent_expiry: date
) -> list[Line]:
    months = PERIOD_MONTHS[terms.period]
    start_periods = _periods_until(today, terms.term_start, months)
    lines: list[Line] = []
    if terms.upfront_fen:
        upfront = Fraction(terms.upfront_fen)
        if start_periods == 0:
            lines.append(
                Line(
                    key="licensing.line.upfront_now",
                    params={"amount_fen": terms.upfront_fen, "pv_fen": terms.upfront_fen},
                )
            )
        else:
            value, params = _discounted(
                upfront, terms=terms, policy=policy, due=terms.term_start, periods=start_periods
            )
            lines.append(
                Line(
                    key="licensing.line.upfront",
                    params={"amount_fen": terms.upfront_fen, **params, "pv_fen": round_fen(value)},
                )
            )

    # Royalties accrue while both the licence and the patent last.
    ends = min(terms.term_end, patent_expiry)
    share_of_year = Fraction(months, MONTHS_A_YEAR)
    minimum = terms.minimum_annual_fen * share_of_year
    expected = (
        Fraction(terms.royalty_rate_bp * terms.forecast_net_sales_fen, BP)
        + terms.per_unit_fen * terms.forecast_units
    ) * share_of_year
    credibility = Fraction(policy.credibility_bp, BP)
    k = 1
    while (begins := add_months(terms.term_start, (k - 1) * months)) <= ends:
        # Payments fall at the end of each period; a last part period is paid pro rata by
        # days, at that period's usual end.
        due = add_months(terms.term_start, k * months) - timedelta(days=1)
        period_days = (due - begins).days + 1
        days = (min(due, ends) - begins).days + 1
        part = Fraction(days, period_days)
        guaranteed = minimum * part
        forecast = expected * part
        excess = max(Fraction(0), forecast - guaranteed)
        credible = excess * credibility
        amount = guaranteed + credible
        if amount:
            value, params = _discounted(
                amount, terms=terms, policy=policy, due=due, periods=start_periods + k
            )
            lines.append(
                Line(
                    key="licensing.line.period",
                    params={
                        "period": k,
                        "days": days,
                        "period_days": period_days,
                        "minimum_fen": round_fen(guaranteed),
                        "expected_fen": round_fen(forecast),
                        "excess_fen": round_fen(excess),
                        "credibility_bp": policy.credibility_bp,
                        "credible_fen": round_fen(credible),
                        "amount_fen": round_fen(amount),
                        **params,
                        "pv_fen": round_fen(value),
                    },
                )
            )
        k += 1
    return lines


def present_value(
    offer: Offer, policy: ValuationPolicy, today: date, patent_expiry: date
) -> Valued:
    """What `offer` is worth to the bank today, line by line (docs/rules.md §Licensing).

    `patent_expiry` is the last day of protection of the licensed patent — of several, the
    earliest (`patent_expiry()`). An offer whose term runs past it is refused
    (`licence_term_past_patent_expiry`, field `term_end`)."""
    check_policy(policy)
    offer = check_offer(offer, today, patent_expiry)
    if isinstance(offer, Bid):
        lines = [
            Line(
                key="licensing.line.bid",
                params={"amount_fen": offer.amount_fen, "pv_fen": offer.amount_fen},
            )
        ]
    elif isinstance(offer, SaleAndLicenceBack):
        back = offer.licence_back
        lines = [
            Line(
                key="licensing.line.sale_price",
                params={"amount_fen": offer.price_fen, "pv_fen": offer.price_fen},
            ),
            Line(
                key="licensing.line.licence_back",
                params={
                    "term_end": back.term_end.isoformat(),
                    "buy_backs": len(offer.buy_back),
                    "pv_fen": 0,
                },
            ),
        ]
    else:
        lines = _licence_lines(offer, policy, today, patent_expiry)
    total = sum(int(line.params["pv_fen"]) for line in lines)
    return Valued(offer_id=offer.id, total_fen=total, lines=lines)


# --- sets that can stand together -----------------------------------------------------------


def conflict(a: Offer, b: Offer) -> str | None:
    """Why two offers cannot both be taken (a catalog key), or None if they can.

    A sale leaves nothing to license; an exclusive licence (独占) excludes everyone else,
    the licensor too, and a sole licence (排他) every other licensee (the technology-contract
    interpretation, art. 25); non-exclusive licences (普通) stand together, one per
    licensee — two offers of one licensee are alternatives.
    """
    for x in (a, b):
        if isinstance(x, Bid | SaleAndLicenceBack):
            return "licensing.conflict.sale"
    assert isinstance(a, LicenceOffer) and isinstance(b, LicenceOffer)
    for x in (a, b):
        if x.kind != "non_exclusive":
            return f"licensing.conflict.{x.kind}"
    if a.licensee == b.licensee:
        return "licensing.conflict.same_licensee"
    return None


def compatible(offers: Sequence[Offer]) -> bool:
    """Every two offers of the set can stand together."""
    return all(conflict(a, b) is None for i, a in enumerate(offers) for b in offers[i + 1 :])


def _set_kind(offer: Offer) -> SetKind:
    if isinstance(offer, Bid):
        return "sale"
    if isinstance(offer, SaleAndLicenceBack):
        return "sale_and_licence_back"
    return offer.kind


def beats_margin(pv_fen: int, bid_fen: int, margin_bp: int) -> bool:
    """`pv_fen` is at least the bid plus the margin (exact, in integers)."""
    return pv_fen * BP >= bid_fen * (BP + margin_bp)


def compare(
    bid: Bid | None,
    offers: Sequence[LicenceOffer | SaleAndLicenceBack],
    policy: ValuationPolicy,
    today: date,
    patent_expiry: date,
) -> Comparison:
    """Rank every set of offers that can stand together by present value, and decide.

    The sets: the bid alone; each sale-and-licence-back alone; each exclusive or sole
    licence alone; the non-exclusive licences together (the best offer of each licensee:
    their values add up). The hammer stands unless another set is worth at least the bid
    plus the margin (`ValuationPolicy.margin_bp`); with no bid, the most valuable set wins.
    An invalid offer is refused naming it (`offers[1].term_end`)."""
    check_policy(policy)
    seen: set[str] = set()
    valued: list[tuple[Offer, Valued]] = []
    entries: list[tuple[str, Offer]] = [("bid", bid)] if bid is not None else []
    entries += [(f"offers[{i}]", offer) for i, offer in enumerate(offers)]
    for prefix, offer in entries:
        if offer.id in seen:
            raise Invalid("offer_id_twice", field=f"{prefix}.id", id=offer.id)
        seen.add(offer.id)
        try:
            valued.append((offer, present_value(offer, policy, today, patent_expiry)))
        except Invalid as exc:
            raise Invalid(exc.code, field=_within(prefix, exc.field), **exc.params) from exc

    sets: list[ValuedSet] = []
    best_by_licensee: dict[str, Valued] = {}
    order: list[str] = []
    for offer, value in valued:
        if isinstance(offer, LicenceOffer) and offer.kind == "non_exclusive":
            held = best_by_licensee.get(offer.licensee)
            if held is None:
                order.append(offer.licensee)
            if held is None or value.total_fen > held.total_fen:
                best_by_licensee[offer.licensee] = value
            continue
        sets.append(
            ValuedSet(
                kind=_set_kind(offer),
                members=(offer.id,),
                pv_fen=value.total_fen,
                values=(value,),
                is_bid=isinstance(offer, Bid),
            )
        )
    if order:
        together = tuple(best_by_licensee[name] for name in order)
        sets.append(
            ValuedSet(
                kind="non_exclusive",
                members=tuple(v.offer_id for v in together),
                pv_fen=sum(v.total_fen for v in together),
                values=together,
            )
        )
    # Highest value first; on a tie a sale (cash now) before a licence, then as given.
    ranked = tuple(
        sorted(sets, key=lambda s: (-s.pv_fen, s.kind not in ("sale", "sale_and_licence_back")))
    )
    others = [s for s in ranked if not s.is_bid]
    if bid is None:
        if not others:
            return Comparison(sets=ranked, winner=None, reason=Line(key="licensing.reason.none"))
        best = others[0]
        return Comparison(
            sets=ranked,
            winner=best,
            reason=Line(key="licensing.reason.no_bid", params={"best_fen": best.pv_fen}),
        )
    hammer = next(s for s in ranked if s.is_bid)
    threshold = -(-bid.amount_fen * (BP + policy.margin_bp) // BP)  # rounded up to the fen
    params: dict[str, Any] = {
        "bid_fen": bid.amount_fen,
        "margin_bp": policy.margin_bp,
        "threshold_fen": threshold,
    }
    if others and beats_margin(others[0].pv_fen, bid.amount_fen, policy.margin_bp):
        best = others[0]
        reason = Line(
            key="licensing.reason.beats_hammer", params={"best_fen": best.pv_fen, **params}
        )
        return Comparison(sets=ranked, winner=best, reason=reason)
    if others:
        reason = Line(
            key="licensing.reason.hammer_stands", params={"best_fen": others[0].pv_fen, **params}
        )
    else:
        reason = Line(key="licensing.reason.only_bid", params=params)
    return Comparison(sets=ranked, winner=hammer, reason=reason)
