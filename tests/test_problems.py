"""One error shape: RFC 9457 problem details with a stable code, their words in the catalogs."""

from __future__ import annotations

import re
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from market import i18n, problems
from market.clock import FrozenClock
from market.errors import Invalid
from market.settings import ROOT
from tests.factories import make_org, make_token

RAISED = re.compile(
    r"\b(?:AppError|BadRequest|BadValue|Invalid|Unauthorized|Forbidden|NotFound|Conflict|"
    r"RateLimited|Unavailable|Refused|LineProblem|AmountError)\(\s*(?:code=)?\"([^\"]*)\""
)
PAIR = re.compile(r"[\u4e00-\u9fff][^\"'\n]{0,200} / [A-Za-z][^\"'\n]*")


def _sources() -> list[Any]:
    return [
        path
        for folder in ("market", "auctions", "workers")
        for path in (ROOT / folder).rglob("*.py")
    ]


def test_every_code_raised_has_its_words_in_both_languages() -> None:
    codes = {}
    for path in _sources():
        for code in RAISED.findall(path.read_text(encoding="utf-8")):
            codes.setdefault(code, path.relative_to(ROOT))
    assert len(codes) > 100, "the scan finds too few codes: it is broken"
    sentences = {c: p for c, p in codes.items() if not re.fullmatch(r"[a-z][a-z0-9_]*", c)}
    assert sentences == {}, "a sentence where a code goes"
    missing = {c: str(p) for c, p in codes.items() if not i18n.has(f"problem.{c}")}
    assert missing == {}


def test_no_text_is_written_in_two_languages_at_once() -> None:
    pairs = [
        f"{path.relative_to(ROOT)}: {m}"
        for path in [*_sources(), *(ROOT / "templates").rglob("*.*")]
        for m in PAIR.findall(path.read_text(encoding="utf-8"))
    ]
    assert pairs == []


def test_a_code_is_a_word_not_a_sentence() -> None:
    try:
        Invalid("amount is too large")
    except ValueError:
        pass
    else:  # pragma: no cover - the assertion below says what went wrong
        raise AssertionError("a sentence was taken as a code")


def test_parameters_are_shown_as_people_read_them() -> None:
    assert problems.describe("zh", "too_low", {"min_fen": 120_000_00}) == (
        "出价过低：最低可出价 ¥120,000.00。"
    )
    assert problems.describe("en", "too_low", {"min_fen": 5}) == "Too low: the least bid is ¥0.05."


async def test_an_api_error_is_problem_json_in_the_callers_language(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, user, _ = await make_org(pool, clock.now(), kind="buyer")
    auth = {"Authorization": f"Bearer {await make_token(pool, clock.now(), user, ['bids:write'])}"}
    r = await client.post(
        "/api/v1/lots/LOT-NONE/bids", json={"type": "bid", "amount_fen": 100}, headers=auth
    )
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["type"] == "about:blank" and body["status"] == 404 and body["code"] == "no_such_lot"
    assert body["title"] == "不存在" and body["detail"] == "该拍品不存在。" and body["request_id"]
    r = await client.post(
        "/api/v1/lots/LOT-NONE/bids",
        json={"type": "bid", "amount_fen": 100},
        headers={**auth, "Accept-Language": "en-GB,en;q=0.9"},
    )
    assert r.json()["detail"] == "No such lot." and r.json()["title"] == "Not found"


async def test_an_integer_sent_as_a_string_or_a_float_is_refused_naming_the_field(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, user, _ = await make_org(pool, clock.now(), kind="buyer")
    auth = {"Authorization": f"Bearer {await make_token(pool, clock.now(), user, ['bids:write'])}"}
    for amount in ("100", 100.0, 1e2, True):
        r = await client.post(
            "/api/v1/lots/LOT-NONE/bids", json={"type": "bid", "amount_fen": amount}, headers=auth
        )
        assert r.status_code == 400, amount
        assert r.json()["field"] == "amount_fen", amount
        assert r.json()["code"] in ("whole_number", "wrong_type"), amount
