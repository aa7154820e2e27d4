"""The operator's settlement API: record a buyer's payment, list the payments due."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, get, post
from litestar.params import JSONBody
from msgspec import Meta

from auctions import closing
from market.accounts.models import ApiCaller
from market.accounts.services import require_scope
from market.deps import CallerDep, ClockDep, PoolDep
from market.errors import Forbidden


class PaymentInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The transfer the operator saw arrive: its reference and amount in fen."""

    payment_reference: Annotated[str, Meta(min_length=1, max_length=40)]
    amount_fen: Annotated[int, Meta(gt=0)]


def operator(caller: ApiCaller) -> ApiCaller:
    require_scope(caller, "operator:write")
    if caller.org_kind != "operator":
        raise Forbidden("only the exchange operator records payments")
    return caller


class PaymentsApi(Controller):
    path = "/api/v1/operator/payments"
    tags = ["settlement"]

    @get("", operation_id="list_payments_due")
    async def due(
        self, caller: CallerDep, pool: PoolDep, clock: ClockDep
    ) -> list[closing.PaymentDue]:
        """Sales awaiting the buyer's transfer, the earliest deadline first."""
        operator(caller)
        return await closing.payments_due(pool, clock.now())

    @post("", operation_id="record_payment", status_code=200)
    async def record(
        self, caller: CallerDep, pool: PoolDep, clock: ClockDep, data: JSONBody[PaymentInput]
    ) -> closing.SaleOut:
        """The balance arrived under this reference: the sale is paid, the deposit applied.

        The amount must equal the balance due (422 otherwise). Recording the same payment
        again answers the paid sale and changes nothing.
        """
        me = operator(caller)
        return await closing.record_payment(
            pool,
            clock.now(),
            actor_user_id=me.user_id,
            actor_org_id=me.org_id,
            payment_reference=data.payment_reference,
            amount_fen=data.amount_fen,
        )
