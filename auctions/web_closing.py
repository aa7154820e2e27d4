"""The operator's payments page: sales awaiting the buyer's transfer, and its confirmation."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.response import Template

from auctions import closing
from market.accounts.models import Viewer
from market.deps import ClockDep, PoolDep, ViewerDep
from market.errors import AppError, Forbidden
from market.money import parse_cny
from market.web import page, require


def _operator(viewer: Viewer | None) -> Viewer:
    me = require(viewer)
    if me.org_kind != "operator":
        raise Forbidden("only the exchange operator records payments")
    return me


class PaymentPages(Controller):
    path = "/operator/payments"
    include_in_schema = False

    @get("", operation_id="web_operator_payments")
    async def list(
        self, request: Request[Any, Any, State], pool: PoolDep, clock: ClockDep, viewer: ViewerDep
    ) -> Template:
        me = _operator(viewer)
        return await self._render(request, pool, clock.now(), me)

    @post("", operation_id="web_operator_record_payment")
    async def record(
        self, request: Request[Any, Any, State], pool: PoolDep, clock: ClockDep, viewer: ViewerDep
    ) -> Template:
        me = _operator(viewer)
        form = await request.form()
        values = {k: str(form.get(k, "")).strip() for k in ("payment_reference", "amount")}
        errors: dict[str, str] = {}
        if not values["payment_reference"]:
            errors["payment_reference"] = "payment_reference: required"
        try:
            amount = parse_cny(values["amount"])
        except ValueError as exc:
            errors["amount"] = str(exc)
        if errors:
            return await self._render(request, pool, clock.now(), me, errors, values, 422)
        try:
            sale = await closing.record_payment(
                pool,
                clock.now(),
                actor_user_id=me.user_id,
                actor_org_id=me.org_id,
                payment_reference=values["payment_reference"],
                amount_fen=amount,
            )
        except AppError as exc:
            field = {"amount_fen": "amount"}.get(exc.field or "", exc.field or "form")
            return await self._render(
                request, pool, clock.now(), me, {field: exc.message}, values, exc.status
            )
        return await self._render(request, pool, clock.now(), me, paid=sale)

    async def _render(
        self,
        request: Request[Any, Any, State],
        pool: Any,
        at: Any,
        me: Viewer,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
        status_code: int = 200,
        paid: closing.SaleOut | None = None,
    ) -> Template:
        return page(
            request,
            "auctions/operator_payments.html",
            me,
            status_code=status_code,
            sales=await closing.payments_due(pool, at),
            errors=errors or {},
            values=values or {},
            paid=paid,
        )
