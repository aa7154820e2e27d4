"""The ASGI entry point servers load: `market.asgi:app` as a factory.

`market serve` has already resolved DATABASE_URL / REDIS_URL (starting embedded services
if needed) and put them in the environment of the server process.
"""

from __future__ import annotations

from litestar import Litestar

from market import logs, settings
from market.app import create_app


def app() -> Litestar:
    loaded = settings.load()
    logs.setup(loaded.log_level)
    return create_app(loaded)
