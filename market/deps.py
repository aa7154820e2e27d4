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
from market.commands import Act
from market.settings import Settings

PoolDep = NamedDependency[asyncpg.Pool]
RedisDep = NamedDependency[Redis]
ClockDep = NamedDependency[Clock]
SettingsDep = NamedDependency[Settings]
ViewerDep = NamedDependency[Viewer | None]  # a public page: the signed-in user, if any
MeDep = NamedDependency[Viewer]  # a page behind a permission: the signed-in user
CallerDep = NamedDependency[ApiCaller]  # an API route behind a permission: the token's caller
ActDep = NamedDependency[Act]  # run a command as the caller (market/commands.py)
