"""The documents' worker job: render the PDFs of the sale documents issued since the last
sweep (market/documents/rendering.py), every five seconds and once at worker start-up, so
a document whose sweep was missed (the worker was down) is rendered at the next one."""

from __future__ import annotations

import logging
from typing import Any

from arq import cron

from market.commands import Context
from market.documents.rendering import render_pending

log = logging.getLogger("market.documents")


async def render_documents(ctx: dict[str, Any]) -> dict[str, list[int]]:
    context = Context(pool=ctx["pool"], clock=ctx["clock"], redis=ctx.get("redis"))
    rendered = await render_pending(context)
    if rendered:
        log.info("sale documents rendered: %s", rendered)
    return {"rendered": rendered}


JOBS: list[Any] = [render_documents]
CRON: list[Any] = [
    cron(render_documents, second=set(range(0, 60, 5)), unique=True, run_at_startup=True),
]
