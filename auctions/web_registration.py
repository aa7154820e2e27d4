"""The pages of taking part: a buyer registers from the lot page and follows its auctions
on "我的竞拍"; the operator confirms received deposits on /operator/deposits."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from auctions import deposits, registration
from market.accounts.models import Viewer
from market.deps import ClockDep, PoolDep, ViewerDep
from market.errors import AppError, Conflict, Forbidden, Invalid
from market.money import parse_cny
from market.web import page, require


def _buyer(viewer: Viewer | None) -> Viewer:
    me = require(viewer)
    if me.org_kind not in registration.REGISTERING_KINDS:
        raise Forbidden("only buyers and acquirers take part in auctions")
    return me


def _operator(viewer: Viewer | None) -> Viewer:
    me = require(viewer)
    if me.org_kind != "operator":
        raise Forbidden("only the exchange operator confirms deposits")
    return me


class RegistrationPages(Controller):
    include_in_schema = False

    @post("/lots/{reference:str}/register", operation_id="web_register_for_lot")
    async def register(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        viewer: ViewerDep,
        reference: FromPath[str],
    ) -> Redirect | Template:
        """报名参拍 from the lot page; back to the lot, whose panel shows how to pay."""
        me = require(viewer)
        try:
            await registration.register(
                pool, clock.now(), org_id=me.org_id, user_id=me.user_id, reference=reference
            )
        except (Forbidden, Conflict) as exc:
            # The generic 403 page would not say why; a refused buyer must know.
            return page(
                request,
                "auctions/registration_refused.html",
                me,
                status_code=exc.status,
                code=exc.code,
                message=exc.message,
                reference=reference,
            )
        return Redirect(f"/lots/{quote(reference, safe='')}#registration")

    @get("/my/auctions", operation_id="web_my_auctions")
    async def my_auctions(
        self, request: Request[Any, Any, State], pool: PoolDep, clock: ClockDep, viewer: ViewerDep
    ) -> Template:
        """我的竞拍: registrations, deposits, bids, wins and payments due."""
        me = _buyer(viewer)
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

    @get("/operator/deposits", operation_id="web_operator_deposits")
    async def deposits_page(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        viewer: ViewerDep,
        confirmed: FromQuery[str | None] = None,
        again: FromQuery[bool] = False,
        released: FromQuery[bool] = False,
    ) -> Template:
        """The deposits awaiting confirmation, with the form to confirm one."""
        me = _operator(viewer)
        return await self._deposits(
            request,
            pool,
            me,
            confirmed=confirmed,
            again=again,
            released=released,
        )

    @post("/operator/deposits/confirm", operation_id="web_operator_confirm_deposit")
    async def confirm(
        self, request: Request[Any, Any, State], pool: PoolDep, clock: ClockDep, viewer: ViewerDep
    ) -> Redirect | Template:
        me = _operator(viewer)
        form = await request.form()
        values = {k: str(form.get(k) or "").strip() for k in ("transfer_reference", "amount")}
        try:
            try:
                amount = parse_cny(values["amount"])
            except ValueError as exc:
                raise Invalid(str(exc), field="amount") from None  # shown beside the field
            if amount <= 0:
                raise Invalid(
                    "到账金额须大于零 / the amount received is more than zero", field="amount"
                )
            done = await deposits.confirm_deposit(
                pool,
                clock.now(),
                operator_user_id=me.user_id,
                operator_org_id=me.org_id,
                transfer_reference=values["transfer_reference"],
                amount_fen=amount,
            )
        except AppError as exc:
            field = {"amount_fen": "amount"}.get(exc.field or "", exc.field or "form")
            return await self._deposits(
                request,
                pool,
                me,
                status_code=exc.status,
                errors={field: exc.message},
                values=values,
            )
        query = {"confirmed": done.registration.transfer_reference}
        if not done.changed:
            query["again"] = "true"
        if done.released:
            query["released"] = "true"
        return Redirect(f"/operator/deposits?{urlencode(query)}")

    async def _deposits(
        self,
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
