"""The ASGI entry point servers load: `market.asgi:app` as a factory.

`market serve` has already resolved DATABASE_URL / REDIS_URL (starting embedded services
if needed) and put them in the environment of the server process.
"""

from __future__ import annotations

import gc

from litestar import Litestar

from market import logs, settings
from market.app import create_app


def app() -> Litestar:
    loaded = settings.load()
    logs.setup(loaded.log_level)
    app = create_app(loaded)
    # What exists now lives as long as the process (modules, routes, templates): frozen
    # out of the cyclic collector, a full collection scans only what came since. Without
    # this each full collection paused the event loop for about 70 ms, every few seconds
    # under load — every bid in flight waited (bench/bidding.py rejects_only, p99).
    gc.collect()
    gc.freeze()
    return app
