"""The sandbox clock's page and API; market/app.py registers them in sandbox mode only, so
in production they do not exist (404)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Final, cast
from zoneinfo import ZoneInfo

from arq.connections import ArqRedis
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import JSONBody
from litestar.response import Redirect, Template
from litestar.types import ControllerRouterHandler

from market.accounts.permissions import MOVE_CLOCK, allow
from market.deps import ActDep, ClockDep, MeDep, PoolDep, RedisDep, SettingsDep
from market.lots.forms import local_time
from market.sandbox import services
from market.sandbox.services import ClockOut, MoveClock
from market.web import Form, page

# The page moves the clock by a number of these (its "unit" field).
UNITS: Final = {"minutes": 60, "hours": 3600, "days": 86400}
WHOLE: Final = re.compile(r"-?[0-9]{1,9}")


class SandboxPages(Controller):
    path = "/operator/sandbox"
    include_in_schema = False
    guards = [allow(MOVE_CLOCK)]

    @get("/", operation_id="web_sandbox_clock")
    async def clock_page(
        self, request: Request[Any, Any, State], me: MeDep, pool: PoolDep, clock: ClockDep
    ) -> Template:
        return await _clock_page(request, me, await services.refresh(clock, pool))

    @post("/clock", operation_id="web_move_sandbox_clock")
    async def move(
        self,
        request: Request[Any, Any, State],
        me: MeDep,
        act: ActDep,
        pool: PoolDep,
        redis: RedisDep,
        clock: ClockDep,
        settings: SettingsDep,
    ) -> Template | Redirect:
        form = await Form.read(request, me, fields={"seconds": "amount"})
        await services.refresh(clock, pool)
        which = "to" if "to" in form.values else "by"
        data: MoveClock | None = None
        if which == "to":
            to = local_time(form, "to", ZoneInfo(settings.timezone))
            data = None if to is None else MoveClock(to=to)
        else:
            amount = form.text("amount")  # zero or less is the command's refusal to give
            unit = UNITS.get(form.text("unit"))
            if not WHOLE.fullmatch(amount):
                form.fail("amount", "whole_number" if amount else "required")
            if unit is None:
                form.fail("unit", "not_a_choice")
            elif not form.errors:
                data = MoveClock(seconds=int(amount) * unit)
        moved = None if data is None else await form.submit(lambda: act(services.move_clock, data))
        if moved is None:
            return await _clock_page(
                request,
                me,
                await services.refresh(clock, pool),
                status_code=form.status,
                form=which,
                errors=form.errors,
                values=form.values,
            )
        await services.after_move(cast(ArqRedis, redis), clock, moved)
        return Redirect("/operator/sandbox")


async def _clock_page(
    request: Request[Any, Any, State],
    me: MeDep,
    shown: ClockOut,
    *,
    status_code: int = 200,
    form: str | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Template:
    moved = timedelta(milliseconds=shown.offset_ms)
    return page(
        request,
        "sandbox/clock.html",
        me,
        status_code=status_code,
        clock=shown,
        moved_days=moved.days,
        moved_hours=moved.seconds // 3600,
        moved_minutes=moved.seconds % 3600 // 60,
        units=list(UNITS),
        form=form,
        errors=errors or {},
        values=values or {},
    )


class SandboxApi(Controller):
    path = "/api/v1/sandbox"
    tags = ["sandbox"]

    @get("/clock", operation_id="get_sandbox_clock")
    async def get_clock(self, pool: PoolDep, clock: ClockDep) -> ClockOut:
        """The sandbox exchange's time now and how far its clock was moved (ms). Only a
        sandbox has this route."""
        return await services.refresh(clock, pool)

    @post(
        "/clock/advance",
        operation_id="advance_sandbox_clock",
        status_code=200,
        guards=[allow(MOVE_CLOCK)],
    )
    async def advance(
        self,
        act: ActDep,
        pool: PoolDep,
        redis: RedisDep,
        clock: ClockDep,
        data: JSONBody[MoveClock],
    ) -> ClockOut:
        """Move the clock forward by `seconds` (> 0) or to the instant `to` (later than
        now, with its zone); every timer reacts as in real time (openings, closes,
        reminders, payment deadlines). Never backwards: a step of zero or less is refused
        (422 naming the field) and nothing is written."""
        await services.refresh(clock, pool)
        moved = await act(services.move_clock, data)
        return await services.after_move(cast(ArqRedis, redis), clock, moved)


ROUTES: list[ControllerRouterHandler] = [SandboxPages, SandboxApi]
