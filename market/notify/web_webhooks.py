"""Webhook endpoints on the web (/account/webhooks) and in the API (/api/v1/webhooks).

The page is for an organisation's administrators. The API lists endpoints for any token
with account:read; creating, deactivating and testing also need the token's creator to be
an enabled administrator of the organisation now (checked in endpoints.py), because an
endpoint decides where the organisation's notifications go.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody
from litestar.response import Redirect, Template

from market.accounts.models import Viewer
from market.accounts.services import require_scope
from market.deps import CallerDep, ClockDep, PoolDep, SettingsDep, ViewerDep
from market.errors import AppError, Forbidden
from market.notify import endpoints
from market.notify.endpoints import NewWebhook, WebhookOut, WebhookTestResult
from market.notify.webhooks import FORMATS
from market.web import form_error, page, require

PAGE = "/account/webhooks"


def _admin(viewer: Viewer | None) -> Viewer:
    me = require(viewer)
    if me.role != "admin":
        raise Forbidden("only an organisation's administrators manage webhooks")
    return me


async def _page(
    request: Request[Any, Any, State],
    pool: PoolDep,
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
    )


class WebhookPages(Controller):
    path = PAGE
    include_in_schema = False

    @get("", operation_id="web_webhooks")
    async def index(
        self, request: Request[Any, Any, State], pool: PoolDep, viewer: ViewerDep
    ) -> Template:
        return await _page(request, pool, _admin(viewer))

    @post("", operation_id="web_create_webhook")
    async def create(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        viewer: ViewerDep,
        settings: SettingsDep,
    ) -> Template:
        me = _admin(viewer)
        form = await request.form()
        secret = str(form.get("secret") or "").strip()
        values: dict[str, Any] = {
            "url": str(form.get("url") or "").strip(),
            "format": str(form.get("format") or "json"),
            "events": [str(e) for e in form.getall("events", [])],
        }
        try:
            data = msgspec.convert({**values, "secret": secret or None}, NewWebhook)
            made = await endpoints.create(
                pool,
                clock.now(),
                org_id=me.org_id,
                user_id=me.user_id,
                data=data,
                private_hosts=settings.webhook_private_hosts,
            )
        except msgspec.ValidationError as exc:
            field, message = form_error(exc)
            return await _page(
                request, pool, me, status_code=422, errors={field or "form": message}, values=values
            )
        except AppError as exc:
            return await _page(
                request,
                pool,
                me,
                status_code=exc.status,
                errors={exc.field or "form": exc.message},
                values=values,
            )
        return await _page(request, pool, me, status_code=201, new_secret=made.secret, created=True)

    @post("/{endpoint_id:int}/deactivate", operation_id="web_deactivate_webhook")
    async def deactivate(
        self, pool: PoolDep, clock: ClockDep, viewer: ViewerDep, endpoint_id: FromPath[int]
    ) -> Redirect:
        me = _admin(viewer)
        await endpoints.deactivate(
            pool, clock.now(), org_id=me.org_id, user_id=me.user_id, endpoint_id=endpoint_id
        )
        return Redirect(PAGE)

    @post("/{endpoint_id:int}/test", operation_id="web_test_webhook")
    async def test(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        viewer: ViewerDep,
        settings: SettingsDep,
        endpoint_id: FromPath[int],
    ) -> Template:
        me = _admin(viewer)
        result = await endpoints.send_test(
            pool,
            clock.now(),
            org_id=me.org_id,
            user_id=me.user_id,
            endpoint_id=endpoint_id,
            private_hosts=settings.webhook_private_hosts,
        )
        return await _page(request, pool, me, test=(endpoint_id, result))


class WebhooksApi(Controller):
    path = "/api/v1/webhooks"
    tags = ["webhooks"]

    @get("", operation_id="list_webhooks")
    async def list_webhooks(self, caller: CallerDep, pool: PoolDep) -> list[WebhookOut]:
        """The organisation's webhook endpoints; URLs show no query values."""
        require_scope(caller, "account:read")
        return await endpoints.list_for_org(pool, caller.org_id)

    @post("", operation_id="create_webhook", status_code=201)
    async def create_webhook(
        self,
        caller: CallerDep,
        pool: PoolDep,
        clock: ClockDep,
        settings: SettingsDep,
        data: JSONBody[NewWebhook],
    ) -> WebhookOut:
        """Add an endpoint (token created by an administrator). A json endpoint's signing
        secret is in this answer only."""
        require_scope(caller, "account:read")
        return await endpoints.create(
            pool,
            clock.now(),
            org_id=caller.org_id,
            user_id=caller.user_id,
            data=data,
            private_hosts=settings.webhook_private_hosts,
        )

    @delete("/{endpoint_id:int}", operation_id="delete_webhook")
    async def delete_webhook(
        self, caller: CallerDep, pool: PoolDep, clock: ClockDep, endpoint_id: FromPath[int]
    ) -> None:
        """Deactivate an endpoint: nothing more is sent to it (another organisation's: 404)."""
        require_scope(caller, "account:read")
        await endpoints.deactivate(
            pool, clock.now(), org_id=caller.org_id, user_id=caller.user_id, endpoint_id=endpoint_id
        )

    @post("/{endpoint_id:int}/test", operation_id="test_webhook", status_code=200)
    async def test_webhook(
        self,
        caller: CallerDep,
        pool: PoolDep,
        clock: ClockDep,
        settings: SettingsDep,
        endpoint_id: FromPath[int],
    ) -> WebhookTestResult:
        """Send a `test` event to the endpoint now and answer whether it was delivered."""
        require_scope(caller, "account:read")
        return await endpoints.send_test(
            pool,
            clock.now(),
            org_id=caller.org_id,
            user_id=caller.user_id,
            endpoint_id=endpoint_id,
            private_hosts=settings.webhook_private_hosts,
        )
