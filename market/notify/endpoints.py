"""Webhook endpoints of an organisation: create, list, deactivate, send a test
(docs/rules.md §Notifications).

Who may manage them: an administrator of the organisation (MANAGE_WEBHOOKS), on the web
page or through an API token with the scope account:write. Endpoints decide where an
organisation's notifications go, and a robot URL is a credential, so members never see
them and the list's URLs show no query values. A token answers for the person who created
it: the commands here also refuse a token whose creator is no longer an enabled
administrator of the organisation (the permission guard knows a token's scopes, not its
creator's role today).

The json format's secret is generated here and shown once, in the answer that created the
endpoint. A DingTalk robot's 加签 secret is DingTalk's and optional; WeCom robots have none.
Deactivating keeps the row: deliveries name it as their target.
"""

from __future__ import annotations

import ipaddress
import secrets
from datetime import datetime
from typing import Annotated, Any, Final
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import asyncpg
import msgspec
from msgspec import Meta

from market import i18n
from market.accounts.permissions import MANAGE_WEBHOOKS
from market.clock import system_time
from market.commands import UnitOfWork, command
from market.db import Conn, Queries, returned
from market.errors import Conflict, Forbidden, Invalid, NotFound
from market.notify import recipients, webhooks
from market.notify.errors import DeliveryError, TransientDeliveryError
from market.notify.webhooks import WebhookEndpoint, WebhookFormat, WebhookMessage

Q = Queries("webhooks")

# The events an endpoint can subscribe to: every event the outbox carries.
# An invitation is sent to an address before its organisation has any endpoint to hear it.
EVENTS: Final = tuple(e for e in recipients.EVENTS if e != "invitation")
TEST_EVENT = "test"
# Active endpoints per organisation: each is one more POST per notification, so the
# fan-out of one event stays bounded (bench/notifications.py holds delivery to p99 ≤ 1 s).
MAX_ACTIVE_ENDPOINTS = 10
MAX_URL_LENGTH = 2000


class NewWebhook(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    url: Annotated[str, Meta(min_length=1, max_length=MAX_URL_LENGTH)]
    format: WebhookFormat = "json"
    events: list[str] = msgspec.field(default_factory=list)  # empty: every event
    secret: Annotated[str, Meta(max_length=200)] | None = None  # DingTalk 加签 only


class CreateWebhook(NewWebhook, frozen=True, kw_only=True):
    """A new endpoint, and whether the exchange's setting `webhook_private_hosts` lets it
    point at a private host (development); the page or API handler sets that from the
    settings, never from what was posted."""

    private_hosts: bool = False


class WebhookTestRequest(msgspec.Struct, frozen=True, kw_only=True):
    endpoint_id: int
    private_hosts: bool = False  # the setting `webhook_private_hosts`, as above
    timeout_s: float = webhooks.TIMEOUT_SECONDS
    # A sandbox's clock offset: the signature carries the system's time (delivery.py).
    clock_offset_ms: int = 0


class WebhookOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    url: str  # query values masked: a robot's key travels there
    format: WebhookFormat
    events: list[str]
    active: bool
    created_at: datetime
    secret: str | None = None  # json format: only in the answer that created it


class WebhookTestResult(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    # What the receiver did, as recorded for a delivery: technical, in English.
    error: str | None = None
    transient: bool = False  # a failure that real notifications would retry
    # The failure for a person: `problem.<code>` of the catalogs with these parameters.
    code: str | None = None
    params: dict[str, Any] | None = None


# --- validation ---------------------------------------------------------------------------


def validate_url(url: str, *, private_hosts: bool) -> str:
    """An absolute http(s) URL with a host and no credentials or fragment; unless
    `private_hosts` (the setting `webhook_private_hosts`), a host that is visibly not public
    — `localhost` or a loopback or private address — is refused here already (a name that
    resolves to one is refused at each delivery, market/notify/webhooks.py)."""
    url = url.strip()
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise Invalid("url_has_spaces", field="url")
    if len(url) > MAX_URL_LENGTH:
        raise Invalid("too_long", field="url", max=MAX_URL_LENGTH)
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number in range
    except ValueError:
        raise Invalid("url_malformed", field="url") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise Invalid("url_not_http", field="url")
    if not parts.hostname:
        raise Invalid("url_no_host", field="url")
    if parts.username is not None or parts.password is not None:
        raise Invalid("url_has_credentials", field="url")
    if port == 0:
        raise Invalid("url_port_zero", field="url")
    if parts.fragment:
        raise Invalid("url_has_fragment", field="url")
    host = parts.hostname
    if not private_hosts and (
        host == "localhost"
        or host.endswith(".localhost")
        or (_is_address(host) and not webhooks.is_public(host))
    ):
        raise Invalid("webhook_host_not_public", field="url", host=host)
    return urlunsplit(parts._replace(scheme=parts.scheme.lower()))


def mask_url(url: str) -> str:
    """The URL with each query value reduced to its last 4 characters (robot keys live there)."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    masked = [
        f"{k}=…{v[-4:]}" if len(v) >= 12 else f"{k}=…" if v else k
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query="&".join(masked)))


def _check_events(events: list[str]) -> list[str]:
    unknown = sorted(set(events) - set(EVENTS))
    if unknown:
        raise Invalid("unknown_events", field="events", events=unknown, allowed=list(EVENTS))
    return [e for e in EVENTS if e in events]


def _secret_for(data: NewWebhook) -> str:
    given = (data.secret or "").strip()
    if data.format == "json":
        if given:
            raise Invalid("webhook_secret_generated", field="secret")
        return "whsec_" + secrets.token_urlsafe(32)
    if data.format == "wecom" and given:
        raise Invalid("webhook_wecom_no_secret", field="secret")
    return given


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return False
    return True


# --- reading --------------------------------------------------------------------------------


def endpoint_of(row: asyncpg.Record) -> WebhookEndpoint:
    return msgspec.convert(dict(row), WebhookEndpoint)


def _out(row: asyncpg.Record, secret: str | None = None) -> WebhookOut:
    return WebhookOut(
        id=row["id"],
        url=mask_url(row["url"]),
        format=row["format"],
        events=list(row["events"]),
        active=row["active"],
        created_at=row["created_at"],
        secret=secret,
    )


async def list_for_org(pool: asyncpg.Pool, org_id: int) -> list[WebhookOut]:
    async with pool.acquire() as conn:
        return [_out(r) for r in await conn.fetch(Q.org_endpoints, org_id)]


async def get_for_org(conn: Conn, org_id: int, endpoint_id: int) -> WebhookEndpoint:
    """One of the organisation's endpoints; another organisation's is NotFound."""
    row = await conn.fetchrow(Q.org_endpoint, endpoint_id, org_id)
    if row is None:
        raise NotFound("no_such_webhook")
    return endpoint_of(row)


async def for_event(conn: Conn, org_id: int, event: str) -> list[WebhookEndpoint]:
    """The organisation's active endpoints that take `event` (for the relay)."""
    return [endpoint_of(r) for r in await conn.fetch(Q.endpoints_for_event, org_id, event)]


async def by_id(conn: Conn, endpoint_id: int) -> WebhookEndpoint | None:
    """An endpoint by id, active or not (for the delivery job, whose target names it)."""
    row = await conn.fetchrow(Q.endpoint_by_id, endpoint_id)
    return None if row is None else endpoint_of(row)


# --- commands -------------------------------------------------------------------------------


async def _administrator(uow: UnitOfWork) -> asyncpg.Record:
    """The acting person's role and language, if they are an enabled administrator of the
    organisation acted for now (module docstring: a token answers for its creator)."""
    row = await uow.conn.fetchrow(Q.member, uow.actor.user, uow.actor.org)
    if row is None or row["role"] not in MANAGE_WEBHOOKS.roles:
        raise Forbidden("role_not_permitted", permission=MANAGE_WEBHOOKS.name)
    return row


@command(MANAGE_WEBHOOKS)
async def create_webhook(uow: UnitOfWork, data: CreateWebhook) -> WebhookOut:
    """A new active endpoint; a json endpoint's generated secret is in this answer only.

    The organisation's row is locked while its active endpoints are counted, so two
    concurrent creations cannot both pass the cap."""
    url = validate_url(data.url, private_hosts=data.private_hosts)
    events = _check_events(data.events)
    secret = _secret_for(data)
    await _administrator(uow)
    org_id = uow.actor.org
    await uow.conn.fetchrow(Q.lock_org, org_id)
    if await uow.conn.fetchval(Q.count_active, org_id) >= MAX_ACTIVE_ENDPOINTS:
        raise Conflict("webhook_limit_reached", max=MAX_ACTIVE_ENDPOINTS)
    row = returned(
        await uow.conn.fetchrow(Q.insert_endpoint, org_id, url, data.format, secret, events, uow.at)
    )
    uow.audit(
        "webhook.create",
        "webhook_endpoint",
        row["id"],
        after={"url": mask_url(url), "format": data.format, "events": events},
    )
    return _out(row, secret=secret if data.format == "json" else None)


@command(MANAGE_WEBHOOKS)
async def deactivate_webhook(uow: UnitOfWork, endpoint_id: int) -> None:
    """Stop deliveries to one of the organisation's endpoints (another's is NotFound).

    Deactivating twice is harmless: the UPDATE changes only an active row, and of two
    concurrent deactivations the second finds it inactive and writes no audit row."""
    await _administrator(uow)
    await get_for_org(uow.conn, uow.actor.org, endpoint_id)
    if await uow.conn.fetchval(Q.deactivate_endpoint, endpoint_id, uow.actor.org) is None:
        return
    uow.audit(
        "webhook.deactivate",
        "webhook_endpoint",
        endpoint_id,
        before={"active": True},
        after={"active": False},
    )


def make_test_message(at: datetime, endpoint_id: int, lang: str, key: str = "") -> WebhookMessage:
    _ = i18n.translator(i18n.pick(lang))
    return WebhookMessage(
        id=key,
        subject="test",  # a test is in no stream: its sequence is 0
        event=TEST_EVENT,
        notification_id=0,  # no outbox row: a test is not a notification
        created_at=at,
        title=_("webhook.test.title"),
        text=_("webhook.test.text"),
        payload={"endpoint_id": endpoint_id},
    )


@command(MANAGE_WEBHOOKS)
async def send_webhook_test(uow: UnitOfWork, data: WebhookTestRequest) -> WebhookTestResult:
    """Send a `test` event to one of the organisation's endpoints now and say what
    happened.

    Administrators only: it makes the exchange POST to an address they chose. The message
    is in the administrator's language; each click has its own idempotency key, so two
    clicks at once are two tests. It changes nothing: the unit of work only reads, and
    holds its connection for at most one attempt's time limit (twice `timeout_s`)."""
    member = await _administrator(uow)
    endpoint = await get_for_org(uow.conn, uow.actor.org, data.endpoint_id)
    if not endpoint.active:
        raise Conflict("webhook_inactive")
    key = f"ipx-test-{data.endpoint_id}-{secrets.token_hex(8)}"
    message = make_test_message(uow.at, data.endpoint_id, member["language"], key)
    async with webhooks.http_client(private_hosts=data.private_hosts) as http:
        try:
            await webhooks.send(
                endpoint,
                message,
                idempotency_key=key,
                client=http,
                now=system_time(uow.at, data.clock_offset_ms),
                timeout_s=data.timeout_s,
            )
        except DeliveryError as exc:
            return WebhookTestResult(
                ok=False,
                error=exc.message,
                transient=isinstance(exc, TransientDeliveryError),
                code=exc.code,
                params=exc.params,
            )
    return WebhookTestResult(ok=True)
