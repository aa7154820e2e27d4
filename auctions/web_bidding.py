"""The buyer's side of a live lot page: the Server-Sent Events stream every
visitor's page listens to, and the bid, proxy and match forms of a registered buyer whose
deposit is confirmed, posted with htmx (or plainly, without JavaScript).

The forms go through `auctions.bidding.place`, exactly as the API does (auctions/
api_bidding.py): the same writer, rate limit and Idempotency-Key. Each form carries a fresh
random `idempotency_key`, so a double click or a re-posted page records one bid and gets
the first answer back.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import asyncpg
import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import ServerSentEvent, Template

from auctions import live
from auctions.bidding import BidBody, BidRequest, MatchBody, ProxyBody, place
from auctions.live import LiveBid
from auctions.registration import Registration, current_agreement, registration_for_viewer
from auctions.writer import BidAnswer, WriterUnavailable
from market import i18n, problems
from market.accounts.models import Viewer
from market.accounts.permissions import BID, allow, refusal
from market.deps import ClockDep, MeDep, PoolDep
from market.errors import AppError, NotFound, Unavailable
from market.money import format_cny, parse_cny
from market.web import language, page

FORM_KINDS: Final = ("bid", "proxy", "match")
PANEL_HEADER: Final = "X-Bid-Panel"  # auction.js lets htmx swap a refusal (4xx) in by it


@dataclass(frozen=True)
class BidResult:
    """What the panel says about the bid just posted."""

    status: int
    accepted: bool
    kind: str  # bid | proxy | match
    code: str | None = None  # why it was refused
    text: str = ""  # the refusal in the buyer's words (problem.<code>)
    amount_fen: int | None = None  # what the buyer asked for
    price_fen: int | None = None  # the price after the batch
    leading: bool = False
    rounded_from_fen: int | None = None  # a proxy maximum rounded down onto the grid from this


@dataclass(frozen=True)
class BidPanel:
    """The live board (for everyone) and the bid forms (for a buyer who may bid)."""

    live: live.LiveState
    registration: Registration | None
    can_bid: bool
    note: str | None  # a message key: why a registered buyer sees no forms
    proxy_max_fen: int | None
    keys: dict[str, str]  # a fresh Idempotency-Key per form
    result: BidResult | None = None
    errors: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)
    # A closed sealed round's bids, shown to its participants (docs/rules.md §Bidding).
    revealed: list[LiveBid] | None = None

    @property
    def state_json(self) -> str:
        return msgspec.json.encode(self.live).decode()

    @property
    def preemptive_rank(self) -> int | None:
        return None if self.registration is None else self.registration.preemptive_rank

    @property
    def leading(self) -> bool:
        reg = self.registration
        return reg is not None and reg.bidder_code == self.live.leader_code

    def countdown(self, lang: i18n.Lang) -> tuple[str, str]:
        """(label, text) of the countdown as the page first shows it; static/auction.js
        then keeps it running on the server's clock."""
        _ = i18n.translator(lang)
        s = self.live
        now = s.server_time
        if s.status == "announced" and s.starts_at is not None and now < s.starts_at:
            return _("live.starts_in"), countdown(_, (s.starts_at - now).total_seconds())
        if s.status in live.OPEN_STATUSES and s.ends_at is not None and now < s.ends_at:
            return _("live.ends_in"), countdown(_, (s.ends_at - now).total_seconds())
        if s.status in live.OPEN_STATUSES:
            return "", _("live.ended")
        return "", _("catalogue.status." + s.status)

    @property
    def min_next_yuan(self) -> str:
        fen = self.live.min_next_fen
        return "" if fen is None else format_cny(fen, symbol=False).replace(",", "")


def countdown(_: Callable[..., str], seconds: float) -> str:
    """'1 天 02:03:04' / '02:03:04', as static/auction.js writes it."""
    whole = max(0, int(seconds))
    days, rest = divmod(whole, 86400)
    hms = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return _("live.countdown.days", d=days, hms=hms) if days else hms


def _may_bid(viewer: Viewer | None) -> bool:
    return (
        viewer is not None and refusal(BID, viewer.org_kind, viewer.org_status, viewer.role) is None
    )


def _note(state: live.LiveState, reg: Registration | None, now: datetime) -> str | None:
    if reg is None:
        return None
    if reg.deposit_status != "confirmed":
        return "live.deposit_needed" if reg.deposit_status == "awaiting" else None
    if state.status == "bidding":
        return None
    if state.status == "announced":
        if state.starts_at is not None and state.starts_at <= now:
            return None  # the first bid opens it (auctions/writer.py)
        return "live.not_open_yet"
    return None


async def bid_panel(
    pool: asyncpg.Pool,
    viewer: Viewer | None,
    reference: str,
    now: datetime,
    *,
    result: BidResult | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The lot page's context for the live board, the bid forms and the registration
    panel (`registration`, templates/auctions/_registration_panel.html)."""
    reg = None
    if viewer is not None:
        reg = await registration_for_viewer(pool, viewer.org_id, viewer.org_kind, reference)
    return await bid_panel_for(
        pool, viewer, reg, reference, now, result=result, errors=errors, values=values
    )


async def bid_panel_for(
    pool: asyncpg.Pool,
    viewer: Viewer | None,
    reg: Registration | None,
    reference: str,
    now: datetime,
    *,
    result: BidResult | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> dict[str, Any]:
    """`bid_panel` for a viewer whose registration (`reg`) is already loaded."""
    state = await live.snapshot(pool, reference, now)
    note = _note(state, reg, now)
    can_bid = (
        _may_bid(viewer)
        and reg is not None
        and reg.deposit_status == "confirmed"
        and state.min_next_fen is not None
        and note is None
    )
    proxy = None
    if can_bid and reg is not None and state.kind != "sealed":
        proxy = await live.standing_proxy(pool, reg.id)
    revealed = None
    if (
        state.kind == "sealed"
        and state.status not in live.OPEN_STATUSES
        and reg is not None
        and reg.round == state.round
    ):
        revealed = await live.sealed_reveal(pool, state)
    agreement = None
    if reg is None and _may_bid(viewer):  # the register form asks to accept it
        async with pool.acquire() as conn:
            agreement = await current_agreement(conn, now)
    return {
        "registration": reg,
        "agreement": agreement,
        "bidding": BidPanel(
            live=state,
            registration=reg,
            can_bid=can_bid,
            note=note,
            proxy_max_fen=proxy,
            keys={kind: uuid.uuid4().hex for kind in FORM_KINDS},
            result=result,
            errors=errors or {},
            values=values or {},
            revealed=revealed,
        ),
    }


class _FormError(Exception):
    def __init__(self, field: str, key: str) -> None:
        super().__init__(key)
        self.field, self.key = field, key


def _amount(values: dict[str, str], name: str) -> int:
    try:
        fen = parse_cny(values.get(name, ""))
    except ValueError:
        raise _FormError(name, "live.error.amount") from None
    if fen <= 0:
        raise _FormError(name, "live.error.amount_positive")
    return fen


def _body(values: dict[str, str]) -> BidRequest:
    confirmed = values.get("confirm") == "1"  # the large-bid step's button
    match values.get("type"):
        case "bid":
            return BidBody(amount_fen=_amount(values, "amount"), confirm=confirmed)
        case "proxy":
            return ProxyBody(max_fen=_amount(values, "max_amount"), confirm=confirmed)
        case "match":
            return MatchBody()
    raise _FormError("type", "live.error.type")


def _result(
    kind: str,
    body: BidRequest | None,
    status: int,
    answer: BidAnswer,
    me: str | None,
    lang: i18n.Lang,
) -> BidResult:
    asked = rounded_from = None
    if isinstance(body, BidBody):
        asked = body.amount_fen
    elif isinstance(body, ProxyBody):
        asked = body.max_fen
        if answer.proxy_max_fen is not None and answer.proxy_max_fen != asked:
            asked, rounded_from = answer.proxy_max_fen, asked
    return BidResult(
        status=status,
        accepted=answer.accepted,
        kind=kind,
        code=answer.code,
        text="" if answer.code is None else problems.describe(lang, answer.code, answer.params),
        amount_fen=asked,
        price_fen=answer.price_fen,
        leading=me is not None and answer.leader_code == me,
        rounded_from_fen=rounded_from,
    )


class LivePages(Controller):
    include_in_schema = False

    @get("/lots/{reference:str}/events", operation_id="web_lot_events", cache=False)
    async def events(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        reference: FromPath[str],
    ) -> ServerSentEvent:
        """text/event-stream: `state` (the lot as PostgreSQL has it), then `update` per
        committed batch of bids, heartbeat comments; public — bidder codes only."""
        state = await live.snapshot(pool, reference, clock.now())  # 404 before streaming
        hub = live.hub_of(request.app.state)
        return ServerSentEvent(
            live.events(hub, pool, clock, state.lot_id),
            headers={"Cache-Control": "no-store"},
        )

    @post("/lots/{reference:str}/bids", operation_id="web_place_bid", guards=[allow(BID)])
    async def bid(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        me: MeDep,
        reference: FromPath[str],
    ) -> Template:
        """A bid, proxy maximum or pre-emptive match from the lot page. Answers the bid
        panel (htmx) or the whole lot page, with the outcome and the HTTP status the API
        would give: 201 accepted, 409 refused by the rules, 403, 422, 429, 503."""
        at = clock.now()  # the exchange's clock decides, as received
        lang = language(request, me)
        # Loaded once, for the answer and the panel: a bid changes no registration.
        own = await registration_for_viewer(pool, me.org_id, me.org_kind, reference)
        raw = await request.body()
        form = await request.form()
        values = {
            k: str(form.get(k) or "").strip() for k in ("type", "amount", "max_amount", "confirm")
        }
        kind = values["type"] if values["type"] in FORM_KINDS else "bid"
        key = str(form.get("idempotency_key") or "").strip() or None
        status, result, errors = 201, None, {}
        try:
            body = _body(values)
            try:
                status, answer = await place(
                    pool=pool,
                    writers=request.app.state.writers,
                    limiter=request.app.state.bid_limiter,
                    at=at,
                    org_id=me.org_id,
                    reference=reference,
                    body=body,
                    raw=raw,
                    idempotency_key=key,
                )
            except WriterUnavailable:
                raise _Refused(Unavailable()) from None
            except NotFound:
                raise
            except AppError as exc:
                raise _Refused(exc) from None
            result = _result(kind, body, status, answer, own.bidder_code if own else None, lang)
            if answer.accepted:
                values = {}  # a refusal keeps what the buyer typed, an accepted bid not
        except _FormError as exc:
            status = 422
            errors = {exc.field: i18n.gettext(lang, exc.key)}
        except _Refused as exc:
            status = exc.error.status
            result = BidResult(
                status=status,
                accepted=False,
                kind=kind,
                code=exc.error.code,
                text=problems.text(exc.error, lang),
            )
        panel = await bid_panel_for(
            pool, me, own, reference, clock.now(), result=result, errors=errors, values=values
        )
        if request.headers.get("HX-Request") == "true":
            response = page(
                request,
                "auctions/_bid_panel.html",
                me,
                status_code=status,
                forms_only=True,
                **panel,
            )
        else:
            from market.catalogue.web import lot_page

            response = await lot_page(
                request, pool, clock.now(), me, reference, status_code=status, panel=panel
            )
        response.headers[PANEL_HEADER] = "1"
        return response


class _Refused(Exception):
    def __init__(self, error: AppError) -> None:
        super().__init__(error.code)
        self.error = error
