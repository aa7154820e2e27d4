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
from market.accounts import onboarding, people
from market.accounts import services as accounts
from market.accounts.models import DocumentIn, Onboard, RegisterBuyer, Viewer
from market.clock import SystemClock
from market.collateral.demo import seed_demo_portfolio
from market.commands import SYSTEM, Act, Actor, Context, unit_of_work
from market.licensing.demo import seed_pledgor_demo
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
        "second bank (pledgee)",
        "bank",
        "招商银行深圳科技园支行",
        "CMB Shenzhen Science Park",
        "91440300MA5F2G3H4",
        "approved",
        "bank2@ipx.demo",
        "何信贷",
    ),
    (
        # The borrower of the demo bank's loan BJ-ZGC-2021-0433 (market/collateral/demo.py):
        # the same credit code links it to that loan's case (docs/rules.md §The pledgor).
        "pledgor (borrower)",
        "pledgor",
        "北京链融数据科技有限公司",
        "Beijing Lianrong Data Tech",
        "91110108MA01G4K9W",
        "approved",
        "pledgor@ipx.demo",
        "孙出质",
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


def demo_logins() -> list[tuple[str, str, str]]:
    """(who, e-mail, password) of every demo login, as seeded."""
    return [(org[0], org[6], DEMO_PASSWORD) for org in DEMO_ORGS]


async def seed_demo(settings: Settings, *, force: bool) -> list[tuple[str, str, str]]:
    """Create the demo organisations; returns (who, e-mail, password) for each new login."""
    assert settings.database_url
    clock = SystemClock()
    pool = await db.create_pool(settings.database_url, min_size=1, max_size=4)
    try:
        if not force and await pool.fetchval("SELECT count(*) FROM organisations"):
            return []
        logins = await _seed_organisations(pool, clock, settings)
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
        await seed_pledgor_demo(pool, clock)
    finally:
        await pool.close()
    if pools_demo is not None and pools_demo.statement is not None:
        print(
            "demo bank statement to reconcile (sign in as pool@ipx.demo): "
            f"{pools_demo.statement.resolve()}"
        )
    return logins


def _pdf(title: str) -> bytes:
    """A one-page PDF standing in for a scanned document."""
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
        b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\n"
        + f"% {title}\n".encode()
        + b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )


async def _seed_organisations(
    pool: asyncpg.Pool, clock: SystemClock, settings: Settings
) -> list[tuple[str, str, str]]:
    """Every demo organisation enters as a real one would, through the same commands: the
    operator onboards it with its documents, its administrator accepts the invitation,
    the operator approves it; buyers sign themselves up. Only the first operator, whom
    nobody could onboard, is made directly."""
    ctx = Context(pool=pool, clock=clock)
    logins: list[tuple[str, str, str]] = []
    operator_id = await pool.fetchval("SELECT id FROM users WHERE email = $1", DEMO_ORGS[0][6])
    if operator_id is None:
        who, kind, name, name_en, body, status, email, person = DEMO_ORGS[0]
        async with unit_of_work(ctx, SYSTEM) as uow:
            org = await accounts.create_organisation(
                uow,
                kind=kind,
                name=name,
                name_en=name_en,
                credit_code=demo_credit_code(body),
                status=status,
            )
            operator_id = await accounts.create_user(
                uow,
                org_id=org.id,
                email=email,
                display_name=person,
                password=DEMO_PASSWORD,
                role="admin",
            )
        logins.append((who, email, DEMO_PASSWORD))
    operator_viewer = await accounts.load_viewer(pool, operator_id)
    assert operator_viewer is not None
    operator = Act(ctx, Actor.of(operator_viewer))
    for who, kind, name, name_en, body, status, email, person in DEMO_ORGS[1:]:
        if await pool.fetchval("SELECT 1 FROM users WHERE email = $1", email):
            continue
        licence = DocumentIn(
            kind="business_licence", filename="营业执照.pdf", content=_pdf(f"licence {body}")
        )
        if kind == "buyer":
            registered = await Act(ctx, SYSTEM)(
                onboarding.register_buyer,
                RegisterBuyer(
                    name=name,
                    credit_code=demo_credit_code(body),
                    email=email,
                    display_name=person,
                    password=DEMO_PASSWORD,
                    documents=[licence],
                ),
            )
            org_id = registered.organisation.id
        else:
            letter = DocumentIn(
                kind="authorisation_letter",
                filename="授权委托书.pdf",
                content=_pdf(f"letter {body}"),
            )
            onboarded = await operator(
                onboarding.onboard_organisation,
                Onboard(
                    kind=kind,  # type: ignore[arg-type]  # DEMO_ORGS names kinds
                    name=name,
                    name_en=name_en,
                    credit_code=demo_credit_code(body),
                    admin_email=email,
                    documents=[licence, letter],
                ),
            )
            org_id = onboarded.organisation.id
            nonce = await pool.fetchval(
                "SELECT nonce FROM invitations WHERE id = $1", onboarded.invitation.id
            )
            await Act(ctx, SYSTEM)(
                people.accept_invitation,
                people.Accept(
                    token=people.invitation_token(
                        settings.secret_key, onboarded.invitation.id, bytes(nonce)
                    ),
                    display_name=person,
                    password=DEMO_PASSWORD,
                    secret_key=settings.secret_key,
                ),
            )
        if status == "approved":
            await operator(
                onboarding.decide_organisation,
                onboarding.DecideOrganisation(org_id=org_id, approve=True),
            )
        logins.append((who, email, DEMO_PASSWORD))
    return logins


async def _demo_viewer(pool: asyncpg.Pool, email: str) -> Viewer | None:
    user_id = await pool.fetchval("SELECT id FROM users WHERE email = $1", email)
    return None if user_id is None else await accounts.load_viewer(pool, user_id)
