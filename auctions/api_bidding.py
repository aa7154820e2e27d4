"""Bids over the API (bank-grade buyers' systems): the Litestar route, and its fast path.

The route below is the endpoint's definition: its schema, its errors, every odd request.
A hot lot's last minutes are thousands of well-formed bids a second, though, and
Litestar's routing, dependency injection and response machinery cost about seven times
the bid itself (docs/bidding.md, "The fast path"). So `market.app.Exchange` hands
`POST /api/v1/lots/{reference}/bids` to `fast_bid` first: it reads the body, and when the
body decodes it does what the route does — the same caller check, the same `bid()`, the
same error bodies (`market.web.api_error`) — straight on ASGI. A body that does not decode
goes on to the route, whose validation errors name the field; nothing happened before.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, post
from litestar.datastructures import State
from litestar.params import FromPath, HeaderParameter, JSONBody

from auctions.bidding import BidRequest, place
from auctions.writer import BidAnswer, WriterUnavailable
from market.accounts.api import caller_for
from market.accounts.models import ApiCaller
from market.accounts.services import require_scope
from market.deps import CallerDep, ClockDep
from market.errors import AppError, Forbidden
from market.logs import request_id, request_id_var
from market.web import api_error

BIDDER_KINDS = ("buyer", "acquirer")


class Unavailable(AppError):
    status = 503
    code = "retry"


async def bid(
    state: State,
    caller: ApiCaller,
    at: datetime,
    reference: str,
    body: BidRequest,
    raw: bytes,
    idempotency_key: str | None,
) -> tuple[int, BidAnswer]:
    """A bid, a proxy maximum or a pre-emptive match from an API caller: (status, answer)."""
    require_scope(caller, "bids:write")
    if caller.org_kind not in BIDDER_KINDS or caller.org_status != "approved":
        raise Forbidden("only approved buyers bid")
    try:
        return await place(
            pool=state.pool,
            writers=state.writers,
            limiter=state.bid_limiter,
            at=at,
            org_id=caller.org_id,
            reference=reference,
            body=body,
            raw=raw,
            idempotency_key=idempotency_key,
        )
    except WriterUnavailable:
        raise Unavailable("the bid could not be recorded; nothing was written, retry") from None


class BiddingApi(Controller):
    path = "/api/v1/lots"
    tags = ["bidding"]

    @post("/{reference:str}/bids", operation_id="place_bid")
    async def bid(
        self,
        request: Request[Any, Any, State],
        caller: CallerDep,
        clock: ClockDep,
        reference: FromPath[str],
        data: JSONBody[BidRequest],
        idempotency_key: Annotated[str | None, HeaderParameter(name="Idempotency-Key")] = None,
    ) -> Response[BidAnswer]:
        """A bid, a proxy maximum or a pre-emptive match. 201 accepted; 409 refused with
        the reason (too low, not on the increment, lot closed…); 403 not registered or
        deposit not confirmed. The same Idempotency-Key returns the first answer."""
        at = clock.now()  # the exchange's clock decides, as received
        status, answer = await bid(
            request.app.state, caller, at, reference, data, await request.body(), idempotency_key
        )
        return Response(answer, status_code=status)


# --- the fast path ----------------------------------------------------------------------
# Plain ASGI: the scope and messages are dicts (Litestar's TypedDicts would need a cast
# at every step for no gain here).
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

BID_PATH = re.compile(r"/api/v1/lots/([^/]+)/bids")
MAX_FAST_BODY = 4096  # a bid is about 40 bytes; anything larger takes the route
_decode = msgspec.json.Decoder(BidRequest).decode
_encode = msgspec.json.Encoder().encode


def bid_reference(scope: Scope) -> str | None:
    """The lot reference when this request is one the fast path takes."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    match = BID_PATH.fullmatch(scope["path"])
    return None if match is None else match.group(1)


async def fast_bid(
    state: State,
    reference: str,
    scope: Scope,
    receive: Receive,
    send: Send,
    route: Callable[[Receive], Awaitable[None]],
) -> None:
    """Answer a bid as the route would; `route(receive)` runs the route with the body."""
    at = state.clock.now()  # the exchange's clock decides, as received
    raw, more = b"", True
    while more and len(raw) <= MAX_FAST_BODY:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return
        raw += message.get("body", b"")
        more = message.get("more_body", False)
    try:
        body = None if more or len(raw) > MAX_FAST_BODY else _decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        body = None
    if body is None:
        await route(_replay(raw, more, receive))
        return
    headers: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:  # the first of each, as the route reads them
        if name in (b"authorization", b"idempotency-key"):
            headers.setdefault(name, value)
    rid = request_id(scope["headers"])
    token = request_id_var.set(rid)
    try:
        caller = await caller_for(
            state.pool, at, headers.get(b"authorization", b"").decode("latin-1")
        )
        key = headers.get(b"idempotency-key")
        status, answer = await bid(
            state, caller, at, reference, body, raw, None if key is None else key.decode("latin-1")
        )
        extra: dict[str, str] = {}
        payload = _encode(answer)
    except Exception as exc:  # the same answer the route's error handler gives
        status, extra, error = api_error(exc, rid)
        payload = _encode(error)
    finally:
        request_id_var.reset(token)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"x-request-id", rid.encode()),
                *((k.lower().encode(), v.encode()) for k, v in extra.items()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def _replay(raw: bytes, more: bool, receive: Receive) -> Receive:
    """A `receive` that gives the route the part of the body already read, then the rest."""
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": raw, "more_body": more}
        return await receive()

    return replay
