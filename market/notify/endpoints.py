"""Webhook endpoints of an organisation: create, list, deactivate, send a test (issue 5).

Who may manage them: an enabled administrator of the organisation, on the web page or
through an API token that such an administrator created (the token's creator answers for
what it does; see market/accounts). Endpoints decide where an organisation's notifications
go, and a robot URL is a credential, so members and tokens of members only read the list,
whose URLs show no query values.

The json format's secret is generated here and shown once, in the answer that created the
endpoint. A DingTalk robot's 加签 secret is DingTalk's and optional; WeCom robots have none.
Deactivating keeps the row: deliveries name it as their target.
"""

from __future__ import annotations

import ipaddress
import secrets
from datetime import datetime
from typing import Annotated, Final
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import asyncpg
import httpx
import msgspec
from msgspec import Meta

from market import audit, i18n
from market.db import Conn, Queries, returned
from market.errors import Conflict, Forbidden, Invalid, NotFound
from market.notify import recipients, webhooks
from market.notify.errors import DeliveryError, TransientDeliveryError
from market.notify.webhooks import WebhookEndpoint, WebhookFormat, WebhookMessage

Q = Queries("webhooks")

# The events an endpoint can subscribe to: every event the outbox carries (issue 5).
EVENTS: Final = recipients.EVENTS
TEST_EVENT = "test"
# Active endpoints per organisation: each is one more POST per notification, so the
# fan-out of one event stays bounded (issue 5: delivery p99 ≤ 1 s at 500/s).
MAX_ACTIVE_ENDPOINTS = 10
MAX_URL_LENGTH = 2000


class NewWebhook(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    url: Annotated[str, Meta(min_length=1, max_length=MAX_URL_LENGTH)]
    format: WebhookFormat = "json"
    events: list[str] = msgspec.field(default_factory=list)  # empty: every event
    secret: Annotated[str, Meta(max_length=200)] | None = None  # DingTalk 加签 only


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
    error: str | None = None
    transient: bool = False  # a failure that real notifications would retry


# --- validation ---------------------------------------------------------------------------


def validate_url(url: str, *, private_hosts: bool) -> str:
    """An absolute http(s) URL with a host and no credentials or fragment; unless
    `private_hosts` (the setting `webhook_private_hosts`), a host that is visibly not public
    — `localhost` or a loopback or private address — is refused here already (a name that
    resolves to one is refused at each delivery, market/notify/webhooks.py)."""
    url = url.strip()
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise Invalid("url: must not contain spaces or control characters", field="url")
    if len(url) > MAX_URL_LENGTH:
        raise Invalid(f"url: at most {MAX_URL_LENGTH} characters", field="url")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number in range
    except ValueError:
        raise Invalid("url: not a valid URL", field="url") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise Invalid("url: must start with https:// (or http://)", field="url")
    if not parts.hostname:
        raise Invalid("url: names no host", field="url")
    if parts.username is not None or parts.password is not None:
        raise Invalid("url: must not carry a user name or password", field="url")
    if port == 0:
        raise Invalid("url: port 0 cannot be reached", field="url")
    if parts.fragment:
        raise Invalid("url: must not have a #fragment", field="url")
    host = parts.hostname
    if not private_hosts and (
        host == "localhost"
        or host.endswith(".localhost")
        or (_is_address(host) and not webhooks.is_public(host))
    ):
        raise Invalid(
            f"url: {host} is not a public host; webhooks go to public hosts only", field="url"
        )
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
        raise Invalid(
            f"events: unknown {', '.join(unknown)}; choose from {', '.join(EVENTS)}",
            field="events",
        )
    return [e for e in EVENTS if e in events]


def _secret_for(data: NewWebhook) -> str:
    given = (data.secret or "").strip()
    if data.format == "json":
        if given:
            raise Invalid(
                "secret: the json format's signing secret is generated by the exchange",
                field="secret",
            )
        return "whsec_" + secrets.token_urlsafe(32)
    if data.format == "wecom" and given:
        raise Invalid("secret: WeCom group robots take no secret", field="secret")
    return given


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
        raise NotFound("no such webhook")
    return endpoint_of(row)


async def for_event(conn: Conn, org_id: int, event: str) -> list[WebhookEndpoint]:
    """The organisation's active endpoints that take `event` (for the relay)."""
    return [endpoint_of(r) for r in await conn.fetch(Q.endpoints_for_event, org_id, event)]


async def by_id(conn: Conn, endpoint_id: int) -> WebhookEndpoint | None:
    """An endpoint by id, active or not (for the delivery job, whose target names it)."""
    row = await conn.fetchrow(Q.endpoint_by_id, endpoint_id)
    return None if row is None else endpoint_of(row)


# --- changes --------------------------------------------------------------------------------


async def _require_admin(conn: Conn, org_id: int, user_id: int) -> asyncpg.Record:
    row = await conn.fetchrow(Q.member, user_id, org_id)
    if row is None or row["role"] != "admin":
        raise Forbidden("only an organisation's administrators manage webhooks")
    return row


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return False
    return True


async def create(
    pool: asyncpg.Pool,
    at: datetime,
    *,
    org_id: int,
    user_id: int,
    data: NewWebhook,
    private_hosts: bool,
) -> WebhookOut:
    """A new active endpoint; a json endpoint's generated secret is in this answer only."""
    url = validate_url(data.url, private_hosts=private_hosts)
    events = _check_events(data.events)
    secret = _secret_for(data)
    async with pool.acquire() as conn, conn.transaction():
        await _require_admin(conn, org_id, user_id)
        await conn.fetchrow(Q.lock_org, org_id)
        if await conn.fetchval(Q.count_active, org_id) >= MAX_ACTIVE_ENDPOINTS:
            raise Conflict(
                f"an organisation has at most {MAX_ACTIVE_ENDPOINTS} active webhooks; "
                "deactivate one first"
            )
        row = returned(
            await conn.fetchrow(Q.insert_endpoint, org_id, url, data.format, secret, events, at)
        )
        await audit.append(
            conn,
            at=at,
            chain_org_id=org_id,
            actor_user_id=user_id,
            actor_org_id=org_id,
            action="webhook.create",
            object_kind="webhook_endpoint",
            object_id=row["id"],
            after={"url": mask_url(url), "format": data.format, "events": events},
        )
    return _out(row, secret=secret if data.format == "json" else None)


async def deactivate(
    pool: asyncpg.Pool, at: datetime, *, org_id: int, user_id: int, endpoint_id: int
) -> None:
    """Stop deliveries to the endpoint; deactivating twice is harmless."""
    async with pool.acquire() as conn, conn.transaction():
        await _require_admin(conn, org_id, user_id)
        await get_for_org(conn, org_id, endpoint_id)
        if await conn.fetchval(Q.deactivate_endpoint, endpoint_id, org_id) is None:
            return
        await audit.append(
            conn,
            at=at,
            chain_org_id=org_id,
            actor_user_id=user_id,
            actor_org_id=org_id,
            action="webhook.deactivate",
            object_kind="webhook_endpoint",
            object_id=endpoint_id,
            before={"active": True},
            after={"active": False},
        )


def make_test_message(at: datetime, endpoint_id: int, lang: str) -> WebhookMessage:
    _ = i18n.translator(i18n.pick(lang))
    return WebhookMessage(
        event=TEST_EVENT,
        notification_id=0,  # no outbox row: a test is not a notification
        created_at=at,
        title=_("webhook.test.title"),
        text=_("webhook.test.text"),
        payload={"endpoint_id": endpoint_id},
    )


async def send_test(
    pool: asyncpg.Pool,
    at: datetime,
    *,
    org_id: int,
    user_id: int,
    endpoint_id: int,
    private_hosts: bool,
    client: httpx.AsyncClient | None = None,
    timeout_s: float = webhooks.TIMEOUT_SECONDS,
) -> WebhookTestResult:
    """Send a `test` event to the endpoint now and say what happened.

    Administrators only: it makes the exchange POST to an address they chose. The message
    is in the administrator's language; each click has its own idempotency key.
    """
    async with pool.acquire() as conn:
        member = await _require_admin(conn, org_id, user_id)
        endpoint = await get_for_org(conn, org_id, endpoint_id)
    if not endpoint.active:
        raise Conflict("this webhook is deactivated")
    message = make_test_message(at, endpoint_id, member["language"])
    key = f"ipx-test-{endpoint_id}-{secrets.token_hex(8)}"

    async def attempt(http: httpx.AsyncClient) -> WebhookTestResult:
        try:
            await webhooks.send(
                endpoint, message, idempotency_key=key, client=http, now=at, timeout_s=timeout_s
            )
        except DeliveryError as exc:
            return WebhookTestResult(
                ok=False, error=exc.message, transient=isinstance(exc, TransientDeliveryError)
            )
        return WebhookTestResult(ok=True)

    if client is not None:
        return await attempt(client)
    async with webhooks.http_client(private_hosts=private_hosts) as own:
        return await attempt(own)
