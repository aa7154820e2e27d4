"""The operator's payments page: sales awaiting the buyer's transfer, and its recording
(OPERATE)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.response import Template

from auctions import closing
from auctions.closing import RecordPayment
from market.accounts.models import Viewer
from market.accounts.permissions import OPERATE, allow
from market.deps import ActDep, ClockDep, MeDep, PoolDep
from market.errors import NotFound
from market.money import MAX_FEN
from market.web import Form, page


class PaymentPages(Controller):
    path = "/operator/payments"
    include_in_schema = False
    guards = [allow(OPERATE)]

    @get("", operation_id="web_operator_payments")
    async def list(
        self, request: Request[Any, Any, State], pool: PoolDep, clock: ClockDep, me: MeDep
    ) -> Template:
        return await _render(request, pool, clock.now(), me)

    @post("", operation_id="web_operator_record_payment")
    async def record(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        act: ActDep,
        me: MeDep,
    ) -> Template:
        form = await Form.read(request, me, fields={"amount_fen": "amount"})
        if not form.text("payment_reference"):
            form.fail("payment_reference", "required")
        amount = form.yuan("amount", max_fen=MAX_FEN)
        data = {"payment_reference": form.text("payment_reference"), "amount_fen": amount}
        try:
            sale = await form.submit(
                lambda: act(closing.record_payment, msgspec.convert(data, RecordPayment))
            )
        except NotFound as exc:
            # A reference typed that no sale has: said beside the field.
            form.refuse(exc)
            sale = None
        if sale is None:
            return await _render(
                request, pool, clock.now(), me, form.errors, form.values, form.status
            )
        return await _render(request, pool, clock.now(), me, paid=sale)


async def _render(
    request: Request[Any, Any, State],
    pool: Any,
    at: datetime,
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
