"""The pages of taking part: a buyer registers from the lot page and follows its auctions
on "我的竞拍" (BID); the operator confirms received deposits on /operator/deposits
(OPERATE)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from auctions import deposits, registration
from auctions.deposits import ConfirmDeposit
from auctions.registration import RegisterForLot
from market import problems
from market.accounts.models import Viewer
from market.accounts.permissions import BID, OPERATE, allow
from market.deps import ActDep, ClockDep, MeDep, PoolDep, ViewerDep
from market.errors import AppError, NotFound
from market.money import MAX_FEN
from market.web import Form, language, page


class AgreementPages(Controller):
    include_in_schema = False

    @get("/agreements/{version:str}", operation_id="web_agreement")
    async def show(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        viewer: ViewerDep,
        version: FromPath[str],
    ) -> Template:
        """A version of the bidding agreement, as a bidder accepts it."""
        async with pool.acquire() as conn:
            agreement = await registration.agreement(conn, version)
        return page(request, "auctions/agreement.html", viewer, agreement=agreement)


class BuyerPages(Controller):
    include_in_schema = False
    guards = [allow(BID)]

    @post("/lots/{reference:str}/register", operation_id="web_register_for_lot")
    async def register(
        self,
        request: Request[Any, Any, State],
        act: ActDep,
        me: MeDep,
        reference: FromPath[str],
    ) -> Redirect | Template:
        """报名参拍 from the lot page; back to the lot, whose panel shows how to pay. The
        ticked box accepts the bidding agreement whose version the form carries."""
        form = await request.form()
        accepted = form.get("accept_agreement") == "yes"
        version = str(form.get("agreement_version") or "") if accepted else None
        try:
            await act(
                registration.register_for_lot,
                RegisterForLot(reference=reference, agreement_version=version or None),
            )
        except NotFound:
            raise
        except AppError as exc:
            # The lot page has no room for it and a bare error page would not say why:
            # a refused buyer must know (barred after a default, registration closed).
            return page(
                request,
                "auctions/registration_refused.html",
                me,
                status_code=exc.status,
                code=exc.code,
                message=problems.text(exc, language(request, me)),
                reference=reference,
            )
        return Redirect(f"/lots/{quote(reference, safe='')}#registration")

    @get("/my/auctions", operation_id="web_my_auctions")
    async def my_auctions(
        self, request: Request[Any, Any, State], pool: PoolDep, clock: ClockDep, me: MeDep
    ) -> Template:
        """我的竞拍: registrations, deposits, bids, wins and payments due."""
        now = clock.now()
        rows = await registration.my_auctions(pool, me.org_id, now)
        return page(
            request,
            "auctions/my_auctions.html",
            me,
            rows=rows,
            due=[r for r in rows if r.payment_due],
            now=now,
        )


class OperatorDepositPages(Controller):
    path = "/operator/deposits"
    include_in_schema = False
    guards = [allow(OPERATE)]

    @get("", operation_id="web_operator_deposits")
    async def deposits_page(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        confirmed: FromQuery[str | None] = None,
        again: FromQuery[bool] = False,
        released: FromQuery[bool] = False,
    ) -> Template:
        """The deposits awaiting confirmation, with the form to confirm one."""
        return await _deposits(
            request, pool, me, confirmed=confirmed, again=again, released=released
        )

    @post("/confirm", operation_id="web_operator_confirm_deposit")
    async def confirm(
        self, request: Request[Any, Any, State], pool: PoolDep, act: ActDep, me: MeDep
    ) -> Redirect | Template:
        form = await Form.read(request, me, fields={"amount_fen": "amount"})
        if not form.text("transfer_reference"):
            form.fail("transfer_reference", "required")
        amount = form.yuan("amount", max_fen=MAX_FEN)
        data = {"transfer_reference": form.text("transfer_reference"), "amount_fen": amount}
        try:
            done = await form.submit(
                lambda: act(deposits.confirm_deposit, msgspec.convert(data, ConfirmDeposit))
            )
        except NotFound as exc:
            # A reference typed that no registration has: said beside the field.
            form.refuse(exc)
            done = None
        if done is None:
            return await _deposits(
                request,
                pool,
                me,
                status_code=form.status,
                errors=form.errors,
                values=form.values,
            )
        query = {"confirmed": done.registration.transfer_reference}
        if not done.changed:
            query["again"] = "true"
        if done.released:
            query["released"] = "true"
        return Redirect(f"/operator/deposits?{urlencode(query)}")


async def _deposits(
    request: Request[Any, Any, State],
    pool: Any,
    me: Viewer,
    *,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    confirmed: str | None = None,
    again: bool = False,
    released: bool = False,
) -> Template:
    return page(
        request,
        "auctions/operator_deposits.html",
        me,
        status_code=status_code,
        awaiting=await deposits.awaiting(pool),
        errors=errors or {},
        values=values or {},
        confirmed=confirmed,
        again=again,
        released=released,
    )
