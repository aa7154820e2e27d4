"""Webhook endpoints on the web (/account/webhooks) and in the API (/api/v1/webhooks).

An organisation's administrators see them (READ_WEBHOOKS, scope account:read) and add,
test and remove them (MANAGE_WEBHOOKS, scope account:write); the commands also refuse a
token whose creator is no longer an administrator (endpoints.py), because an endpoint
decides where the organisation's notifications go.
"""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Redirect, Template

from market import api_docs, problems
from market.accounts.models import Viewer
from market.accounts.permissions import MANAGE_WEBHOOKS, READ_WEBHOOKS, allow
from market.clock import offset_ms
from market.deps import ActDep, CallerDep, ClockDep, MeDep, PoolDep, SettingsDep
from market.notify import endpoints
from market.notify.endpoints import (
    CreateWebhook,
    NewWebhook,
    WebhookOut,
    WebhookTestRequest,
    WebhookTestResult,
)
from market.notify.webhooks import FORMATS
from market.web import Form, language, page

NEW_WEBHOOK = api_docs.body(
    NewWebhook,
    {
        "url": "https://hooks.bank.example.cn/ipx",
        "format": "json",
        "events": ["won", "payment_due"],
    },
)

PAGE = "/account/webhooks"


async def _page(
    request: Request[Any, Any, State],
    pool: asyncpg.Pool,
    me: Viewer,
    *,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    new_secret: str | None = None,
    created: bool = False,
    test: tuple[int, WebhookTestResult] | None = None,
) -> Template:
    return page(
        request,
        "notify/webhooks.html",
        me,
        status_code=status_code,
        webhooks=await endpoints.list_for_org(pool, me.org_id),
        events=endpoints.EVENTS,
        formats=FORMATS,
        errors=errors or {},
        values=values or {"format": "json", "events": []},
        new_secret=new_secret,
        created=created,
        test_id=test[0] if test else None,
        test_result=test[1] if test else None,
        # A failed test in the reader's words; the receiver's own answer is the operator's.
        test_problem=(
            problems.describe(language(request, me), test[1].code, test[1].params)
            if test and test[1].code
            else None
        ),
    )


class WebhookPages(Controller):
    path = PAGE
    include_in_schema = False

    @get("", operation_id="web_webhooks", guards=[allow(READ_WEBHOOKS)])
    async def index(self, request: Request[Any, Any, State], pool: PoolDep, me: MeDep) -> Template:
        return await _page(request, pool, me)

    @post("", operation_id="web_create_webhook", guards=[allow(MANAGE_WEBHOOKS)])
    async def create(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        me: MeDep,
        settings: SettingsDep,
    ) -> Template:
        form = await Form.read(request, me)
        values: dict[str, Any] = {
            "url": form.text("url"),
            "format": form.text("format") or "json",
            "events": form.lists.get("events", []),
        }
        data = {
            **values,
            "secret": form.text("secret") or None,
            "private_hosts": settings.webhook_private_hosts,
        }
        made = await form.submit(
            lambda: act(endpoints.create_webhook, msgspec.convert(data, CreateWebhook))
        )
        if made is None:
            return await _page(
                request, pool, me, status_code=form.status, errors=form.errors, values=values
            )
        return await _page(request, pool, me, status_code=201, new_secret=made.secret, created=True)

    @post(
        "/{endpoint_id:int}/deactivate",
        operation_id="web_deactivate_webhook",
        guards=[allow(MANAGE_WEBHOOKS)],
    )
    async def deactivate(self, act: ActDep, endpoint_id: FromPath[int]) -> Redirect:
        await act(endpoints.deactivate_webhook, endpoint_id)
        return Redirect(PAGE)

    @post(
        "/{endpoint_id:int}/test",
        operation_id="web_test_webhook",
        guards=[allow(MANAGE_WEBHOOKS)],
    )
    async def test(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        me: MeDep,
        settings: SettingsDep,
        clock: ClockDep,
        endpoint_id: FromPath[int],
    ) -> Template:
        result = await act(
            endpoints.send_webhook_test,
            WebhookTestRequest(
                endpoint_id=endpoint_id,
                private_hosts=settings.webhook_private_hosts,
                clock_offset_ms=offset_ms(clock),
            ),
        )
        return await _page(request, pool, me, test=(endpoint_id, result))


class WebhooksApi(Controller):
    path = "/api/v1/webhooks"
    tags = ["webhooks"]

    @get(
        "",
        operation_id="list_webhooks",
        summary="List the webhook endpoints",
        guards=[allow(READ_WEBHOOKS)],
    )
    async def list_webhooks(self, caller: CallerDep, pool: PoolDep) -> list[WebhookOut]:
        """The organisation's webhook endpoints; URLs show no query values."""
        return await endpoints.list_for_org(pool, caller.org_id)

    @post(
        "",
        operation_id="create_webhook",
        summary="Add a webhook endpoint",
        status_code=201,
        guards=[allow(MANAGE_WEBHOOKS)],
    )
    async def create_webhook(
        self, act: ActDep, settings: SettingsDep, data: Annotated[NewWebhook, NEW_WEBHOOK]
    ) -> WebhookOut:
        """Add an endpoint (scope account:write, a token created by an administrator). A
        json endpoint's signing secret is in this answer only."""
        return await act(
            endpoints.create_webhook,
            CreateWebhook(
                **msgspec.structs.asdict(data), private_hosts=settings.webhook_private_hosts
            ),
        )

    @delete(
        "/{endpoint_id:int}",
        operation_id="delete_webhook",
        summary="Remove a webhook endpoint",
        guards=[allow(MANAGE_WEBHOOKS)],
    )
    async def delete_webhook(self, act: ActDep, endpoint_id: FromPath[int]) -> None:
        """Deactivate an endpoint: nothing more is sent to it (another organisation's: 404)."""
        await act(endpoints.deactivate_webhook, endpoint_id)

    @post(
        "/{endpoint_id:int}/test",
        operation_id="test_webhook",
        summary="Send a test event to a webhook endpoint",
        status_code=200,
        guards=[allow(MANAGE_WEBHOOKS)],
    )
    async def test_webhook(
        self, act: ActDep, settings: SettingsDep, clock: ClockDep, endpoint_id: FromPath[int]
    ) -> WebhookTestResult:
        """Send a `test` event to the endpoint now and answer whether it was delivered;
        a failure carries the receiver's answer (`error`) and a `code` with `params`."""
        return await act(
            endpoints.send_webhook_test,
            WebhookTestRequest(
                endpoint_id=endpoint_id,
                private_hosts=settings.webhook_private_hosts,
                clock_offset_ms=offset_ms(clock),
            ),
        )
