"""Times the bank types and reads on its lot forms, and those its errors name, are Beijing
time; a problem's machine `params` keep the instant as ISO 8601."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from litestar.testing import AsyncTestClient

from market import problems
from market.clock import FrozenClock
from tests.factories import csrf, sign_in
from tests.lots.factories import make_case
from tests.lots.test_lots import _editor_form, bank, body, count

BEIJING = ZoneInfo("Asia/Shanghai")


async def test_bidding_too_soon_on_the_lot_form_names_the_earliest_time_in_beijing(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    # 2026-01-05 02:00 UTC is 10:00 in Beijing: the earliest opening, 30 days on, is
    # 2026-02-04 10:00 Beijing (02:00 UTC).
    org, user, email, _ = await bank(pool, clock)
    case_id, assets = await make_case(pool, clock.now(), org, user)
    await sign_in(client, email)
    soon = (clock.now() + timedelta(days=3)).astimezone(BEIJING)
    form = {
        **_editor_form(
            clock,
            assets,
            start_price="700,000",
            bidding_starts_at=soon.strftime("%Y-%m-%dT%H:%M"),
            bidding_ends_at=(soon + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
        ),
        "_csrf_token": await csrf(client),
    }
    r = await client.post(f"/bank/cases/{case_id}/lots/new", data=form)
    assert r.status_code == 422
    earliest = clock.now() + timedelta(days=30)
    assert "北京时间 2026-02-04 10:00" in r.text  # beside the field, in the form's time
    assert earliest.isoformat() not in r.text and "2026-02-04T02:00" not in r.text
    assert "2026-02-04 02:00" not in r.text  # not UTC shown as if it were local
    assert await count(pool, "lots") == 0


async def test_api_problem_detail_in_beijing_and_params_in_iso(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    org, user, _, token = await bank(pool, clock)
    case_id, _ = await make_case(pool, clock.now(), org, user)
    data = body(clock)
    soon = clock.now() + timedelta(days=2)
    data["terms"]["bidding_starts_at"] = soon.isoformat()
    data["terms"]["bidding_ends_at"] = (soon + timedelta(days=1)).isoformat()
    r = await client.post(
        f"/api/v1/cases/{case_id}/lots", json=data, headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 422
    problem = r.json()
    assert problem["code"] == "announcement_too_short"
    assert "北京时间 2026-02-04 10:00" in problem["detail"]
    at = datetime.fromisoformat(problem["params"]["earliest_at"])
    assert at == clock.now() + timedelta(days=30)


def test_an_instant_kept_as_iso_text_is_shown_in_beijing() -> None:
    """Some refusals carry their instant as ISO text (a transfer step's deadline): the
    words still show Beijing time."""
    due = datetime(2026, 3, 1, 16, 30, tzinfo=UTC)
    words = problems.describe("zh", "transfer_step_overdue", {"due_at": due.isoformat()})
    assert "2026-03-02 00:30" in words and "T16:30" not in words
    english = problems.describe(
        "en", "announcement_too_short", {"earliest_at": due, "notice_days": 30}
    )
    assert "2026-03-02 00:30 Beijing time" in english
    # Text that is no instant is left as it is.
    assert problems._shown("reference_at", "LOT-2026-000001") == "LOT-2026-000001"
    assert problems._shown("made_at", "2026-03-01T16:30") == "2026-03-01T16:30"  # no zone
