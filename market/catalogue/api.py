"""The public catalogue API: search published lots and read one. No token needed: it shows
what the lot pages show to any visitor, and nothing more."""

from __future__ import annotations

from litestar import Controller, Response, get
from litestar.params import FromPath, FromQuery

from market.catalogue import services
from market.catalogue.models import CataloguePage, LotDetail
from market.catalogue.web import document_download
from market.deps import ClockDep, PoolDep


def _given(**values: str | list[str] | None) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for name, value in values.items():
        if isinstance(value, list):
            params[name] = value
        elif value is not None:
            params[name] = [value]
    return params


class CatalogueApi(Controller):
    path = "/api/v1/lots"
    tags = ["catalogue"]

    @get("/", operation_id="search_lots", summary="Search the published lots")
    async def search_lots(
        self,
        pool: PoolDep,
        clock: ClockDep,
        q: FromQuery[str | None] = None,
        ipc: FromQuery[str | None] = None,
        kind: FromQuery[str | None] = None,
        region: FromQuery[str | None] = None,
        price_min: FromQuery[str | None] = None,
        price_max: FromQuery[str | None] = None,
        status: FromQuery[list[str] | None] = None,
        ending_soon: FromQuery[str | None] = None,
        sort: FromQuery[str | None] = None,
        page: FromQuery[str | None] = None,
        page_size: FromQuery[str | None] = None,
    ) -> CataloguePage:
        """Published lots matching the filters, 20 a page (page_size up to 100).

        q: keywords (Chinese or Latin); ipc: IPC prefix ("H01M", "H01M 4/");
        kind: patent | trademark | software_copyright; region: prefix ("四川");
        price_min / price_max: yuan, on the current price (highest bid, else the start);
        status: repeatable, default announced + bidding; ending_soon: bidding closes within
        24 h; sort: ending | newest | price_asc | price_desc | relevance (needs q).
        A bad value answers 422 problem details: `code` says what is wrong (e.g.
        `amount_in_wan`, `not_a_choice`, `price_range_reversed`), `field` names the
        parameter and `params` carries the numbers.
        """
        params = _given(
            q=q,
            ipc=ipc,
            kind=kind,
            region=region,
            price_min=price_min,
            price_max=price_max,
            status=status,
            ending_soon=ending_soon,
            sort=sort,
            page=page,
            page_size=page_size,
        )
        return await services.search(pool, services.parse_query(params), clock.now())

    @get("/{reference:str}", operation_id="get_public_lot", summary="Read one published lot")
    async def get_lot(self, pool: PoolDep, reference: FromPath[str]) -> LotDetail:
        """One published lot with its terms, valuation, assets, risk warnings and documents;
        a draft or unknown reference answers 404 `no_published_lot`."""
        return await services.lot_detail(pool, reference)

    @get(
        "/{reference:str}/documents/{document_id:int}",
        operation_id="download_public_lot_document",
        summary="Download a published lot's document",
    )
    async def document(
        self, pool: PoolDep, reference: FromPath[str], document_id: FromPath[int]
    ) -> Response[bytes]:
        """One of the disclosure documents a published lot shows (its `documents` list
        names them): the file's bytes as an attachment. A document not disclosed with a
        published lot answers 404, as an unknown one does."""
        return document_download(await services.document(pool, reference, document_id))
