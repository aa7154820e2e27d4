"""The operator's settlement API: record a buyer's payment, list the payments due (OPERATE)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post

from auctions import closing
from auctions.closing import RecordPayment
from market import api_docs
from market.accounts.permissions import OPERATE, allow
from market.deps import ActDep, ClockDep, PoolDep

RECORD_PAYMENT = api_docs.body(
    RecordPayment, {"payment_reference": "PAY3F9T6W2", "amount_fen": 228_000_000}
)


class PaymentsApi(Controller):
    path = "/api/v1/operator/payments"
    tags = ["settlement"]
    guards = [allow(OPERATE)]

    @get("", operation_id="list_payments_due", summary="List sales awaiting the buyer's payment")
    async def due(self, pool: PoolDep, clock: ClockDep) -> list[closing.PaymentDue]:
        """Sales awaiting the buyer's transfer, the earliest deadline first."""
        return await closing.payments_due(pool, clock.now())

    @post(
        "",
        operation_id="record_payment",
        summary="Record a buyer's payment of a sale",
        status_code=200,
    )
    async def record(
        self, act: ActDep, data: Annotated[RecordPayment, RECORD_PAYMENT]
    ) -> closing.SaleOut:
        """The balance arrived under this reference: the sale is paid, the deposit applied.

        The amount must equal the balance due (422 otherwise). Recording the same payment
        again answers the paid sale and changes nothing.
        """
        return await act(closing.record_payment, data)
