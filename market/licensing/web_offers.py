"""The licence offers' pages (docs/rules.md §Licence offers and decision), thin adapters
over the commands the API runs (market/licensing/api_offers.py).

An offeror (a buyer, an acquirer, the pledgor: MAKE_OFFERS) registers for a lot and makes
its offer on /lots/{reference}/offer, and follows and withdraws its offers on /my/offers.
The bank compares the top bid with every offer and decides on /bank/lots/{id}/offers; a
pool that bore loss on the lot's loan reads the same page, without the form
(READ_OFFER_DECISIONS; deciding is MANAGE_LOTS, the bank's).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import asyncpg
import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from auctions import registration
from auctions.registration import RegisterForLot, Registration, current_agreement
from market import i18n
from market.accounts.models import Viewer
from market.accounts.permissions import (
    MAKE_OFFERS,
    MANAGE_LOTS,
    OPERATE,
    READ_OFFER_DECISIONS,
    allow,
    refusal,
)
from market.catalogue import services as catalogue
from market.catalogue.models import LotDetail
from market.deps import ActDep, ClockDep, MeDep, PoolDep, SettingsDep
from market.errors import NotFound
from market.licensing import deciding, offer_form, offers
from market.licensing.deciding import Decide, DecideLot, DecisionOut
from market.licensing.offers import OfferIn, OfferRef, SubmitOffer
from market.licensing.value import Valued
from market.lots.forms import placed
from market.lots.services import policy_for
from market.pools.rule_text import say
from market.web import Form, language, page

DECISION_FIELDS = frozenset({"offer_ids", "reason"})


async def _registration(pool: asyncpg.Pool, org_id: int, reference: str) -> Registration | None:
    """The organisation's registration for the lot's current round, if any."""
    async with pool.acquire() as conn:
        found = await conn.fetchval(registration.Q.current_registration, reference, org_id)
        return None if found is None else await registration.load(conn, found, org_id)


async def _offer_page(
    request: Request[Any, Any, State],
    pool: asyncpg.Pool,
    me: Viewer,
    reference: str,
    now: Any,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    lot: LotDetail = await catalogue.lot_detail(pool, reference)
    reg = await _registration(pool, me.org_id, reference)
    agreement = None
    if reg is None:
        async with pool.acquire() as conn:
            agreement = await current_agreement(conn, now)
    return page(
        request,
        "licensing/offer.html",
        me,
        status_code=status_code,
        lot=lot,
        offers_block=lot.terms.offers,
        open=lot.status in ("announced", "bidding"),
        registration=reg,
        agreement=agreement,
        values=values or offer_form.defaults(),
        errors=errors or {},
        kinds=offer_form.KINDS,
        periods=offer_form.PERIODS,
        securities=offer_form.SECURITIES,
    )


class OfferorPages(Controller):
    include_in_schema = False
    guards = [allow(MAKE_OFFERS)]

    @get("/lots/{reference:str}/offer", operation_id="web_offer_form")
    async def form(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        me: MeDep,
        reference: FromPath[str],
    ) -> Template:
        """Register for the lot, pay the deposit, then make a licence offer or a sale and
        licence back."""
        return await _offer_page(request, pool, me, reference, clock.now())

    @post("/lots/{reference:str}/offerors", operation_id="web_register_to_offer")
    async def register(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        clock: ClockDep,
        me: MeDep,
        reference: FromPath[str],
    ) -> Template | Redirect:
        """报名 to make offers, accepting the bidding agreement the form carries."""
        form = await Form.read(request, me, fields={"reference": "register"})
        accepted = form.text("accept_agreement") == "yes"
        version = form.text("agreement_version") if accepted else ""
        data = RegisterForLot(reference=reference, agreement_version=version or None)
        done = await form.submit(lambda: act(offers.register_to_offer, data))
        if done is None:
            errors = placed(form.errors, frozenset(), other="register")
            return await _offer_page(
                request, pool, me, reference, clock.now(), errors=errors, status_code=form.status
            )
        return Redirect(f"/lots/{quote(reference, safe='')}/offer#registration")

    @post("/lots/{reference:str}/offer", operation_id="web_submit_offer")
    async def submit(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        clock: ClockDep,
        me: MeDep,
        reference: FromPath[str],
    ) -> Template | Redirect:
        form = await Form.read(request, me, fields=offer_form.FIELDS)
        data = offer_form.offer(form)
        made = await form.submit(
            lambda: act(
                offers.submit_offer,
                SubmitOffer(reference=reference, offer=msgspec.convert(data, OfferIn)),
            )
        )
        if made is None:
            return await _offer_page(
                request,
                pool,
                me,
                reference,
                clock.now(),
                values=form.values,
                errors=placed(form.errors, offer_form.FIELDS_SHOWN),
                status_code=form.status,
            )
        return Redirect(f"/my/offers?made={made.id}")

    @get("/my/offers", operation_id="web_my_offers")
    async def mine(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        made: FromQuery[int | None] = None,
        withdrawn: FromQuery[int | None] = None,
    ) -> Template:
        """我的报价: the organisation's offers, newest first, with their status."""
        return page(
            request,
            "licensing/my_offers.html",
            me,
            offers=await offers.list_offers(pool, me.org_id, limit=200),
            made=made,
            withdrawn=withdrawn,
            errors={},
        )

    @post("/my/offers/{offer_id:int}/withdraw", operation_id="web_withdraw_offer")
    async def withdraw(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        me: MeDep,
        offer_id: FromPath[int],
    ) -> Template | Redirect:
        form = await Form.read(request, me)
        done = await form.submit(lambda: act(offers.withdraw_offer, OfferRef(offer_id=offer_id)))
        if done is None:
            return page(
                request,
                "licensing/my_offers.html",
                me,
                status_code=form.status,
                offers=await offers.list_offers(pool, me.org_id, limit=200),
                made=None,
                withdrawn=None,
                errors={offer_id: next(iter(form.errors.values()), "")},
            )
        return Redirect(f"/my/offers?withdrawn={offer_id}")


# --- the bank's comparison and decision --------------------------------------------------


def comparison_view(lang: i18n.Lang, out: DecisionOut) -> dict[str, Any]:
    """The comparison as the page reads it: each offer's and the bid's present value with
    its lines in `lang`, the sets with their members named, the reason."""
    valued: dict[str, Valued] = {}
    for s in out.comparison.sets:
        for v in s.values:
            valued.setdefault(v.offer_id, v)
    bid = next((s.values[0] for s in out.comparison.sets if s.is_bid), None)

    def lines(v: Valued | None) -> list[str]:
        return [] if v is None else [say(lang, line) for line in v.lines]

    names = {line.key: line for line in out.offers}
    winner = out.comparison.winner
    return {
        "bid": bid,
        "bid_lines": lines(bid),
        "rows": [
            {"offer": o, "valued": valued.get(o.key), "lines": lines(valued.get(o.key))}
            for o in out.offers
        ],
        "sets": [
            {
                "set": s,
                "members": [names.get(m) for m in s.members],
                "wins": winner is not None and winner.members == s.members,
            }
            for s in out.comparison.sets
        ],
        "reason": say(lang, out.comparison.reason),
    }


async def _decision_page(
    request: Request[Any, Any, State],
    pool: asyncpg.Pool,
    me: Viewer,
    lot_id: int,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    exchange_wide: bool = False,
) -> Template:
    lang = language(request, me)
    try:
        # The operator reads every lot's (None); a bank or a pool its own.
        out = await deciding.get_decision(pool, None if exchange_wide else me.org_id, lot_id)
    except NotFound as exc:
        if exc.code != "no_such_decision":
            raise
        # The lot is the reader's, its round not yet closed with offers standing.
        return page(request, "licensing/decision.html", me, decision=None, lot_id=lot_id)
    may_decide = (
        refusal(MANAGE_LOTS, me.org_kind, me.org_status, me.role) is None
        and out.status == "open"
        and out.lot_status == "deciding"
    )
    return page(
        request,
        "licensing/decision.html",
        me,
        status_code=status_code,
        decision=out,
        lot_id=lot_id,
        view=comparison_view(lang, out),
        may_decide=may_decide,
        values=values or {"reason": "", "offer_ids": []},
        errors=errors or {},
    )


class DecisionPages(Controller):
    include_in_schema = False

    @get(
        "/bank/lots/{lot_id:int}/offers",
        operation_id="web_offer_decision",
        guards=[allow(READ_OFFER_DECISIONS)],
    )
    async def show(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        lot_id: FromPath[int],
    ) -> Template:
        """The top bid and every offer in money of today, the sets that can stand
        together, the winner under the announced margin; the decision form, or the
        decision once made."""
        return await _decision_page(request, pool, me, lot_id)

    @get(
        "/operator/lots/{lot_id:int}/offers",
        operation_id="web_operator_offer_decision",
        guards=[allow(OPERATE)],
    )
    async def operator_show(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        lot_id: FromPath[int],
    ) -> Template:
        """Any lot's comparison and decision, read-only, for the exchange's operator."""
        return await _decision_page(request, pool, me, lot_id, exchange_wide=True)

    @post(
        "/bank/lots/{lot_id:int}/offers",
        operation_id="web_decide_offers",
        guards=[allow(MANAGE_LOTS)],
    )
    async def decide(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        settings: SettingsDep,
        me: MeDep,
        lot_id: FromPath[int],
    ) -> Template | Redirect:
        """No offer ticked: the hammer stands; offers ticked: they are chosen. A reason is
        required either way."""
        form = await Form.read(request, me)
        chosen = form.ids("offer_ids")
        decision = {"offer_ids": chosen, "reason": form.values.get("reason", "")}
        done = await form.submit(
            lambda: act(
                deciding.decide_lot,
                DecideLot(
                    lot_id=lot_id,
                    decision=msgspec.convert(decision, Decide),
                    policy=policy_for(settings),
                ),
            )
        )
        if done is None:
            return await _decision_page(
                request,
                pool,
                me,
                lot_id,
                values={"reason": form.values.get("reason", ""), "offer_ids": chosen},
                errors=placed(form.errors, DECISION_FIELDS),
                status_code=form.status,
            )
        return Redirect(f"/bank/lots/{lot_id}/offers#decision")
