"""Saved interests: the page /account/interests and the API /api/v1/interests.

A buyer's or acquirer's user keeps its own interests (an API token acts for the user who
created it). Reading needs the scope account:read, changing them bids:write — the
buyer's scope of taking part.
"""

from __future__ import annotations

import re
from typing import Any, Final

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import Redirect, Template

from market.accounts.models import Viewer
from market.accounts.services import require_scope
from market.deps import CallerDep, ClockDep, PoolDep, ViewerDep
from market.errors import Conflict, Forbidden, Invalid
from market.money import MAX_FEN
from market.notify import interests
from market.notify.interests import InterestInput, InterestOut
from market.web import form_error, form_yuan, page, require

# Commas of both widths, 、 and semicolons separate values; spaces do not, since an IPC
# symbol ("H01M 4/525") and a keyword ("solid state") may hold them.
_SEPARATORS: Final = re.compile(r"[,，、;；\n\r]+")
_FIELDS: Final = ("ipc_prefixes", "keywords", "price_min", "price_max")


def _interested(viewer: Viewer | None) -> Viewer:
    me = require(viewer)
    if me.org_kind not in interests.INTERESTED_KINDS:
        raise Forbidden("only buyers and acquirers save interests in lots")
    return me


def _values(text: str) -> list[str]:
    return [v.strip() for v in _SEPARATORS.split(text) if v.strip()]


def _price(values: dict[str, str], name: str) -> int | None:
    errors: dict[str, str] = {}
    fen = form_yuan(values, errors, name, max_fen=MAX_FEN, required=False)
    if errors:
        raise Invalid(errors[name], field=name)
    return fen


def _from_form(values: dict[str, str]) -> InterestInput:
    raw = {
        "ipc_prefixes": _values(values["ipc_prefixes"]),
        "keywords": _values(values["keywords"]),
        "price_min_fen": _price(values, "price_min"),
        "price_max_fen": _price(values, "price_max"),
    }
    try:
        return msgspec.convert(raw, InterestInput)
    except msgspec.ValidationError as exc:
        # "Expected `array` of length <= 10 - at `$.keywords`" and the like.
        field, message = form_error(exc)
        raise Invalid(message, field=field and field.split("[", 1)[0]) from None


class InterestPages(Controller):
    include_in_schema = False

    @get("/account/interests", operation_id="web_interests")
    async def show(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        viewer: ViewerDep,
        done: FromQuery[str | None] = None,
    ) -> Template:
        """我的订阅: the user's saved interests and the form to add one."""
        me = _interested(viewer)
        return await _page(request, pool, me, done=done if done in ("saved", "deleted") else None)

    @post("/account/interests", operation_id="web_interest_create")
    async def create(
        self, request: Request[Any, Any, State], pool: PoolDep, clock: ClockDep, viewer: ViewerDep
    ) -> Template | Redirect:
        me = _interested(viewer)
        form = await request.form()
        values = {k: str(form.get(k) or "").strip() for k in _FIELDS}
        try:
            await interests.create_interest(
                pool,
                clock.now(),
                user_id=me.user_id,
                org_id=me.org_id,
                org_kind=me.org_kind,
                data=_from_form(values),
            )
        except (Invalid, Conflict) as exc:
            field = {"price_min_fen": "price_min", "price_max_fen": "price_max"}.get(
                exc.field or "", exc.field or "form"
            )
            return await _page(
                request,
                pool,
                me,
                status_code=exc.status,
                errors={field if field in _FIELDS else "form": exc.message},
                values=values,
            )
        return Redirect("/account/interests?done=saved")

    @post("/account/interests/{interest_id:int}/delete", operation_id="web_interest_delete")
    async def remove(
        self, pool: PoolDep, clock: ClockDep, viewer: ViewerDep, interest_id: FromPath[int]
    ) -> Redirect:
        me = _interested(viewer)
        await interests.delete_interest(
            pool, clock.now(), user_id=me.user_id, org_id=me.org_id, interest_id=interest_id
        )
        return Redirect("/account/interests?done=deleted")


async def _page(
    request: Request[Any, Any, State],
    pool: Any,
    me: Viewer,
    *,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    done: str | None = None,
) -> Template:
    return page(
        request,
        "notify/interests.html",
        me,
        status_code=status_code,
        items=await interests.list_interests(pool, me.user_id),
        errors=errors or {},
        values=values or {},
        done=done,
        limit=interests.MAX_INTERESTS,
    )


class InterestApi(Controller):
    path = "/api/v1/interests"
    tags = ["notifications"]

    @get("/", operation_id="list_interests")
    async def list_own(self, caller: CallerDep, pool: PoolDep) -> list[InterestOut]:
        """The saved interests of the token's user, oldest first."""
        require_scope(caller, "account:read")
        return await interests.list_interests(pool, caller.user_id)

    @post("/", operation_id="create_interest", status_code=201)
    async def create(
        self, caller: CallerDep, pool: PoolDep, clock: ClockDep, data: JSONBody[InterestInput]
    ) -> InterestOut:
        """Save an interest: lots published afterwards that match it are announced to the
        token's user (event lot_matched)."""
        require_scope(caller, "bids:write")
        return await interests.create_interest(
            pool,
            clock.now(),
            user_id=caller.user_id,
            org_id=caller.org_id,
            org_kind=caller.org_kind,
            data=data,
        )

    @delete("/{interest_id:int}", operation_id="delete_interest", status_code=204)
    async def remove(
        self, caller: CallerDep, pool: PoolDep, clock: ClockDep, interest_id: FromPath[int]
    ) -> Response[None]:
        """Delete one of the token's user's interests (another user's: 404)."""
        require_scope(caller, "bids:write")
        await interests.delete_interest(
            pool,
            clock.now(),
            user_id=caller.user_id,
            org_id=caller.org_id,
            interest_id=interest_id,
        )
        return Response(None, status_code=204)
