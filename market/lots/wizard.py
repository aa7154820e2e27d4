"""The lot wizard: from an open case to a published lot on one page.

Everything a lot needs that the case already knows is filled in from it: its assets (those
in no other live lot), its valuation, a starting price and deposit inside the rules, the
default increment, and an opening on the first Beijing-time morning after the announcement
period. The case's disclosure documents are the lot's by reference (a lot publishes what
its case discloses, docs/rules.md §Disposal cases and valuation): the wizard lists them,
nothing is uploaded again. The bank checks, changes what it wants and publishes.

It creates the lot only through the lots' own commands (services.draft_lot, then
services.publish_lot): a publication the rules refuse leaves the draft, without a lot
number, on the lot's page with the reasons.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import asyncpg
import msgspec
from msgspec import Meta

from market.cases.models import CaseForLot, DocumentOut
from market.cases.services import case_for_lot, document_out
from market.db import Queries
from market.errors import Invalid
from market.lots.forms import percent_bp
from market.lots.terms import BP, TermsPolicy, default_increment
from market.money import percent_of
from market.web import Form

Q = Queries("lots")
QC = Queries("cases")


class Suggestions(msgspec.Struct, frozen=True, kw_only=True):
    """What the wizard proposes; the bank may change each, and the rules of §Lot terms
    (docs/rules.md) judge the result as they judge any lot."""

    # The whole valuation: at or above the first round's floor (70 %, §Lot terms).
    start_of_valuation_bp: Annotated[int, Meta(ge=7000, le=BP)] = BP
    # The deposit as a share of the start: 10 %, inside the 5–20 % of §Lot terms.
    deposit_bp: Annotated[int, Meta(ge=500, le=2000)] = 1000
    # Bidding opens at this Beijing hour on the first day the announcement period allows
    # (30 days for IP, §Lot terms), a margin after it for the time the bank takes.
    opening_hour: Annotated[int, Meta(ge=0, le=23)] = 10
    margin: timedelta = timedelta(hours=1)
    # The bidding window: the rules' least (24 hours, §Lot terms).
    window_hours: Annotated[int, Meta(ge=24, le=24 * 30)] = 24


SUGGESTIONS = Suggestions()


class Prefill(msgspec.Struct, frozen=True, kw_only=True):
    case: CaseForLot
    assets: list[Any]  # the case's assets (catalogue_inputs rows)
    taken: dict[int, str]  # asset id → the live lot that offers it already
    documents: list[DocumentOut]


async def prefill(pool: asyncpg.Pool, bank_org_id: int, case_id: int) -> Prefill:
    """The case, its assets (and which are in another live lot), its documents."""
    async with pool.acquire() as conn:
        case = await case_for_lot(conn, bank_org_id, case_id)
        assets = list(await conn.fetch(Q.catalogue_inputs, case.asset_ids, bank_org_id))
        taken = {
            r["asset_id"]: r["reference"]
            for r in await conn.fetch(Q.assets_in_other_lots, case.asset_ids, 0)
        }
        documents = [
            document_out(d) for d in await conn.fetch(QC.case_documents, bank_org_id, case_id)
        ]
    return Prefill(case=case, assets=assets, taken=taken, documents=documents)


def _yuan(fen: int) -> str:
    return f"{fen / 100:.2f}"


def _local(value: datetime, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def opening(
    policy: TermsPolicy, now: datetime, zone: ZoneInfo, s: Suggestions = SUGGESTIONS
) -> datetime:
    """The first `opening_hour` (Beijing time) at or after the earliest opening the
    announcement period allows for a lot published within `margin` of `now`."""
    earliest = (now + policy.announcement_period + s.margin).astimezone(zone)
    candidate = datetime.combine(earliest.date(), time(s.opening_hour), tzinfo=zone)
    return candidate if candidate >= earliest else candidate + timedelta(days=1)


def values(
    filled: Prefill,
    policy: TermsPolicy,
    now: datetime,
    zone: ZoneInfo,
    s: Suggestions = SUGGESTIONS,
) -> dict[str, str]:
    """The wizard's fields, filled in from the case: strings as the form shows them."""
    free = [a for a in filled.assets if a["id"] not in filled.taken]
    titles = [a["title"] for a in free] or [""]
    title = f"{titles[0]} 等{len(titles)}项" if len(titles) > 1 else titles[0]
    out = {"title": title[:300], "deposit_pct": f"{s.deposit_bp / 100:g}"}
    case = filled.case
    if case.valuation_fen is not None and free:
        all_free = len(free) == len(case.asset_ids)
        share = (
            case.valuation_fen if all_free else sum(case.asset_shares.get(a["id"], 0) for a in free)
        )
        start = -(-percent_of(share, s.start_of_valuation_bp) // 100) * 100  # whole yuan, up
        out["start_price"] = _yuan(start)
        out["increment"] = _yuan(default_increment(policy, start))
    starts = opening(policy, now, zone, s)
    out["bidding_starts_at"] = _local(starts, zone)
    out["bidding_ends_at"] = _local(starts + timedelta(hours=s.window_hours), zone)
    return out


def chosen(filled: Prefill) -> list[int]:
    """The assets ticked at first: every asset of the case not in another live lot."""
    return [a["id"] for a in filled.assets if a["id"] not in filled.taken]


def deposit_from_pct(form: Form) -> None:
    """The wizard asks the deposit as a percentage of the start: the editor's `deposit`
    field (yuan) is computed from the two, half-up to the fen, so the rest of the form is
    read as the editor's (forms.draft), the one way a lot form is read."""
    bp = percent_bp(form, "deposit_pct")
    if bp is None:
        if "deposit_pct" not in form.errors:
            form.fail("deposit_pct", "required")
        return
    start = form.yuan("start_price", max_fen=2**62, required=False)
    if start is None:
        # The start price is missing or wrong, and named so: the deposit, a share of it,
        # waits for it (a placeholder, never written: the form has an error or the start
        # price's "required" to come).
        form.values["deposit"] = "1"
        return
    if bp <= 0:
        form.refuse(Invalid("not_a_percentage", field="deposit_pct"))
        return
    form.values["deposit"] = _yuan(percent_of(start, bp))
