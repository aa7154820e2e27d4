"""The web application: create_app() and the lifespan that owns the connections."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, cast

import msgspec
from arq.connections import ArqRedis, RedisSettings, create_pool
from litestar import Litestar, Request, Response, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.enums import ScopeType
from litestar.openapi import OpenAPIConfig
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig
from litestar.types import LifeSpanReceive, LifeSpanScope, LifeSpanSend, Receive, Scope, Send

from auctions.api_bidding import bid_reference, fast_bid
from auctions.bidding import TokenBucket
from auctions.live import LiveHub
from auctions.registration import deposit_account, registration_refusal
from auctions.routes import ROUTES as AUCTION_ROUTES
from auctions.writer import bidding_writers
from market import audit, db, i18n, logs, money, problems, reference
from market.accounts.api import AccountsApi
from market.accounts.api_onboarding import JoinApi, OnboardingApi, PeopleApi
from market.accounts.permissions import may, permission_of
from market.accounts.web import AccountPage, AccountPages
from market.accounts.web_onboarding import (
    InvitationPages,
    OperatorPages,
    PeoplePages,
    RegisterPages,
)
from market.acquisition.routes import ROUTES as ACQUISITION_ROUTES
from market.amount_echo import AmountEcho
from market.api_routes import ROUTES as API_ROUTES
from market.buyer.routes import ROUTES as BUYER_ROUTES
from market.cases.routes import ROUTES as CASES_ROUTES
from market.catalogue import home as shelves
from market.catalogue.routes import ROUTES as CATALOGUE_ROUTES
from market.catalogue.web import PROVINCES, remaining
from market.clock import Clock, SandboxClock, SystemClock
from market.collateral.routes import ROUTES as COLLATERAL_ROUTES
from market.csrf import SessionBoundCSRF
from market.deps import ClockDep, PoolDep, SettingsDep, ViewerDep
from market.documents.routes import ROUTES as DOCUMENTS_ROUTES
from market.invoices.routes import ROUTES as INVOICE_ROUTES
from market.licensing.routes import ROUTES as LICENSING_ROUTES
from market.licensing.routes_pledgor import ROUTES as PLEDGOR_ROUTES
from market.listing.routes import ROUTES as LISTING_ROUTES
from market.lots.routes import ROUTES as LOTS_ROUTES
from market.metrics import MetricsApi
from market.notify.payloads import webhooks_section
from market.notify.routes import ROUTES as NOTIFY_ROUTES
from market.notify.routes_interests import ROUTES as INTEREST_ROUTES
from market.notify.routes_webhooks import ROUTES as WEBHOOK_ROUTES
from market.payments.routes import ROUTES as PAYMENT_ROUTES
from market.pools.routes import ROUTES as POOL_ROUTES
from market.sandbox import services as sandbox
from market.sandbox.routes import ROUTES as SANDBOX_ROUTES
from market.security_headers import SecurityHeaders
from market.settings import ROOT
from market.transfer.routes import ROUTES as TRANSFER_ROUTES
from market.web import (
    error_handler,
    language,
    page,
    provide_act,
    provide_caller,
    provide_clock,
    provide_me,
    provide_pool,
    provide_redis,
    provide_settings,
    provide_viewer,
    strict_json_body,
)

log = logging.getLogger(__name__)

# How long a stopping server waits for the requests it is answering. A bid's batch takes
# milliseconds; a page's slowest queries about a second. Past this they meet the closed
# pool and answer 500, which a deploy should not cause, so it is generous.
DRAIN_SECONDS = 10.0


class Health(msgspec.Struct, frozen=True, omit_defaults=True):
    postgres: str
    redis: str


@get("/healthz", operation_id="healthz", tags=["operations"], cache=False)
async def healthz(state: State) -> Response[Health]:
    """200 when PostgreSQL and Redis both answer, else 503 naming what is down."""

    async def pg() -> str:
        async with state.pool.acquire(timeout=2) as conn:
            await conn.fetchval("SELECT 1", timeout=2)
        return "ok"

    async def rd() -> str:
        await state.redis.ping()
        return "ok"

    results = []
    for check in (pg, rd):
        try:
            results.append(await asyncio.wait_for(check(), timeout=3))
        except Exception as exc:
            results.append(f"down: {type(exc).__name__}")
    health = Health(postgres=results[0], redis=results[1])
    ok = results == ["ok", "ok"]
    return Response(health, status_code=200 if ok else 503)


@get("/", operation_id="web_home", include_in_schema=False)
async def home(
    request: Request[Any, Any, State], viewer: ViewerDep, pool: PoolDep, clock: ClockDep
) -> Template:
    """The front door: a search box, the shelves and the figures (market/catalogue/home.py)."""
    now = clock.now()
    _ = i18n.translator(language(request, viewer))
    return page(
        request,
        "home.html",
        viewer,
        home=await shelves.home(pool, now),
        provinces=PROVINCES,
        remaining=lambda until: remaining(_, now, until),
    )


def redis_settings(url: str) -> RedisSettings:
    return RedisSettings.from_dsn(url)


class Exchange(Litestar):
    """The app: Litestar, with the bid API's fast path in front of its router (see
    auctions/api_bidding.py for why). `fast_bids = False` sends every bid through the
    route, as tests do to compare the two."""

    fast_bids = True
    requests = 0  # HTTP requests being answered, for the drain at shutdown
    idle: asyncio.Event | None = None

    async def __call__(
        self,
        scope: Scope | LifeSpanScope,
        receive: Receive | LifeSpanReceive,
        send: Send | LifeSpanSend,
    ) -> None:
        if scope["type"] != ScopeType.HTTP:
            await super().__call__(scope, receive, send)
            return
        self.requests += 1
        try:
            await self._http(scope, receive, send)
        finally:
            self.requests -= 1
            if self.requests == 0 and self.idle is not None:
                self.idle.set()

    async def _http(self, scope: Any, receive: Any, send: Any) -> None:
        reference = bid_reference(scope) if self.fast_bids else None
        if reference is None:
            wrapped = self.state.security_headers.wrap(send, scope["path"])
            await super().__call__(scope, receive, wrapped)
            return

        async def route(replay: Any) -> None:
            wrapped = self.state.security_headers.wrap(send, scope["path"])
            await super(Exchange, self).__call__(scope, replay, wrapped)

        # The fast path writes the API's security headers into its own answer.
        await fast_bid(self.state, reference, scope, receive, send, route)

    async def drain(self, within: float) -> int:
        """Wait up to `within` s for the requests being answered: a server stopping lets
        them finish (a bid waiting for its batch gets its answer; a client that hung up
        leaves its request running, which would otherwise meet a closed pool and log a
        500). Returns how many were still running."""
        if self.requests:
            self.idle = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.idle.wait(), within)
        return self.requests


def create_app(settings: SettingsDep, clock: Clock | None = None) -> Exchange:
    if settings.database_url is None or settings.redis_url is None:
        raise ValueError("create_app needs database and Redis URLs; `market serve` resolves them")
    database_url, redis_url = settings.database_url, settings.redis_url
    # A sandbox runs on the system's time (or the one given) plus the offset its operator
    # moved it by; production has no such clock and no route to move one (market/sandbox).
    clock = clock or SystemClock()
    if settings.sandbox:
        clock = SandboxClock(clock)
    # The catalogs are read (and checked) now, not by the first request that needs a word:
    # reading them takes a few hundred milliseconds that would stall every request then.
    i18n.check_catalogs()
    audit.use_key(audit.key_of(settings))  # every audit row this process writes is keyed

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.pool = await db.create_pool(database_url, max_size=settings.db_pool_max)
        redis: ArqRedis = await create_pool(redis_settings(redis_url))
        app.state.redis = redis
        app.state.writers = bidding_writers(app.state.pool, redis, app.state.clock, settings)
        app.state.bid_limiter = TokenBucket(settings.bid_rate_per_second, settings.bid_burst)
        app.state.live_hub = LiveHub(redis)
        follower = await sandbox.start_following(app.state.clock, app.state.pool, redis)
        try:
            yield
        finally:
            await sandbox.stop_following(follower)
            # Live streams end first (they never finish on their own), then the requests
            # being answered finish, then the writers land what they still hold.
            await app.state.live_hub.close()
            left = await cast(Exchange, app).drain(DRAIN_SECONDS)
            if left:
                log.warning("stopping with %d requests still running", left)
            await app.state.writers.stop()
            await redis.aclose()
            await app.state.pool.close()

    def engine_callback(engine: JinjaTemplateEngine) -> None:
        env = engine.engine
        i18n.install(env)
        env.globals["format_cny"] = money.format_cny
        env.globals["cny_capitals"] = money.cny_capitals
        env.globals["langs"] = i18n.LANGS
        env.globals["tz"] = settings.timezone
        env.globals["deposit_account"] = deposit_account(settings)
        env.globals["registration_refusal"] = registration_refusal
        env.globals["may"] = may
        env.filters["local"] = _local_time(settings.timezone)
        # A sandbox says so on every page, in both languages (templates/base.html).
        env.globals["sandbox"] = settings.sandbox
        env.globals["exchange_now"] = clock.now
        env.globals["text_in"] = i18n.gettext

    app = Exchange(
        route_handlers=[
            healthz,
            home,
            AmountEcho,
            AccountPages,
            RegisterPages,
            InvitationPages,
            PeoplePages,
            AccountPage,
            OperatorPages,
            JoinApi,
            AccountsApi,
            PeopleApi,
            OnboardingApi,
            *COLLATERAL_ROUTES,
            *CASES_ROUTES,
            *LOTS_ROUTES,
            *LICENSING_ROUTES,
            *LISTING_ROUTES,
            *ACQUISITION_ROUTES,
            *TRANSFER_ROUTES,
            *CATALOGUE_ROUTES,
            *AUCTION_ROUTES,
            *BUYER_ROUTES,
            *WEBHOOK_ROUTES,
            *INTEREST_ROUTES,
            *NOTIFY_ROUTES,
            *POOL_ROUTES,
            *PAYMENT_ROUTES,
            *PLEDGOR_ROUTES,
            *DOCUMENTS_ROUTES,
            *INVOICE_ROUTES,
            *(SANDBOX_ROUTES if settings.sandbox else ()),
            MetricsApi,
            *API_ROUTES,
            reference.ReferencePage,
            create_static_files_router(
                path="/static", directories=[ROOT / "static"], include_in_schema=False
            ),
        ],
        lifespan=[lifespan],
        state=State(
            {
                "settings": settings,
                "clock": clock,
                "security_headers": SecurityHeaders(settings),
            }
        ),
        dependencies={
            "settings": Provide(provide_settings, sync_to_thread=False),
            "clock": Provide(provide_clock, sync_to_thread=False),
            "pool": Provide(provide_pool, sync_to_thread=False),
            "redis": Provide(provide_redis, sync_to_thread=False),
            "viewer": Provide(provide_viewer),
            "me": Provide(provide_me),
            "caller": Provide(provide_caller),
            "act": Provide(provide_act),
        },
        # Forms' tokens are bound to the session (market/csrf.py); the API is exempt.
        middleware=[logs.request_id_middleware, SessionBoundCSRF],
        before_request=strict_json_body,
        template_config=TemplateConfig(
            directory=ROOT / "templates",
            engine=JinjaTemplateEngine,
            engine_callback=engine_callback,
        ),
        openapi_config=OpenAPIConfig(
            title="IP Collateral Disposal Exchange API",
            version="1",
            path="/schema",
            # An operation's description is its handler's docstring (market/api_docs.py).
            use_handler_docstrings=True,
            components=reference.components(),
            webhooks=webhooks_section(),
        ),
        exception_handlers={Exception: error_handler},
        # Disclosure documents (≤ 20 MB, market/cases) and portfolio CSVs: the largest bodies.
        request_max_body_size=32 * 1024 * 1024,
        debug=False,
    )
    for route in app.routes:
        if route.path.startswith("/api/"):
            for handler in getattr(route, "route_handlers", ()):
                permission = permission_of(handler)
                problems.document(handler, guarded=permission is not None)
                reference.document(handler, permission)
    return app


def _local_time(tz_name: str) -> Any:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(tz_name)

    def local(value: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
        if value is None or value == "":
            return ""
        if isinstance(value, str):  # an API answer's ISO 8601 instant
            value = datetime.fromisoformat(value)
        return str(value.astimezone(zone).strftime(fmt))

    return local
