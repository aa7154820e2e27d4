"""Bids over the API (bank-grade buyers' systems): the Litestar route, and its fast path.

The route below is the endpoint's definition: its schema, its errors, every odd request.
A hot lot's last minutes are thousands of well-formed bids a second, though, and
Litestar's routing, dependency injection and response machinery cost about seven times
the bid itself (docs/bidding.md, "The fast path"). So `market.app.Exchange` hands
`POST /api/v1/lots/{reference}/bids` to `fast_bid` first: it reads the body, and when the
body decodes it does what the route does — the same caller check, the same `bid()`, the
same error bodies (`market.problems.answer`) — straight on ASGI. A body that does not decode
goes on to the route, whose validation errors name the field; nothing happened before.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

import asyncpg
import msgspec
from litestar import Controller, Request, Response, post
from litestar.datastructures import State
from litestar.params import FromPath, HeaderParameter

from auctions.bidding import BidRequest, place
from auctions.writer import BidAnswer, WriterUnavailable
from market import api_docs, i18n, problems
from market.accounts import subjects
from market.accounts.models import ApiCaller
from market.accounts.permissions import BID, allow, refusal
from market.deps import CallerDep, ClockDep
from market.errors import Forbidden, Unavailable
from market.logs import ID_HEADER, request_id, request_id_var

BID_BODY = api_docs.body(
    BidRequest,
    {"type": "bid", "amount_fen": 250_000_000},
    {"type": "proxy", "max_fen": 300_000_000},
)


class BidRefusal(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A command the exchange did not take: RFC 9457 problem details (market/problems.py)
    with the lot's state as the refusal found it, so a bidder's program can bid again."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    params: dict[str, int] = {}
    request_id: str | None = None
    lot_id: int
    at: datetime
    price_fen: int | None = None
    leader_code: str | None = None
    ends_at: datetime | None = None
    bid_count: int = 0


def refusal_of(answer: BidAnswer, status: int, lang: i18n.Lang, rid: str | None) -> BidRefusal:
    code = answer.code or "conflict"
    return BidRefusal(
        type=problems.ABOUT_BLANK,
        title=problems.title(lang, status),
        status=status,
        detail=problems.describe(lang, code, answer.params),
        code=code,
        params=answer.params,
        request_id=rid,
        lot_id=answer.lot_id,
        at=answer.at,
        price_fen=answer.price_fen,
        leader_code=answer.leader_code,
        ends_at=answer.ends_at,
        bid_count=answer.bid_count,
    )


async def bid(
    state: State,
    pool: asyncpg.Pool,
    caller: ApiCaller,
    at: datetime,
    reference: str,
    body: BidRequest,
    raw: bytes,
    idempotency_key: str | None,
) -> tuple[int, BidAnswer]:
    """A bid, a proxy maximum or a pre-emptive match from an API caller: (status, answer)."""
    try:
        return await place(
            pool=pool,
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
        raise Unavailable() from None


class BiddingApi(Controller):
    path = "/api/v1/lots"
    tags = ["bidding"]
    guards = [allow(BID)]

    @post(
        "/{reference:str}/bids",
        operation_id="place_bid",
        summary="Place a bid, a proxy maximum or a match",
        responses=problems.responses(BidRefusal, 403, 409, 422),
    )
    async def bid(
        self,
        request: Request[Any, Any, State],
        caller: CallerDep,
        clock: ClockDep,
        reference: FromPath[str],
        data: Annotated[BidRequest, BID_BODY],
        idempotency_key: Annotated[str | None, HeaderParameter(name="Idempotency-Key")] = None,
    ) -> Response[BidAnswer | BidRefusal]:
        """A bid, a proxy maximum or a pre-emptive match. 201 accepted; 409 refused with
        the reason (too low, not on the increment, lot closed…) and the lot's state; 403
        not registered or deposit not confirmed. The same Idempotency-Key returns the first
        answer."""
        at = clock.now()  # the exchange's clock decides, as received
        state = request.app.state
        status, answer = await bid(
            state, state.pool, caller, at, reference, data, await request.body(), idempotency_key
        )
        if answer.accepted:
            return Response(answer, status_code=status)
        body = refusal_of(answer, status, subjects.language(request), request_id_var.get())
        return Response(body, status_code=status, media_type=problems.MEDIA_TYPE)


# --- the fast path ----------------------------------------------------------------------
# Plain ASGI: the scope and messages are dicts (Litestar's TypedDicts would need a cast
# at every step for no gain here).
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

BID_PATH = re.compile(r"/api/v1/lots/([^/]+)/bids")
_READ = frozenset((b"authorization", b"idempotency-key", b"accept-language", ID_HEADER))
PROBLEM = problems.MEDIA_TYPE.encode()
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
        if name in _READ and name not in headers:
            headers[name] = value
    rid = request_id(headers.get(ID_HEADER))
    token = request_id_var.set(rid)
    caller: ApiCaller | None = None
    content_type = b"application/json"
    try:
        pool = state.pool
        caller = await subjects.caller_for(
            pool, at, headers.get(b"authorization", b"").decode("latin-1")
        )
        if BID.scope not in caller.scopes:
            raise Forbidden("token_lacks_scope", scope=BID.scope)
        if (found := refusal(BID, caller.org_kind, caller.org_status, None)) is not None:
            raise found
        key = headers.get(b"idempotency-key")
        status, answer = await bid(
            state,
            pool,
            caller,
            at,
            reference,
            body,
            raw,
            None if key is None else key.decode("latin-1"),
        )
        extra: dict[str, str] = {}
        if answer.accepted:
            payload = _encode(answer)
        else:
            content_type = PROBLEM
            payload = _encode(refusal_of(answer, status, _language(headers, caller), rid))
    except Exception as exc:  # the same answer the route's error handler gives
        content_type = PROBLEM
        status, extra, error = problems.answer(exc, _language(headers, caller), rid)
        payload = _encode(error)
    finally:
        request_id_var.reset(token)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(payload)).encode()),
                (b"x-request-id", rid.encode()),
                *state.security_headers.api,  # market/security_headers.py
                *([(k.lower().encode(), v.encode()) for k, v in extra.items()] if extra else ()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def _language(headers: dict[bytes, bytes], caller: ApiCaller | None) -> i18n.Lang:
    """As the route's (market.accounts.subjects.language), from the headers already read."""
    header = headers.get(b"accept-language")
    asked = None if header is None else i18n.from_accept_language(header.decode("latin-1"))
    if asked is not None:
        return asked
    return caller.language if caller is not None else i18n.DEFAULT


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
