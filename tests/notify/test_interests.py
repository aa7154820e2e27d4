"""Saved interests: the rules of an interest, the page /account/interests and the API
/api/v1/interests (docs/rules.md §Notifications: a lot matching one's saved interests is announced)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient

from market import problems
from market.app import create_app
from market.catalogue.text import search_query
from market.clock import FrozenClock
from market.errors import Forbidden, Invalid
from market.notify import interests
from market.notify.interests import InterestInput, check, keyword_text
from market.settings import Settings
from tests.factories import act_as, csrf, make_org, make_token, sign_in

# --- the rules ---------------------------------------------------------------------------


def test_an_interest_is_normalised() -> None:
    checked = check(
        InterestInput(
            ipc_prefixes=["h01m", "Ｈ０１Ｍ", "G06F 16/", "G06F 16/245"],
            keywords=["锂电池", "Solid-State  battery", "锂电池"],
            price_min_fen=0,
            price_max_fen=100,
        )
    )
    assert checked.ipc_prefixes == ["H01M", "G06F16/", "G06F16/245"]
    assert checked.keyword_queries == ["'锂电' & '电池'", "'solid' & 'state' & 'battery'"]
    assert [keyword_text(q) for q in checked.keyword_queries] == ["锂电池", "solid state battery"]


@pytest.mark.parametrize(
    ("data", "field", "code"),
    [
        (InterestInput(), "ipc_prefixes", "empty_interest"),
        (InterestInput(ipc_prefixes=["X01"]), "ipc_prefixes", "ipc_section_letter"),
        (InterestInput(ipc_prefixes=["H01M 4/5"]), "ipc_prefixes", "ipc_subgroup_length"),
        (InterestInput(keywords=["——！"]), "keywords", "keyword_unsearchable"),
        (
            InterestInput(price_min_fen=200, price_max_fen=100),
            "price_max_fen",
            "price_range_inverted",
        ),
    ],
)
def test_a_bad_interest_names_its_field(data: InterestInput, field: str, code: str) -> None:
    with pytest.raises(Invalid) as caught:
        check(data)
    assert (caught.value.field, caught.value.code) == (field, code)
    # Its words are the catalog's, one language at a time.
    for lang in ("zh", "en"):
        assert not problems.text(caught.value, lang).startswith("problem.")


@given(
    st.text(
        alphabet=st.sampled_from(list("锂电池正极材料图像识别ab1 ,-αβ池电がハ한")),
        min_size=1,
        max_size=30,
    )
)
def test_a_keyword_shown_is_searched_as_stored(text: str) -> None:
    query = search_query(text)
    if query is not None:
        assert search_query(keyword_text(query)) == query


# --- API ----------------------------------------------------------------------------------


@pytest.fixture
async def app_client(
    settings: Settings, clock: FrozenClock, pool: asyncpg.Pool
) -> AsyncIterator[AsyncTestClient[Any]]:
    app = create_app(settings, clock)
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1:8000") as c:
        yield c


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_api_saves_lists_and_deletes_the_users_own_interests(
    app_client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, user, _ = await make_org(pool, clock.now(), kind="buyer")
    token = await make_token(pool, clock.now(), user, ["account:read", "bids:write"])
    _, other_user, _ = await make_org(pool, clock.now(), kind="acquirer")
    other = await make_token(pool, clock.now(), other_user, ["account:read", "bids:write"])

    r = await app_client.post(
        "/api/v1/interests",
        json={"ipc_prefixes": ["h01m 4/"], "keywords": ["锂电池"], "price_max_fen": 80_000_000},
        headers=_auth(token),
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["ipc_prefixes"] == ["H01M4/"]
    assert created["keywords"] == ["锂电池"]
    assert created["price_min_fen"] is None and created["price_max_fen"] == 80_000_000
    async with pool.acquire() as conn:
        stored = await conn.fetchrow("SELECT * FROM saved_interests WHERE id=$1", created["id"])
        audited = await conn.fetchval(
            "SELECT count(*) FROM audit_log WHERE action='interest.create' AND object_id=$1",
            str(created["id"]),
        )
    assert stored["user_id"] == user and stored["keywords"] == ["'锂电' & '电池'"]
    assert audited == 1

    r = await app_client.get("/api/v1/interests", headers=_auth(token))
    assert r.status_code == 200 and [i["id"] for i in r.json()] == [created["id"]]
    r = await app_client.get("/api/v1/interests", headers=_auth(other))
    assert r.status_code == 200 and r.json() == []

    # Another user's interest is not found, and stays.
    r = await app_client.delete(f"/api/v1/interests/{created['id']}", headers=_auth(other))
    assert r.status_code == 404
    r = await app_client.delete(f"/api/v1/interests/{created['id']}", headers=_auth(token))
    assert r.status_code == 204
    r = await app_client.delete(f"/api/v1/interests/{created['id']}", headers=_auth(token))
    assert r.status_code == 404
    r = await app_client.get("/api/v1/interests", headers=_auth(token))
    assert r.json() == []


async def test_api_refusals(
    app_client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, user, _ = await make_org(pool, clock.now(), kind="buyer")
    token = await make_token(pool, clock.now(), user, ["account:read", "bids:write"])
    reader = await make_token(pool, clock.now(), user, ["account:read"])
    url = "/api/v1/interests"

    r = await app_client.post(url, json={"ipc_prefixes": ["X99"]}, headers=_auth(token))
    assert r.status_code == 422 and r.json()["field"] == "ipc_prefixes"
    assert r.json()["code"] == "ipc_section_letter" and r.json()["params"] == {"section": "X"}
    r = await app_client.post(url, json={}, headers=_auth(token))
    assert r.status_code == 422 and r.json()["code"] == "empty_interest"
    r = await app_client.post(
        url, json={"keywords": ["——"]}, headers=_auth(token) | {"Accept-Language": "en"}
    )
    assert r.status_code == 422 and r.json()["code"] == "keyword_unsearchable"
    assert (
        r.json()["detail"] == "keywords: The keyword '——' has no letters or digits to search for."
    )
    r = await app_client.post(url, json={"keywords": ["a"], "colour": 1}, headers=_auth(token))
    assert r.status_code == 400 and r.json()["field"] == "colour"
    r = await app_client.post(url, json={"price_min_fen": -1}, headers=_auth(token))
    assert r.status_code == 400 and r.json()["field"] == "price_min_fen"
    r = await app_client.post(url, json={"keywords": ["x"] * 11}, headers=_auth(token))
    assert r.status_code == 400 and r.json()["field"] == "keywords"
    r = await app_client.post(url, json={"keywords": ["电池"]}, headers=_auth(reader))
    assert r.status_code == 403 and r.json()["code"] == "token_lacks_scope"
    r = await app_client.post(url, json={"keywords": ["电池"]})
    assert r.status_code == 401
    r = await app_client.delete(f"{url}/99999999999999999999", headers=_auth(token))
    assert r.status_code in (400, 404)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM saved_interests") == 0

    for n in range(interests.MAX_INTERESTS):
        r = await app_client.post(url, json={"keywords": [f"电池{n}"]}, headers=_auth(token))
        assert r.status_code == 201
    r = await app_client.post(url, json={"keywords": ["再来"]}, headers=_auth(token))
    assert r.status_code == 409 and r.json()["code"] == "too_many_interests"
    assert r.json()["params"] == {"max": interests.MAX_INTERESTS}
    assert r.json()["detail"] == f"最多保存 {interests.MAX_INTERESTS} 条订阅，请先删除一条。"


async def test_banks_and_pending_buyers_save_no_interests(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, bank_user, _ = await make_org(pool, clock.now(), kind="bank")
    act = await act_as(pool, clock.now(), bank_user)
    with pytest.raises(Forbidden) as refused:
        await act(interests.create_interest, InterestInput(keywords=["电池"]))
    assert refused.value.code == "not_permitted"
    _, pending_user, _ = await make_org(pool, clock.now(), kind="buyer", status="pending")
    act = await act_as(pool, clock.now(), pending_user)
    with pytest.raises(Forbidden) as refused:
        await act(interests.create_interest, InterestInput(keywords=["电池"]))
    assert refused.value.code == "organisation_not_approved"


# --- the page -----------------------------------------------------------------------------


async def test_page_saves_shows_and_deletes(
    app_client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, user, email = await make_org(pool, clock.now(), kind="buyer")
    assert (await sign_in(app_client, email)).status_code in (302, 303)
    r = await app_client.get("/account/interests")
    assert r.status_code == 200
    assert "拍品订阅" in r.text and "尚无订阅" in r.text

    token = await csrf(app_client)
    form = {
        "ipc_prefixes": "H01M, G06F 16/",
        "keywords": "锂电池\n图像识别、solid state",
        "price_min": "600,000",
        "price_max": "",
        "_csrf_token": token,
    }
    r = await app_client.post("/account/interests", data=form, follow_redirects=False)
    assert r.status_code in (302, 303) and r.headers["location"].endswith("?done=saved")
    r = await app_client.get("/account/interests?done=saved")
    assert "订阅已保存" in r.text
    assert "H01M" in r.text and "G06F 16/" in r.text
    assert "锂电池、图像识别、solid state" in r.text
    assert "¥600,000.00" in r.text
    listed = await interests.list_interests(pool, user)
    assert len(listed) == 1 and listed[0].price_min_fen == 600_000_00

    # A bad value: 422, the message next to its field, what was typed kept, nothing saved.
    bad = form | {"ipc_prefixes": "H01M, Z99"}
    r = await app_client.post("/account/interests", data=bad, follow_redirects=False)
    assert r.status_code == 422
    assert 'id="err-ipc_prefixes"' in r.text and "H01M, Z99" in r.text
    assert "IPC 部应为字母 A–H，不是“Z”。" in r.text
    bad = form | {"price_min": "2万3亿"}
    r = await app_client.post("/account/interests", data=bad, follow_redirects=False)
    assert r.status_code == 422 and 'id="err-price_min"' in r.text
    bad = form | {"price_min": "9", "price_max": "8"}
    r = await app_client.post("/account/interests", data=bad, follow_redirects=False)
    assert r.status_code == 422 and 'id="err-price_max"' in r.text
    assert "最高价低于最低价。" in r.text and "highest" not in r.text
    bad = form | {"keywords": "、".join(f"词{n}" for n in range(11))}
    r = await app_client.post("/account/interests", data=bad, follow_redirects=False)
    assert r.status_code == 422 and 'id="err-keywords"' in r.text and "最多 10 项。" in r.text
    assert len(await interests.list_interests(pool, user)) == 1

    r = await app_client.post(
        f"/account/interests/{listed[0].id}/delete",
        data={"_csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code in (302, 303)
    assert await interests.list_interests(pool, user) == []
    r = await app_client.post(
        f"/account/interests/{listed[0].id}/delete",
        data={"_csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 404


async def test_page_is_for_buyers(
    app_client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    r = await app_client.get("/account/interests", follow_redirects=False)
    assert r.status_code in (302, 303) and "/login" in r.headers["location"]
    _, _, email = await make_org(pool, clock.now(), kind="bank")
    await sign_in(app_client, email)
    r = await app_client.get("/account/interests")
    assert r.status_code == 403
