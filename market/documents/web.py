"""The pages of the sale documents: the public verification page, and the parties' list
with their PDFs. Thin adapters over market/documents/views.py."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from market.accounts.permissions import READ_SALE_DOCUMENTS, allow
from market.deps import MeDep, PoolDep, ViewerDep
from market.documents import codes, views
from market.web import content_disposition, page


def pdf_response(found: views.DocumentPdf) -> Response[bytes]:
    return Response(
        found.content,
        media_type="application/pdf",
        headers={
            "Content-Disposition": content_disposition(found.filename),
            "X-Content-Type-Options": "nosniff",
        },
    )


class VerifyPages(Controller):
    path = "/verify"
    include_in_schema = False

    @get("", operation_id="web_verify_form")
    async def form(
        self, request: Request[Any, Any, State], viewer: ViewerDep, code: FromQuery[str] = ""
    ) -> Template | Redirect:
        """The form to type a code; a typed code goes to its page."""
        if code.strip():
            normal = codes.normalise(code[:60]) or "".join(c for c in code[:60] if c.isalnum())
            return Redirect(f"/verify/{normal or '-'}")
        return page(request, "documents/verify.html", viewer, found=None)

    @get("/{code:str}", operation_id="web_verify_document")
    async def document(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        viewer: ViewerDep,
        code: FromPath[str],
    ) -> Template:
        """What the document with this code certifies; 404 for an unknown or mistyped code."""
        found = await views.verify(pool, code)
        return page(request, "documents/verify.html", viewer, found=found)


class DocumentPages(Controller):
    path = "/documents"
    include_in_schema = False
    guards = [allow(READ_SALE_DOCUMENTS)]

    @get("", operation_id="web_sale_documents")
    async def documents(
        self, request: Request[Any, Any, State], pool: PoolDep, me: MeDep
    ) -> Template:
        found = await views.page_documents(pool, me.org_id, cursor=None, limit=200)
        return page(request, "documents/list.html", me, documents=found.items)

    @get("/{code:str}/pdf", operation_id="web_download_sale_document")
    async def download(self, pool: PoolDep, me: MeDep, code: FromPath[str]) -> Response[bytes]:
        return pdf_response(await views.pdf(pool, me.org_id, code))
