"""The amount a person is typing, said back in figures and in Chinese capitals before they
confirm a bid or a payment (docs/rules.md §Amounts typed by people).

    GET /amounts/echo?amount=40万   →   <output>¥400,000.00 · 肆拾万元整</output>

Read by the one parser (`market.money.parse_cny`), so what is echoed is exactly what the
form will submit; a form field calls it as the person types (htmx, `amount_input` in
templates/_form_macros.html). Public and side-effect free: it reads nothing but its query.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.datastructures import State
from litestar.response import Template

from market import problems
from market.deps import ViewerDep
from market.errors import BadValue
from market.money import cny_capitals, format_cny, parse_cny
from market.web import language, page

MAX_TYPED = 64  # longer than any amount a person writes: not parsed, said to be wrong


class AmountEcho(Controller):
    include_in_schema = False

    @get("/amounts/echo", operation_id="web_amount_echo", cache=False)
    async def echo(self, request: Request[Any, Any, State], viewer: ViewerDep) -> Template:
        """The first query parameter, whatever the form calls its field, read as an
        amount: its figures and capitals, or why it is not one."""
        field, typed = next(iter(request.query_params.items()), ("amount", ""))
        typed = typed.strip()
        fen: int | None = None
        error = ""
        if typed:
            try:
                if len(typed) > MAX_TYPED:
                    raise BadValue("amount_too_large")
                fen = parse_cny(typed)
            except BadValue as exc:
                error = problems.describe(language(request, viewer), exc.code, exc.params)
        response = page(
            request,
            "_amount_echo.html",
            viewer,
            fen=fen,
            error=error,
            field=field,
            figures=format_cny(fen) if fen is not None else "",
            capitals=cny_capitals(fen) if fen is not None else "",
        )
        response.headers["Cache-Control"] = "no-store"
        return response
