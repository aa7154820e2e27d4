"""The public catalogue pages: the search with its htmx results fragment, the lot page, and
the download of a lot's disclosure documents. Open to everyone, signed in or not (their
operation ids are in market.accounts.permissions.PUBLIC); a signed-in viewer sees more on
the lot page; whether that viewer may register and bid is `refusal(BID, …)`'s answer
(auctions.registration.registration_refusal, which the registration panel asks)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlencode

import asyncpg
from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Template

from auctions.web_bidding import bid_panel
from market import i18n
from market.accounts.models import Viewer
from market.cases.filetypes import media_and_charset
from market.catalogue import services
from market.catalogue.models import (
    ASSET_KINDS,
    DEFAULT_STATUSES,
    PUBLIC_STATUSES,
    SORTS,
    CataloguePage,
    DocumentBytes,
)
from market.deps import ClockDep, PoolDep, ViewerDep
from market.errors import Invalid
from market.web import Form, content_disposition, language, page

# For the region box's suggestions; any prefix of a region works.
PROVINCES: Final = (
    "北京", "天津", "河北", "山西", "内蒙古", "辽宁", "吉林", "黑龙江", "上海", "江苏", "浙江",
    "安徽", "福建", "江西", "山东", "河南", "湖北", "湖南", "广东", "广西", "海南", "重庆",
    "四川", "贵州", "云南", "西藏", "陕西", "甘肃", "青海", "宁夏", "新疆",
)  # fmt: skip
FORM_FIELDS: Final = (
    "q", "ipc", "kind", "region", "price_min", "price_max", "status", "ending_soon", "sort",
)  # fmt: skip
# Documents are served as downloads; only these types keep their own media type, anything
# else (HTML, SVG, scripts) goes out as bytes a browser will not render in our origin.
_SAFE_TYPE: Final = re.compile(
    r"^(application/(pdf|zip|msword|vnd\.openxmlformats-officedocument\.[a-z.]+|"
    r"vnd\.ms-excel|vnd\.ms-powerpoint|ofd)|image/(png|jpeg|gif|webp|tiff)|text/(plain|csv))$"
)


def _params(request: Request[Any, Any, Any]) -> dict[str, list[str]]:
    query = request.query_params
    return {key: [str(v) for v in query.getall(key)] for key in query}


def remaining(_: Callable[..., str], now: datetime, until: datetime | None) -> str:
    """'2 天 3 小时' until `until`, coarser as it gets further away; '' if none."""
    if until is None:
        return ""
    seconds = int((until - now).total_seconds())
    if seconds <= 0:
        return ""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = max(1, rest // 60) if not days and not hours else rest // 60
    if days:
        return _("catalogue.duration.dh", d=days, h=hours)
    if hours:
        return _("catalogue.duration.hm", h=hours, m=minutes)
    return _("catalogue.duration.m", m=minutes)


def _url(path: str, params: Mapping[str, Sequence[str]], **changes: str | None) -> str:
    pairs = [(k, v) for k, values in params.items() if k not in changes for v in values if v]
    pairs += [(k, v) for k, v in changes.items() if v]
    return path + ("?" + urlencode(pairs) if pairs else "")


def _context(result: CataloguePage | None, params: dict[str, list[str]]) -> dict[str, Any]:
    chosen = params.get("status") or []
    statuses = [s for value in chosen for s in value.split(",")] or list(DEFAULT_STATUSES)
    return {
        "result": result,
        "values": {k: (params.get(k) or [""])[0] for k in FORM_FIELDS},
        "chosen_statuses": statuses,
        "statuses": PUBLIC_STATUSES,
        "kinds": ASSET_KINDS,
        "sorts": SORTS,
        "provinces": PROVINCES,
        "page_url": lambda n: _url("/lots", params, page=str(n)),
        "partial_url": lambda n: _url("/lots/results", params, page=str(n)),
    }


class CataloguePages(Controller):
    include_in_schema = False

    async def _search(
        self,
        request: Request[Any, Any, State],
        pool: asyncpg.Pool,
        now: datetime,
        viewer: Viewer | None,
    ) -> tuple[dict[str, Any], dict[str, str], int]:
        params = _params(request)
        lang = language(request, viewer)
        # A search is a form sent with GET: a refusal shows beside the parameter at fault,
        # in the page's language, and the page answers with the refusal's status.
        form = Form({}, lang)
        result = None
        status_code = 200
        try:
            result = await services.search(pool, services.parse_query(params), now)
        except Invalid as exc:
            form.refuse(exc)
            status_code = form.status
        context = _context(result, params)
        _ = i18n.translator(lang)
        context["remaining"] = lambda until: remaining(_, now, until)
        context["now"] = now
        return context, form.errors, status_code

    @get("/lots", operation_id="web_catalogue")
    async def catalogue(
        self, request: Request[Any, Any, State], pool: PoolDep, clock: ClockDep, viewer: ViewerDep
    ) -> Template:
        """The search form with the first results; works without JavaScript."""
        context, errors, status_code = await self._search(request, pool, clock.now(), viewer)
        return page(
            request,
            "catalogue/index.html",
            viewer,
            status_code=status_code,
            errors=errors,
            **context,
        )

    @get("/lots/results", operation_id="web_catalogue_results")
    async def results(
        self, request: Request[Any, Any, State], pool: PoolDep, clock: ClockDep, viewer: ViewerDep
    ) -> Template:
        """Only the results fragment, for htmx; the address bar shows the full page's URL."""
        context, errors, status_code = await self._search(request, pool, clock.now(), viewer)
        response = page(
            request,
            "catalogue/_results.html",
            viewer,
            status_code=status_code,
            errors=errors,
            fragment=True,
            **context,
        )
        response.headers["HX-Push-Url"] = _url("/lots", _params(request))
        return response

    @get("/lots/{reference:str}", operation_id="web_lot")
    async def lot(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        viewer: ViewerDep,
        reference: FromPath[str],
    ) -> Template:
        """A published lot: schedule, terms, valuation, assets, risk warnings, documents,
        and its live bidding (auctions/web_bidding.py)."""
        return await lot_page(request, pool, clock.now(), viewer, reference)

    @get(
        "/lots/{reference:str}/documents/{document_id:int}",
        operation_id="web_lot_document",
    )
    async def document(
        self, pool: PoolDep, reference: FromPath[str], document_id: FromPath[int]
    ) -> Response[bytes]:
        """A public disclosure document of a published lot, as a download."""
        return document_download(await services.document(pool, reference, document_id))


def document_download(doc: DocumentBytes) -> Response[bytes]:
    """A public document's bytes as an attachment, with its type only if a safe one."""
    media_type, charset = media_and_charset(doc.content_type)
    return Response(
        doc.content,
        media_type=media_type if _SAFE_TYPE.match(media_type) else "application/octet-stream",
        encoding=charset,
        headers={
            "Content-Disposition": content_disposition(doc.filename),
            "X-Content-Type-Options": "nosniff",
        },
    )


async def lot_page(
    request: Request[Any, Any, State],
    pool: asyncpg.Pool,
    now: datetime,
    viewer: Viewer | None,
    reference: str,
    *,
    status_code: int = 200,
    panel: dict[str, Any] | None = None,
) -> Template:
    """The lot page; `panel` is the bid panel's context when a bid was just posted."""
    detail = await services.lot_detail(pool, reference)
    _ = i18n.translator(language(request, viewer))
    if panel is None:
        panel = await bid_panel(pool, viewer, reference, now)
    return page(
        request,
        "catalogue/lot.html",
        viewer,
        status_code=status_code,
        lot=detail,
        now=now,
        remaining=lambda until: remaining(_, now, until),
        **panel,
    )
