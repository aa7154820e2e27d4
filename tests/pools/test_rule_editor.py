"""The pool rule as a form (market/pools/rule_form.py): each field of `PoolRule` a
labelled input, judged by the rule struct's own validation (a refusal beside the input it
came from, nothing written), a preview of what the rule would pay on three sample loans
computed by `rules.assess` (market/pools/rule_preview.py), and saving a new version."""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from market.clock import FrozenClock
from market.money import format_cny
from market.pools import rule_preview
from market.pools.rules import Fuse, Party, PoolRule, Tier, assess, parse_rule
from tests.factories import csrf
from tests.pools.scene import ZHONGSHAN, make_pool
from tests.pools.test_pool_pages import signed_in, text_of

Client = AsyncTestClient[Any]
TODAY = date(2026, 1, 5)  # the FrozenClock's day in Asia/Shanghai

ZHONGSHAN_FORM = {
    "share_name_0": "fund",
    "share_weight_0": "54",
    "share_name_1": "bank",
    "share_weight_1": "26",
    "share_name_2": "insurer",
    "share_weight_2": "16",
    "share_name_3": "evaluator",
    "share_weight_3": "4",
    "basis": "net_loss",
    "timing": "after_loss",
}


async def versions(pool: asyncpg.Pool, pool_id: int) -> int:
    return int(
        await pool.fetchval("SELECT count(*) FROM pool_rule_versions WHERE pool_id = $1", pool_id)
    )


async def setup(client: Client, pool: asyncpg.Pool, clock: FrozenClock) -> tuple[int, str, str]:
    p = await make_pool(pool, clock.now(), ZHONGSHAN)
    await signed_in(client, p.email)
    return p.pool_id, f"/pool/{p.pool_id}/rules", await csrf(client)


async def test_the_form_shows_the_rule_in_force_and_saves_a_new_version(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    pid, url, token = await setup(client, pool, clock)
    page = await client.get(url)
    assert page.status_code == 200
    assert '<option value="insurer" selected>保险公司</option>' in page.text
    assert 'name="share_weight_0" inputmode="numeric" value="54"' in page.text
    assert "分担方与份额" in page.text and "预览" in page.text

    form = {
        "_csrf_token": token,
        "share_name_0": "fund",
        "share_weight_0": "1",
        "share_name_1": "",  # an empty row between is skipped
        "share_name_2": "bank",
        "share_weight_2": "1",
        "tier_up_to_0": "5,000,000",
        "tier_rate_0": "80",
        "tier_up_to_1": "",
        "tier_rate_1": "50.5",
        "basis": "principal_loss",
        "cap_per_loan": "200万",
        "aggregate_limit": "4",
        "annual_budget": "50,000,000.00",
        "max_loan": "3000000",
        "timing": "advance",
        "wait_months": "2",
        "wait_days": "15",
        "fuse_on": "1",
        "fuse_npl_threshold": "3",
        "fuse_renewable_share": "30",
        "fuse_renewal_weight": "110",
        "effective_from": "2026-01-05",
        "note": "按表单录入",
        "action": "save",
    }
    r = await client.post(url, data=form, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == f"{url}?saved=2"
    stored = await pool.fetchval(
        "SELECT rule FROM pool_rule_versions WHERE pool_id = $1 AND version = 2", pid
    )
    assert parse_rule(stored) == PoolRule(
        shares=(Party(name="fund", weight=1), Party(name="bank", weight=1)),
        tiers=(
            Tier(principal_up_to_fen=500_000_000, rate_bp=8000),
            Tier(principal_up_to_fen=None, rate_bp=5050),
        ),
        basis="principal_loss",
        cap_per_loan_fen=200_000_000,
        aggregate_limit_bp=400,
        annual_budget_fen=5_000_000_000,
        max_loan_fen=300_000_000,
        timing="advance",
        wait_months=2,
        wait_days=15,
        fuse=Fuse(npl_threshold_bp=300, renewable_share_bp=3000, renewal_weight_bp=11_000),
    )
    # The form of the next version starts from what was just saved.
    page = await client.get(r.headers["location"])
    assert 'name="tier_rate_1" inputmode="decimal" value="50.5"' in page.text
    assert 'name="cap_per_loan" inputmode="decimal" value="2,000,000.00"' in page.text
    assert 'name="fuse_on" value="1" checked' in page.text


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"share_weight_1": "-1"}, "share_weight_1", "整数"),
        # the struct's bound, at the input of the row it came from (row 5: row 4 empty)
        ({"share_name_5": "guarantor", "share_weight_5": "2000000"}, "share_weight_5", ""),
        ({"share_name_1": "", "share_weight_1": ""}, "shares", "bank"),
        ({"share_name_2": "Insurer!"}, "share_name_2", ""),
        (
            {
                "tier_up_to_0": "300",
                "tier_rate_0": "80",
                "tier_up_to_1": "100",
                "tier_rate_1": "60",
            },
            "tiers",
            "",
        ),
        ({"tier_up_to_0": "100", "tier_rate_0": "180"}, "tier_rate_0", ""),
        ({"timing": "advance", "wait_days": "0", "wait_months": "0"}, "wait_days", ""),
        ({"aggregate_limit": "150"}, "aggregate_limit", ""),
        ({"aggregate_limit": "4.005"}, "aggregate_limit", ""),
        ({"cap_per_loan": "abc"}, "cap_per_loan", "abc"),
        ({"fuse_on": "1", "fuse_renewal_weight": "50"}, "fuse_renewal_weight", ""),
        ({"basis": "gross"}, "basis", ""),
        ({"effective_from": "2026-01-04"}, "effective_from", "2026-01-05"),
    ],
)
async def test_a_bad_value_is_refused_beside_its_input_and_nothing_is_written(
    client: Client,
    pool: asyncpg.Pool,
    clock: FrozenClock,
    change: dict[str, str],
    field: str,
    words: str,
) -> None:
    pid, url, token = await setup(client, pool, clock)
    audited = "SELECT count(*) FROM audit_log WHERE action = 'pool.rule_version'"
    audits = await pool.fetchval(audited)
    data = {
        "_csrf_token": token,
        **ZHONGSHAN_FORM,
        "effective_from": "2026-01-05",
        "action": "save",
        **change,
    }
    # The preview judges the rule alone; the day it takes effect is the saving's.
    actions = ("save",) if field == "effective_from" else ("save", "preview")
    for action in actions:
        r = await client.post(url, data={**data, "action": action}, follow_redirects=False)
        assert r.status_code == 422, (action, change, r.status_code)
        shown = text_of(r.text, f"err-{field}")
        assert shown and words in shown, (action, change, shown)
        assert 'data-testid="preview"' not in r.text
    assert await versions(pool, pid) == 1
    assert await pool.fetchval(audited) == audits


async def test_the_preview_shows_what_the_pure_rule_pays_and_writes_nothing(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    pid, url, token = await setup(client, pool, clock)
    form = {"_csrf_token": token, **ZHONGSHAN_FORM, "effective_from": "", "action": "preview"}
    r = await client.post(url, data=form)
    assert r.status_code == 200, r.text
    assert 'data-testid="preview"' in r.text
    rule = parse_rule(ZHONGSHAN)
    for sample in rule_preview.SAMPLES:
        a = assess(rule, rule_preview.facts(sample, TODAY))
        others = sum(fen for _, _, fen in a.parties)
        key = f"preview-{sample.key}"
        assert text_of(r.text, f"{key}-loss") == format_cny(a.loss_fen)
        assert text_of(r.text, f"{key}-pool") == format_cny(a.amount_fen)
        assert text_of(r.text, f"{key}-others") == format_cny(others)
        assert text_of(r.text, f"{key}-bank") == format_cny(a.loss_fen - a.amount_fen - others)
    # Pinned to the fen: the small loan's loss ¥336,234.57 shared 54 : 26 : 16 : 4 by
    # largest remainder — the fund ¥181,566.67 (18,156,666.78 fen rounded up), the bank
    # ¥87,420.99, the insurer ¥53,797.53, the evaluator ¥13,449.38.
    assert text_of(r.text, "preview-small-loss") == "¥336,234.57"
    assert text_of(r.text, "preview-small-pool") == "¥181,566.67"
    assert text_of(r.text, "preview-small-others") == "¥67,246.91"
    assert text_of(r.text, "preview-small-bank") == "¥87,420.99"
    assert text_of(r.text, "preview-medium-pool") == "¥1,188,000.00"
    assert "资金池应补偿" in r.text  # the rule's own explanation, in words
    # What was typed stays in the form, and nothing is saved.
    assert 'name="share_weight_2" inputmode="numeric" value="16"' in r.text
    assert await versions(pool, pid) == 1

    # A cap and a largest loan show in the preview as the rule applies them.
    capped = {**form, "cap_per_loan": "1,000,000", "max_loan": "3,000,000"}
    r = await client.post(url, data=capped)
    assert r.status_code == 200
    assert text_of(r.text, "preview-medium-pool") == "¥1,000,000.00"
    assert "超过可入池单笔贷款上限" in r.text  # the large loan (¥12 m)
    assert await versions(pool, pid) == 1


def test_the_preview_is_the_pure_rules_output() -> None:
    rule = parse_rule({"shares": [{"name": "fund", "weight": 1}, {"name": "bank", "weight": 2}]})
    for out in rule_preview.preview(rule, TODAY):
        a = assess(rule, rule_preview.facts(out.sample, TODAY))
        assert out.assessment == a and out.pool_fen == a.amount_fen
        assert out.pool_fen + out.others_fen + out.bank_fen == a.loss_fen
