"""`market seed-demo`: a small, realistic exchange to click through.

Organisations of every kind with one user each; the demo bank's pledged portfolio
(market/collateral/demo.py) and its disposal cases with lots in every state of the
lifecycle (market/lots/demo.py); guarantee pools with claims, recoveries and a bank
statement to reconcile (market/pools/demo.py).
Seeding is skipped when organisations exist already, unless forced (then it adds only
what is missing, keyed by e-mail, so running it twice never duplicates).
"""

from __future__ import annotations

import asyncpg

from market import db
from market.accounts import services as accounts
from market.accounts.models import Viewer
from market.clock import SystemClock
from market.collateral.demo import seed_demo_portfolio
from market.commands import SYSTEM, Act, Actor, Context, unit_of_work
from market.lots.demo import seed_cases_and_lots
from market.lots.services import policy_for
from market.pools.demo import seed_demo_pools
from market.settings import Settings
from market.validators import _credit_check_char

DEMO_PASSWORD = "ipx-demo-2026"


def demo_credit_code(body17: str) -> str:
    return body17 + _credit_check_char(body17)


# (who, kind, name, name_en, credit-code body, status, e-mail, person)
DEMO_ORGS = [
    (
        "exchange operator",
        "operator",
        "成都知识产权交易中心",
        "Chengdu IP Exchange",
        "91510100MA61R8XQ0",
        "approved",
        "operator@ipx.demo",
        "王运营",
    ),
    (
        "bank (pledgee)",
        "bank",
        "中国建设银行北京中关村支行",
        "CCB Beijing Zhongguancun",
        "91110108MA00A1B2C",
        "approved",
        "bank@ipx.demo",
        "李信贷",
    ),
    (
        "guarantee pool manager",
        "pool",
        "中山市知识产权质押融资风险补偿基金",
        "Zhongshan IP Pledge Risk Compensation Fund",
        "12442000MB2C3D4E5",
        "approved",
        "pool@ipx.demo",
        "陈基金",
    ),
    (
        "pool manager (Shenzhen)",
        "pool",
        "深圳市知识产权质押融资风险补偿资金池管理中心",
        "Shenzhen IP Pledge Risk Compensation Pool",
        "12440300MB2D5F6G7",
        "approved",
        "pool-sz@ipx.demo",
        "黄资金",
    ),
    (
        "pool manager (Dongguan)",
        "pool",
        "东莞市知识产权质押融资风险补偿基金管理中心",
        "Dongguan IP Pledge Risk Compensation Fund",
        "12441900MB2E7H8J9",
        "approved",
        "pool-dg@ipx.demo",
        "梁基金",
    ),
    (
        "pool manager (Shanghai)",
        "pool",
        "上海市知识产权质押融资风险补偿资金管理中心",
        "Shanghai IP Pledge Risk Compensation Centre",
        "12310000MB2F3K4L5",
        "approved",
        "pool-sh@ipx.demo",
        "周补偿",
    ),
    (
        "backstop acquirer",
        "acquirer",
        "北京知识产权运营管理有限公司 (收储)",
        "Beijing IP Operation (acquirer)",
        "91110000MA01F6G7H",
        "approved",
        "acquirer@ipx.demo",
        "赵收储",
    ),
    (
        "buyer (approved)",
        "buyer",
        "深圳市华创芯片科技有限公司",
        "Shenzhen Huachuang Chip Tech",
        "91440300MA5J8K9L0",
        "approved",
        "buyer@ipx.demo",
        "张竞买",
    ),
    (
        "buyer (awaiting approval)",
        "buyer",
        "杭州云帆数据服务有限公司",
        "Hangzhou Yunfan Data",
        "91330106MA2M3N4P5",
        "pending",
        "newbuyer@ipx.demo",
        "刘新",
    ),
]


async def seed_demo(settings: Settings, *, force: bool) -> list[tuple[str, str, str]]:
    """Create the demo organisations; returns (who, e-mail, password) for each new login."""
    assert settings.database_url
    clock = SystemClock()
    pool = await db.create_pool(settings.database_url, min_size=1, max_size=4)
    try:
        if not force and await pool.fetchval("SELECT count(*) FROM organisations"):
            return []
        logins = []
        pw_hash = None
        for who, kind, name, name_en, body, status, email, person in DEMO_ORGS:
            if await pool.fetchval("SELECT 1 FROM users WHERE email = $1", email):
                continue
            if pw_hash is None:
                from market.accounts.passwords import hash_password

                pw_hash = await hash_password(DEMO_PASSWORD)
            async with unit_of_work(Context(pool=pool, clock=clock), SYSTEM) as uow:
                org = await accounts.create_organisation(
                    uow,
                    kind=kind,
                    name=name,
                    name_en=name_en,
                    credit_code=demo_credit_code(body),
                    status=status,
                )
                await accounts.create_user(
                    uow,
                    org_id=org.id,
                    email=email,
                    display_name=person,
                    password="",
                    password_hash=pw_hash,
                    role="admin",
                )
            logins.append((who, email, DEMO_PASSWORD))
        bank = await pool.fetchrow(
            "SELECT u.id AS user_id, u.org_id FROM users u WHERE u.email = 'bank@ipx.demo'"
        )
        if bank is None:
            return logins
        bank_user = await accounts.load_viewer(pool, bank["user_id"])
        assert bank_user is not None
        await seed_demo_portfolio(Act(Context(pool=pool, clock=clock), Actor.of(bank_user)))
        has_cases = await pool.fetchval(
            "SELECT EXISTS (SELECT 1 FROM disposal_cases WHERE bank_org_id = $1)",
            bank["org_id"],
        )
        if not has_cases:
            viewer = await accounts.load_viewer(pool, bank["user_id"])
            assert viewer is not None
            buyer = await _demo_viewer(pool, "buyer@ipx.demo")
            operator = await _demo_viewer(pool, "operator@ipx.demo")
            await seed_cases_and_lots(
                pool, clock.now(), policy_for(settings), viewer, buyer, operator
            )
        pools_demo = await seed_demo_pools(pool, clock.now(), settings.data_dir)
    finally:
        await pool.close()
    if pools_demo is not None and pools_demo.statement is not None:
        print(
            "demo bank statement to reconcile (sign in as pool@ipx.demo): "
            f"{pools_demo.statement.resolve()}"
        )
    return logins


async def _demo_viewer(pool: asyncpg.Pool, email: str) -> Viewer | None:
    user_id = await pool.fetchval("SELECT id FROM users WHERE email = $1", email)
    return None if user_id is None else await accounts.load_viewer(pool, user_id)
