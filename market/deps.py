"""Names of the request dependencies handlers ask for (provided in market/app.py).

Litestar wants dependencies marked explicitly; these aliases keep signatures short:
`async def page(self, pool: PoolDep, viewer: ViewerDep) -> ...`.
"""

from __future__ import annotations

import asyncpg
from litestar.di import NamedDependency
from redis.asyncio import Redis

from market.accounts.models import ApiCaller, Viewer
from market.clock import Clock
from market.settings import Settings

PoolDep = NamedDependency[asyncpg.Pool]
RedisDep = NamedDependency[Redis]
ClockDep = NamedDependency[Clock]
SettingsDep = NamedDependency[Settings]
ViewerDep = NamedDependency[Viewer | None]
CallerDep = NamedDependency[ApiCaller]
