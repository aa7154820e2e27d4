"""Wrong values on every licence offers endpoint (docs/rules.md §Licence offers and
decision): each answers a 4xx problem naming the field at fault, and nothing is written —
no offer, decision, contract, registration, event, posting or audit row."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from market.cases.services import china_today
from market.clock import FrozenClock
from market.settings import Settings
from tests.factories import make_token
from tests.licensing.offers_scene import to_deciding

TABLES = [
    "licence_offers",
    "licence_decisions",
    "licence_contracts",
    "registrations",
    "sales",
    "outbox",
    "ledger_entries",
    "audit_log",
]


async def counts(pool: asyncpg.Pool) -> dict[str, int]:
    return {t: await pool.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}


def _licence(start: str, **changes: Any) -> dict[str, Any]:
    licence: dict[str, Any] = {
        "kind": "non_exclusive",
        "field_of_use": "储能电池",
        "territory": "广东省",
        "term_start": start,
        "term_end": start.replace(start[:4], str(int(start[:4]) + 2), 1),
        "upfront_fen": 5_000_000,
        "royalty_rate_bp": 300,
    }
    licence.update(changes)
    return licence


async def _probe(
    client: AsyncTestClient[Any], url: str, headers: dict[str, str], body: Any, field: str | None
) -> None:
    r = await client.post(url, json=body, headers=headers)
    assert 400 <= r.status_code < 500, (url, body, r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json"), url
    problem = r.json()
    assert problem["code"] and problem["detail"], (url, body)
    if field is not None:
        assert problem.get("field") == field, (url, body, problem)


async def test_wrong_values_get_a_4xx_naming_the_field_and_write_nothing(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    found = await to_deciding(pool, clock, settings)
    scene = found.scene
    at = clock.now()
    offeror = await make_token(pool, at, scene.offeror.user_id, ["offers:write"])
    bank = await make_token(pool, at, scene.bank.user_id, ["offers:read", "lots:write"])
    OF = {"Authorization": f"Bearer {offeror}"}
    B = {"Authorization": f"Bearer {bank}"}
    ref, lot_id = scene.lot.reference, scene.lot.id
    start = china_today(found.end).isoformat()
    before = await counts(pool)

    # Registering: a wrong body, a lot that is not there.
    await _probe(client, f"/api/v1/lots/{ref}/offerors", OF, {"agreement_version": 5}, None)
    await _probe(
        client, f"/api/v1/lots/{ref}/offerors", OF, {"reference": ref, "surprise": 1}, None
    )
    await _probe(client, "/api/v1/lots/LOT-2099-999999/offerors", OF, {"reference": "x"}, None)
    # Offering: every wrong value names its field.
    offers_url = f"/api/v1/lots/{ref}/offers"
    probes: list[tuple[Any, str | None]] = [
        ({"type": "licence", "licence": _licence(start, kind="forever")}, "licence.kind"),
        ({"type": "licence", "licence": _licence(start, upfront_fen=-1)}, "licence.upfront_fen"),
        ({"type": "licence", "licence": _licence(start, upfront_fen="9")}, "licence.upfront_fen"),
        (
            {"type": "licence", "licence": _licence(start, royalty_rate_bp=10_001)},
            "licence.royalty_rate_bp",
        ),
        (
            {"type": "licence", "licence": _licence(start, term_end="2026-02-30")},
            "licence.term_end",
        ),
        ({"type": "licence", "licence": _licence(start, field_of_use="")}, "licence.field_of_use"),
        (
            {"type": "licence", "licence": _licence(start, security={"kind": "bank_guarantee"})},
            "licence.security.amount_fen",
        ),
        ({"type": "sale_and_licence_back", "licence": _licence(start)}, None),
        ({"type": "gift", "licence": _licence(start)}, "type"),
        ({"licence": _licence(start), "price_fen": 100}, None),
    ]
    for body, field in probes:
        await _probe(client, offers_url, OF, body, field)
    # The lot is deciding: an offer now is refused, naming the lot.
    await _probe(client, offers_url, OF, {"type": "licence", "licence": _licence(start)}, None)
    # Withdrawing: an offer that is not there, an id past bigint, another's offer.
    await _probe(client, "/api/v1/offers/999999/withdraw", OF, None, None)
    await _probe(client, f"/api/v1/offers/{2**70}/withdraw", OF, None, None)
    await _probe(client, f"/api/v1/offers/{found.reverse.id}/withdraw", OF, None, None)
    # Deciding: the reason, the offers chosen, and what they are.
    decide = f"/api/v1/lots/{lot_id}/offer-decision"
    decisions: list[tuple[Any, str | None]] = [
        ({"offer_ids": [found.reverse.id]}, "reason"),
        ({"offer_ids": [found.reverse.id], "reason": "   "}, "reason"),
        ({"offer_ids": ["x"], "reason": "理由"}, "offer_ids[0]"),
        ({"offer_ids": [999_999], "reason": "理由"}, "offer_ids"),
        ({"offer_ids": [found.plain.id], "reason": "理由"}, "offer_ids"),  # below the margin
        ({"offer_ids": [found.reverse.id, found.plain.id], "reason": "理由"}, "offer_ids"),
        ({"offer_ids": [found.reverse.id], "reason": "x" * 1001}, "reason"),
        ({"offer_ids": [found.reverse.id], "reason": "理由", "extra": 1}, None),
    ]
    for body, field in decisions:
        await _probe(client, decide, B, body, field)
    # Another bank's decision, or a lot that is not there: 404, nothing written.
    await _probe(client, "/api/v1/lots/999999/offer-decision", B, {"reason": "x"}, None)
    await _probe(client, decide, OF, {"reason": "x"}, None)  # not the bank's permission
    assert await counts(pool) == before
    # And the deadline had not passed: the same decision made right is accepted.
    r = await client.post(
        decide, json={"offer_ids": [found.reverse.id], "reason": "理由"}, headers=B
    )
    assert r.status_code == 200, r.text
    assert clock.now() < found.end + timedelta(days=10)
