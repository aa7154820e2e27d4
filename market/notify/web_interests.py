"""Saved interests: the page /account/interests and the API /api/v1/interests.

A buyer's or acquirer's user keeps their own interests (an API token acts for the user who
created it): reading them is READ_INTERESTS (scope account:read), saving and removing
them MANAGE_INTERESTS (scope bids:write — the buyer's scope of taking part).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final

import asyncpg
import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from market import api_docs, problems
from market.accounts.models import Viewer
from market.accounts.permissions import MANAGE_INTERESTS, READ_INTERESTS, allow
from market.deps import ActDep, CallerDep, MeDep, PoolDep
from market.money import MAX_FEN
from market.notify import interests
from market.notify.interests import InterestInput, InterestOut
from market.web import Form, page

NEW_INTEREST = api_docs.body(
    InterestInput, {"ipc_prefixes": ["H01M"], "keywords": ["锂电池"], "price_max_fen": 500_000_000}
)

# Commas of both widths, 、 and semicolons separate values; spaces do not, since an IPC
# symbol ("H01M 4/525") and a keyword ("solid state") may hold them.
_SEPARATORS: Final = re.compile(r"[,，、;；\n\r]+")
_FIELDS: Final = ("ipc_prefixes", "keywords", "price_min", "price_max")
# The command's fields as the form names them.
_FORM_FIELDS: Final = {"price_min_fen": "price_min", "price_max_fen": "price_max"}


def _values(text: str) -> list[str]:
    return [v.strip() for v in _SEPARATORS.split(text) if v.strip()]


def _interest(form: Form) -> InterestInput | None:
    """The form's interest, or None with the form's errors beside their fields."""
    raw = {
        "ipc_prefixes": _values(form.text("ipc_prefixes")),
        "keywords": _values(form.text("keywords")),
        "price_min_fen": form.yuan("price_min", max_fen=MAX_FEN, required=False),
        "price_max_fen": form.yuan("price_max", max_fen=MAX_FEN, required=False),
    }
    try:
        return msgspec.convert(raw, InterestInput)
    except msgspec.ValidationError as exc:
        # "Expected `array` of length <= 10 - at `$.keywords`", "… at `$.keywords[3]`".
        field, code, params = problems.validation(str(exc))
        form.fail(field.split("[", 1)[0] if field else None, code, **params)
        return None


class InterestPages(Controller):
    include_in_schema = False

    @get("/account/interests", operation_id="web_interests", guards=[allow(READ_INTERESTS)])
    async def show(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        done: FromQuery[str | None] = None,
    ) -> Template:
        """我的订阅: the user's saved interests and the form to add one."""
        return await _page(request, pool, me, done=done if done in ("saved", "deleted") else None)

    @post(
        "/account/interests",
        operation_id="web_interest_create",
        guards=[allow(MANAGE_INTERESTS)],
    )
    async def create(
        self, request: Request[Any, Any, State], pool: PoolDep, act: ActDep, me: MeDep
    ) -> Template | Redirect:
        form = await Form.read(request, me, fields=_FORM_FIELDS)
        data = _interest(form)
        saved = None
        if data is not None:
            saved = await form.submit(lambda: act(interests.create_interest, data))
        if saved is None:
            # A problem of a field the form does not show is the form's.
            errors: dict[str, str] = {}
            for field, text in form.errors.items():
                errors.setdefault(field if field in _FIELDS else "form", text)
            values = {k: form.text(k) for k in _FIELDS}
            return await _page(
                request, pool, me, status_code=form.status, errors=errors, values=values
            )
        return Redirect("/account/interests?done=saved")

    @post(
        "/account/interests/{interest_id:int}/delete",
        operation_id="web_interest_delete",
        guards=[allow(MANAGE_INTERESTS)],
    )
    async def remove(self, act: ActDep, interest_id: FromPath[int]) -> Redirect:
        await act(interests.delete_interest, interest_id)
        return Redirect("/account/interests?done=deleted")


async def _page(
    request: Request[Any, Any, State],
    pool: asyncpg.Pool,
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

    @get(
        "/",
        operation_id="list_interests",
        summary="List the saved interests",
        guards=[allow(READ_INTERESTS)],
    )
    async def list_own(self, caller: CallerDep, pool: PoolDep) -> list[InterestOut]:
        """The saved interests of the token's user, oldest first."""
        return await interests.list_interests(pool, caller.user_id)

    @post(
        "/",
        operation_id="create_interest",
        summary="Save an interest",
        status_code=201,
        guards=[allow(MANAGE_INTERESTS)],
    )
    async def create(
        self, act: ActDep, data: Annotated[InterestInput, NEW_INTEREST]
    ) -> InterestOut:
        """Save an interest: lots published afterwards that match it are announced to the
        token's user (event lot_matched)."""
        return await act(interests.create_interest, data)

    @delete(
        "/{interest_id:int}",
        operation_id="delete_interest",
        summary="Remove a saved interest",
        status_code=204,
        guards=[allow(MANAGE_INTERESTS)],
    )
    async def remove(self, act: ActDep, interest_id: FromPath[int]) -> None:
        """Delete one of the token's user's interests (another user's: 404)."""
        await act(interests.delete_interest, interest_id)
