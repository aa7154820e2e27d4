"""Bids over the API (bank-grade buyers' systems) and from the lot page."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, post
from litestar.datastructures import State
from litestar.params import FromPath, HeaderParameter, JSONBody

from auctions.bidding import BidRequest, place
from auctions.writer import BidAnswer, WriterUnavailable
from market.accounts.services import require_scope
from market.deps import CallerDep, ClockDep, PoolDep
from market.errors import AppError, Forbidden

BIDDER_KINDS = ("buyer", "acquirer")


class Unavailable(AppError):
    status = 503
    code = "retry"


class BiddingApi(Controller):
    path = "/api/v1/lots"
    tags = ["bidding"]

    @post("/{reference:str}/bids", operation_id="place_bid")
    async def bid(
        self,
        request: Request[Any, Any, State],
        caller: CallerDep,
        pool: PoolDep,
        clock: ClockDep,
        reference: FromPath[str],
        data: JSONBody[BidRequest],
        idempotency_key: Annotated[str | None, HeaderParameter(name="Idempotency-Key")] = None,
    ) -> Response[BidAnswer]:
        """A bid, a proxy maximum or a pre-emptive match. 201 accepted; 409 refused with
        the reason (too low, not on the increment, lot closed…); 403 not registered or
        deposit not confirmed. The same Idempotency-Key returns the first answer."""
        at = clock.now()  # the exchange's clock decides, as received
        require_scope(caller, "bids:write")
        if caller.org_kind not in BIDDER_KINDS or caller.org_status != "approved":
            raise Forbidden("only approved buyers bid")
        state = request.app.state
        try:
            status, answer = await place(
                pool=pool,
                writers=state.writers,
                limiter=state.bid_limiter,
                at=at,
                org_id=caller.org_id,
                reference=reference,
                body=data,
                raw=await request.body(),
                idempotency_key=idempotency_key,
            )
        except WriterUnavailable:
            raise Unavailable("the bid could not be recorded; nothing was written, retry") from None
        return Response(answer, status_code=status)
