"""The sale documents against real PostgreSQL (docs/rules.md §Sale documents): the 成交确认书
written at the close and the 交易凭证 at the payment, rendered by the worker into PDFs whose
text (read back with pypdf) names the parties, the assets' numbers, the amounts in figures
and in capitals and the verification code; the public verification page and API; the
PDF's hash in the bank's audit chain equal to the served bytes'; one document however
many issue it at once."""

from __future__ import annotations

import asyncio
import hashlib
import io
import subprocess
import sys
from datetime import timedelta
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar.testing import AsyncTestClient
from pypdf import PdfReader

from market.clock import FrozenClock
from market.commands import SYSTEM, Context, run, unit_of_work
from market.documents import codes, jobs
from market.documents.content import DocumentContent
from market.documents.issue import issue_certificate
from market.documents.render import render
from market.documents.rendering import RenderDocument, render_document, render_pending
from market.money import cny_capitals, format_cny
from market.settings import ROOT, Settings
from tests.auctions.test_closing import START, close_one, make_scene, pay, place_bids, rows, value
from tests.factories import make_token, sign_in

PRICE = START + 5_000_00


def pdf_text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


def flat(text: str) -> str:
    """The extracted text without the line breaks the layout put in."""
    return "".join(text.split())


async def sold(pool: asyncpg.Pool, clock: FrozenClock, settings: Settings) -> Any:
    """A lot closed with a sale to the first of two bidders at PRICE."""
    scene = await make_scene(pool, clock, settings, buyers=2, waiting=0)
    a, b = scene.buyers
    at = scene.ends_at - timedelta(hours=1)
    await place_bids(
        pool, scene.lot.id, [(b.registration_id, START, at), (a.registration_id, PRICE, at)]
    )
    result = await close_one(pool, settings, scene.ends_at, scene.lot.id)
    assert result.sale is not None and result.sale.buyer_org_id == a.org_id
    scene.ctx["sale"] = result.sale
    return scene


async def stored(pool: asyncpg.Pool, sale_id: int, kind: str) -> asyncpg.Record:
    found = await rows(
        pool,
        "SELECT d.*, b.content AS pdf FROM sale_documents d"
        " LEFT JOIN document_blobs b ON b.sha256 = d.sha256 WHERE d.sale_id=$1 AND d.kind=$2",
        sale_id,
        kind,
    )
    assert len(found) == 1
    return found[0]


async def parties(pool: asyncpg.Pool, sale_id: int) -> dict[str, Any]:
    row = (
        await rows(
            pool,
            "SELECT b.name AS bank, p.name AS pledgor, o.name AS buyer, l.id AS lot_id"
            " FROM sales s JOIN lots l ON l.id=s.lot_id JOIN disposal_cases c ON c.id=l.case_id"
            " JOIN loans n ON n.id=c.loan_id JOIN pledgors p ON p.id=n.pledgor_id"
            " JOIN organisations b ON b.id=l.bank_org_id JOIN organisations o ON o.id=s.buyer_org_id"
            " WHERE s.id=$1",
            sale_id,
        )
    )[0]
    numbers = [
        r["number"]
        for r in await rows(
            pool,
            "SELECT a.number FROM lot_assets la JOIN ip_assets a ON a.id=la.asset_id WHERE la.lot_id=$1",
            row["lot_id"],
        )
    ]
    assert len(numbers) == 2
    return {**dict(row), "numbers": numbers}


async def test_both_documents_render_with_parties_amounts_capitals_and_code(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await sold(pool, clock, settings)
    sale = scene.ctx["sale"]
    ctx = Context(pool=pool, clock=FrozenClock(scene.ends_at + timedelta(seconds=5)))
    who = await parties(pool, sale.id)

    # The close wrote the confirmation's row; the worker renders its PDF.
    row = await stored(pool, sale.id, "confirmation")
    assert row["sha256"] is None and row["issued_at"] == scene.ends_at
    assert await render_pending(ctx) == [row["id"]]
    assert await render_pending(ctx) == []  # rendered once
    row = await stored(pool, sale.id, "confirmation")
    text = pdf_text(row["pdf"])
    words = flat(text)
    for name in (who["bank"], who["pledgor"], who["buyer"], *who["numbers"]):
        assert flat(name) in words, name
    for fen in (sale.price_fen, sale.deposit_fen, sale.balance_due_fen):
        assert format_cny(fen) in words, fen
    assert cny_capitals(sale.price_fen) in words
    assert cny_capitals(sale.balance_due_fen) in words
    assert sale.payment_reference in words
    assert codes.grouped(row["code"]) in words
    assert "成交确认书" in words and "SaleConfirmation" in words
    assert "质押登记注销" in words and "著录项目变更" in words

    # The balance recorded paid issues the certificate.
    clock.set(scene.ends_at + timedelta(days=2))
    await pay(pool, clock, scene.operator_user, sale.payment_reference, sale.balance_due_fen)
    assert await render_pending(ctx) != []
    cert = await stored(pool, sale.id, "certificate")
    assert cert["code"] != row["code"]
    words = flat(pdf_text(cert["pdf"]))
    for name in (who["bank"], who["pledgor"], who["buyer"], *who["numbers"]):
        assert flat(name) in words, name
    total = sale.price_fen  # commission, not a buyer's premium: the buyer pays the price
    assert format_cny(total) in words and cny_capitals(total) in words
    assert codes.grouped(cert["code"]) in words
    assert "交易凭证" in words and "TransactionCertificate" in words

    # Deterministic: the stored content renders the stored bytes again.
    for doc in (row, cert):
        content = msgspec.convert(doc["content"], DocumentContent, strict=False)
        assert render(content) == bytes(doc["pdf"])
        assert hashlib.sha256(doc["pdf"]).digest() == doc["sha256"]

    # Both parties are told, once each, per document.
    told = await rows(
        pool,
        "SELECT recipient_org_id, payload->>'kind' AS kind FROM outbox"
        " WHERE event='document_issued' ORDER BY id",
    )
    assert sorted((r["recipient_org_id"], r["kind"]) for r in told) == sorted(
        (org, kind)
        for org in (scene.bank_org, sale.buyer_org_id)
        for kind in ("confirmation", "certificate")
    )


async def test_verification_page_and_api_answer_a_real_code_and_404_a_forged_one(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, client: AsyncTestClient[Any]
) -> None:
    scene = await sold(pool, clock, settings)
    sale = scene.ctx["sale"]
    await render_pending(Context(pool=pool, clock=clock))
    row = await stored(pool, sale.id, "confirmation")
    code = row["code"]
    who = await parties(pool, sale.id)

    page = await client.get(f"/verify/{codes.grouped(code).lower()}")
    assert page.status_code == 200
    for shown in (who["buyer"], who["bank"], who["pledgor"], *who["numbers"], row["sha256"].hex()):
        assert shown in page.text
    assert cny_capitals(sale.price_fen) in page.text and format_cny(sale.price_fen) in page.text
    typed = await client.get(f"/verify?code={codes.grouped(code)}", follow_redirects=False)
    assert typed.status_code in (302, 303) and typed.headers["location"] == f"/verify/{code}"

    api = await client.get(f"/api/v1/verify/{code}")
    assert api.status_code == 200
    body = api.json()
    assert body["kind"] == "confirmation" and body["sha256"] == row["sha256"].hex()
    assert body["content"]["buyer"]["name"] == who["buyer"]
    assert body["content"]["price_capitals"] == cny_capitals(sale.price_fen)

    # A changed character fails the check; a well-formed code nobody was issued is unknown.
    i = next(i for i in range(len(code) - 1) if code[i] != code[i + 1])
    swapped = code[:i] + code[i + 1] + code[i] + code[i + 2 :]
    unknown = codes.new_code()
    for forged in (code[:-1] + ("0" if code[-1] != "0" else "1"), swapped, unknown, "x" * 20):
        assert (await client.get(f"/verify/{forged}")).status_code == 404, forged
        answer = await client.get(f"/api/v1/verify/{forged}")
        assert answer.status_code == 404
        assert answer.json()["code"] == "no_such_verification_code"
        assert answer.json()["field"] == "code"
    # Nothing a verification writes.
    assert await value(pool, "SELECT count(*) FROM sale_documents") == 1


async def test_the_audit_chain_holds_the_hash_of_the_served_pdf(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, client: AsyncTestClient[Any]
) -> None:
    scene = await sold(pool, clock, settings)
    sale = scene.ctx["sale"]
    row = await stored(pool, sale.id, "confirmation")
    bank_token = await make_token(pool, clock.now(), scene.bank_user, ["documents:read"])
    buyer = scene.buyers[0]
    buyer_token = await make_token(pool, clock.now(), buyer.user_id, ["documents:read"])
    other = scene.buyers[1]
    other_token = await make_token(pool, clock.now(), other.user_id, ["documents:read"])

    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    url = f"/api/v1/sale-documents/{row['code']}/pdf"
    not_yet = await client.get(url, headers=auth(buyer_token))
    assert not_yet.status_code == 409 and not_yet.json()["code"] == "document_not_ready"
    await render_pending(Context(pool=pool, clock=clock))

    served = await client.get(url, headers=auth(bank_token))
    assert served.status_code == 200 and served.headers["content-type"] == "application/pdf"
    assert (await client.get(url, headers=auth(buyer_token))).content == served.content
    # The losing bidder is no party to the sale.
    assert (await client.get(url, headers=auth(other_token))).status_code == 404

    trail = await rows(
        pool,
        "SELECT chain_org_id, after FROM audit_log WHERE action='document.issue'"
        " AND object_kind='sale_document' AND object_id=$1",
        str(row["id"]),
    )
    assert len(trail) == 1
    assert trail[0]["chain_org_id"] == scene.bank_org
    after = trail[0]["after"]
    assert after["sha256"] == hashlib.sha256(served.content).hexdigest()
    assert after["code"] == row["code"] and after["sale_id"] == sale.id

    listed = await client.get("/api/v1/sale-documents/", headers=auth(buyer_token))
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert [(i["kind"], i["role"], i["sha256"]) for i in items] == [
        ("confirmation", "buyer", after["sha256"])
    ]
    assert (await client.get("/api/v1/sale-documents/", headers=auth(other_token))).json()[
        "items"
    ] == []


async def test_issuing_or_rendering_twice_at_once_yields_one_document(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await sold(pool, clock, settings)
    sale = scene.ctx["sale"]
    # The balance arrives (as record_payment marks it), and two issuings of its
    # certificate race.
    paid_at = scene.ends_at + timedelta(days=1)
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE sales SET status='paid', paid_at=$2 WHERE id=$1", sale.id, paid_at
        )
    ctx = Context(pool=pool, clock=FrozenClock(paid_at))

    async def issue() -> None:
        async with unit_of_work(ctx, SYSTEM) as uow:
            await issue_certificate(uow, sale.id)
            await asyncio.sleep(0.05)  # hold the transaction open while the other tries

    await asyncio.gather(*(issue() for _ in range(4)))
    assert await value(pool, "SELECT count(*) FROM sale_documents WHERE sale_id=$1", sale.id) == 2

    # The unique constraint holds without the lock too: a second row is refused.
    with pytest.raises(asyncpg.UniqueViolationError):
        async with pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO sale_documents (sale_id, kind, code, content, issued_at)"
                " VALUES ($1, 'certificate', $2, '{}', $3)",
                sale.id,
                codes.new_code(),
                paid_at,
            )

    # Two workers render the pending documents at once: each is rendered and audited once.
    pending = [r["id"] for r in await rows(pool, "SELECT id FROM sale_documents ORDER BY id")]
    results = await asyncio.gather(
        *(
            run(render_document, RenderDocument(document_id=i), ctx=ctx, actor=SYSTEM)
            for i in pending
            for _ in range(3)
        )
    )
    assert sum(r is not None for r in results) == len(pending)
    assert await value(pool, "SELECT count(*) FROM audit_log WHERE action='document.issue'") == len(
        pending
    )
    assert await value(
        pool, "SELECT count(*) FROM outbox WHERE event='document_issued'"
    ) == 2 * len(pending)


async def test_the_parties_pages_list_and_serve_the_pdfs(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, client: AsyncTestClient[Any]
) -> None:
    scene = await sold(pool, clock, settings)
    sale = scene.ctx["sale"]
    await render_pending(Context(pool=pool, clock=clock))
    row = await stored(pool, sale.id, "confirmation")
    email = await value(pool, "SELECT email FROM users WHERE id=$1", scene.bank_user)
    assert (await sign_in(client, email)).status_code in (302, 303)

    listed = await client.get("/documents")
    assert listed.status_code == 200
    assert codes.grouped(row["code"]) in listed.text and scene.lot.reference in listed.text
    pdf = await client.get(f"/documents/{row['code']}/pdf")
    assert pdf.status_code == 200 and pdf.content == bytes(row["pdf"])
    assert "attachment" in pdf.headers["content-disposition"]
    # A code of no document of the bank's: 404, as a forged one.
    assert (await client.get(f"/documents/{codes.new_code()}/pdf")).status_code == 404


async def test_a_sale_made_by_the_banks_licensing_decision_gets_its_confirmation(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    from market.licensing import deciding
    from market.licensing.deciding import Decide, DecideLot
    from market.lots import services as lots
    from tests.factories import act_as
    from tests.licensing.offers_scene import to_deciding

    found = await to_deciding(pool, clock, settings)
    at = found.end + timedelta(days=2)
    act = await act_as(pool, at, found.scene.bank.user_id)
    data = DecideLot(
        lot_id=found.scene.lot.id,
        decision=Decide(offer_ids=[], reason="拍卖价款为现金"),
        policy=lots.policy_for(settings),
    )
    assert (await act(deciding.decide_lot, data)).status == "hammer_stands"
    sale_id = await value(pool, "SELECT id FROM sales WHERE lot_id=$1", found.scene.lot.id)
    row = await stored(pool, sale_id, "confirmation")
    assert row["issued_at"] == at  # the decision's instant, as the sale's
    await jobs.render_documents({"pool": pool, "clock": FrozenClock(at)})
    words = flat(pdf_text(bytes((await stored(pool, sale_id, "confirmation"))["pdf"])))
    assert (
        codes.grouped(row["code"]) in words and cny_capitals(row["content"]["price_fen"]) in words
    )


RENDER_ELSEWHERE = """
import sys, msgspec
from market.documents.content import DocumentContent
from market.documents.render import render
content = msgspec.json.decode(sys.stdin.buffer.read(), type=DocumentContent)
sys.stdout.buffer.write(render(content))
"""


async def test_another_process_renders_the_same_bytes_from_the_stored_content(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await sold(pool, clock, settings)
    await render_pending(Context(pool=pool, clock=clock))
    row = await stored(pool, scene.ctx["sale"].id, "confirmation")
    # Another process, another hash seed, and the variable reportlab reads its dates from.
    env = {"PYTHONHASHSEED": "123", "SOURCE_DATE_EPOCH": "1"}
    done = subprocess.run(
        [sys.executable, "-c", RENDER_ELSEWHERE],
        input=msgspec.json.encode(row["content"]),
        capture_output=True,
        check=True,
        env=env,
        cwd=str(ROOT),
    )
    assert hashlib.sha256(done.stdout).digest() == row["sha256"]
