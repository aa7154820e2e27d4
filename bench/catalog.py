"""The public catalogue under load: 100,000 published lots, a realistic mix of searches.

Creates (or reuses) a dedicated database `<name>_bench_catalog` on the server named by
DATABASE_URL (else on the embedded PostgreSQL, started as `market` does), applies the
migrations, seeds 100,000 published lots with COPY, ANALYZEs, then runs the queries through
the same market.catalogue.services.search() the web pages and the API call, one at a time,
and prints one line per query type and finally:

  catalog_search p50_ms=… p95_ms=… lots=100000

Run: .venv/bin/python bench/catalog.py [--queries N] [--reseed] [--explain]
(--explain prints EXPLAIN ANALYZE of one query of each type instead of timing them.)
Goal: p95 ≤ 50 ms on a 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from market import db
from market.catalogue import services
from market.catalogue.models import CatalogueQuery
from market.catalogue.text import ipc_keys, search_document
from market.cli import resolved
from market.settings import load

LOTS = 100_000
LOTS_PER_CASE = 10
# Bump when the seed changes, so an old bench database is seeded again.
SEED_VERSION = "3"
SEED = 20260105

# --- vocabulary: technical fields with the IPC groups they are filed under --------------

FIELDS: list[tuple[list[str], list[str]]] = [
    (
        ["锂电池", "正极材料", "负极材料", "电解液", "隔膜", "固态电池"],
        ["H01M 4/525", "H01M 10/0525", "H01M 4/131", "H01M 10/056", "H01M 50/409"],
    ),
    (
        ["图像识别", "卷积神经网络", "目标检测", "人脸识别", "深度学习"],
        ["G06V 10/82", "G06V 40/16", "G06T 7/00", "G06N 3/08", "G06V 20/52"],
    ),
    (
        ["无人机", "飞行控制", "航拍", "旋翼"],
        ["B64C 39/02", "B64U 10/13", "G05D 1/10", "B64D 47/08"],
    ),
    (
        ["中药组合物", "提取物", "颗粒剂", "清热解毒"],
        ["A61K 36/00", "A61K 36/8965", "A61P 1/00", "A61P 29/00", "A61K 9/16"],
    ),
    (
        ["半导体封装", "芯片", "晶圆", "引线框架", "倒装焊"],
        ["H01L 23/31", "H01L 21/56", "H01L 23/495", "H01L 21/60", "H01L 25/065"],
    ),
    (
        ["新能源汽车", "电机控制器", "充电桩", "电池管理系统"],
        ["B60L 53/16", "B60L 58/12", "H02P 21/00", "H02J 7/00"],
    ),
    (
        ["光伏组件", "逆变器", "太阳能电池片"],
        ["H02S 40/32", "H01L 31/18", "H02M 7/48", "H02J 3/38"],
    ),
    (
        ["区块链", "数据加密", "身份认证", "隐私计算"],
        ["H04L 9/32", "H04L 9/06", "G06F 21/62", "H04L 9/00"],
    ),
    (
        ["5G基站", "天线阵列", "射频前端", "信号处理"],
        ["H04W 24/02", "H01Q 1/24", "H04B 1/40", "H04L 5/00"],
    ),
    (
        ["工业机器人", "机械臂", "视觉定位", "减速器"],
        ["B25J 9/16", "B25J 11/00", "F16H 1/32", "G05B 19/418"],
    ),
    (
        ["石墨烯", "复合材料", "涂层", "纳米材料"],
        ["C01B 32/182", "C08K 3/04", "C09D 5/24", "B82Y 30/00"],
    ),
    (
        ["污水处理", "膜分离", "催化剂", "废气净化"],
        ["C02F 9/00", "B01D 61/14", "B01J 23/89", "B01D 53/86"],
    ),
    (
        ["基因检测", "抗体", "疫苗", "细胞培养"],
        ["C12Q 1/6883", "C07K 16/28", "A61K 39/12", "C12N 5/0775"],
    ),
    (
        ["智能农机", "水肥一体化", "植物保护", "种子包衣"],
        ["A01B 79/00", "A01G 25/02", "A01M 7/00", "A01C 1/06"],
    ),
    (
        ["LED照明", "显示面板", "OLED", "背光模组"],
        ["H05B 45/00", "G09F 9/33", "H10K 59/12", "G02F 1/13357"],
    ),
    (
        ["混凝土", "装配式建筑", "防水材料", "钢结构"],
        ["C04B 28/04", "E04B 1/04", "E04D 5/10", "E04B 1/58"],
    ),
    (["纺织面料", "纤维", "染整工艺"], ["D03D 15/00", "D01F 6/62", "D06P 1/00"]),
    (
        ["医疗器械", "导管", "超声成像", "手术机器人"],
        ["A61B 8/00", "A61M 25/00", "A61B 34/30", "A61B 17/34"],
    ),
    (["食品保鲜", "发酵工艺", "茶饮料"], ["A23L 3/3463", "A23F 3/16", "C12G 3/00"]),
    (["数控机床", "刀具", "精密加工"], ["B23Q 15/00", "B23B 27/14", "G05B 19/404"]),
]
FORMS = [
    "一种{a}及其制备方法",
    "一种基于{a}的{b}方法",
    "{a}{b}装置及系统",
    "一种用于{a}的{b}",
    "{a}与{b}的集成结构",
    "一种{a}{b}检测方法、设备及存储介质",
]
SOFTWARE = ["管理平台", "监测系统", "调度软件", "分析系统", "控制软件"]
BRANDS = ["蜀锦", "天府", "川红", "峨眉", "青城", "锦江", "嘉禾", "华阳", "龙泉", "金沙"]
PROVINCES = [
    ("北京市", "海淀区"),
    ("天津市", "滨海新区"),
    ("河北省", "石家庄市"),
    ("山西省", "太原市"),
    ("内蒙古自治区", "呼和浩特市"),
    ("辽宁省", "沈阳市"),
    ("吉林省", "长春市"),
    ("黑龙江省", "哈尔滨市"),
    ("上海市", "浦东新区"),
    ("江苏省", "苏州市"),
    ("浙江省", "杭州市"),
    ("安徽省", "合肥市"),
    ("福建省", "厦门市"),
    ("江西省", "赣州市"),
    ("山东省", "青岛市"),
    ("河南省", "郑州市"),
    ("湖北省", "武汉市"),
    ("湖南省", "长沙市"),
    ("广东省", "深圳市"),
    ("广西壮族自治区", "南宁市"),
    ("海南省", "海口市"),
    ("重庆市", "渝北区"),
    ("四川省", "成都市"),
    ("贵州省", "贵阳市"),
    ("云南省", "昆明市"),
    ("西藏自治区", "拉萨市"),
    ("陕西省", "西安市"),
    ("甘肃省", "兰州市"),
    ("青海省", "西宁市"),
    ("宁夏回族自治区", "银川市"),
    ("新疆维吾尔自治区", "乌鲁木齐市"),
]
STATUSES = [
    ("announced", 40),
    ("bidding", 42),
    ("sold", 8),
    ("failed", 6),
    ("paused", 2),
    ("withdrawn", 1),
    ("returned", 1),
]


def bench_url(server_url: str) -> tuple[str, str]:
    parts = urlsplit(server_url)
    name = (parts.path.lstrip("/") or "postgres") + "_bench_catalog"
    return name, urlunsplit(parts._replace(path="/" + name))


async def ensure_database(server_url: str, reseed: bool) -> str:
    """The bench database, created if missing, rebuilt if its migrations changed."""
    name, url = bench_url(server_url)
    admin = await asyncpg.connect(server_url)
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists and reseed:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    conn = await db.connect(url)
    try:
        await db.migrate(conn)
    except db.MigrationError as exc:
        # A dedicated database: when the schema files moved on (new index definitions),
        # start it again rather than benchmark an old schema.
        print(f"bench database out of date ({exc}); recreating it", file=sys.stderr)
        await conn.close()
        return await ensure_database(server_url, reseed=True)
    finally:
        if not conn.is_closed():
            await conn.close()
    return url


def title_for(rng: random.Random, kind: str) -> tuple[str, list[str], str]:
    """(title, IPC codes, abstract) of one lot."""
    terms, codes = rng.choice(FIELDS)
    a, b = rng.sample(terms, 2)
    if kind == "trademark":
        brand = rng.choice(BRANDS)
        title = f"“{brand}{a}”注册商标（第{rng.randint(1, 45)}类）"
        return title, [], f"{brand}品牌在{a}领域的注册商标，使用多年，具有一定知名度。"
    if kind == "software_copyright":
        title = f"{a}{rng.choice(SOFTWARE)}V{rng.randint(1, 5)}.{rng.randint(0, 9)}软件著作权"
        return title, [], f"用于{a}与{b}的计算机软件，含源代码及用户手册。"
    title = rng.choice(FORMS).format(a=a, b=b)
    n = rng.choice([1, 1, 1, 2, 3])
    chosen = rng.sample(codes, min(n, len(codes)))
    if rng.random() < 0.15:
        title = f"专利包：{title}等{rng.randint(2, 12)}项专利"
    abstract = (
        f"本发明涉及{a}技术领域，公开了一种{b}。通过改进{rng.choice(terms)}的结构与工艺，"
        f"提高了{rng.choice(['效率', '稳定性', '精度', '安全性', '良品率'])}，降低了成本。"
    )
    return title, chosen, abstract


def log_price_fen(rng: random.Random) -> int:
    """10 thousand to 50 million yuan, log-uniform, a round-ish figure."""
    yuan = math.exp(rng.uniform(math.log(10_000), math.log(50_000_000)))
    step = 10 ** max(2, int(math.log10(yuan)) - 2)
    return max(10_000, int(yuan // step * step)) * 100


async def seed(url: str, now: datetime) -> None:
    rng = random.Random(SEED)
    conn = await asyncpg.connect(url)  # plain codecs: COPY sends jsonb as text
    try:
        async with conn.transaction():
            bank = await conn.fetchval(
                "INSERT INTO organisations (kind, name, status, created_at) "
                "VALUES ('bank', '基准测试银行股份有限公司', 'approved', $1) RETURNING id",
                now,
            )
            user = await conn.fetchval(
                "INSERT INTO users (org_id, email, display_name, password_hash, role, language, "
                "created_at) VALUES ($1, 'bench@bank.test', '基准', 'x', 'admin', 'zh', $2) "
                "RETURNING id",
                bank,
                now,
            )
            cases = LOTS // LOTS_PER_CASE
            await conn.copy_records_to_table(
                "pledgors",
                columns=[
                    "bank_org_id",
                    "credit_code",
                    "name",
                    "region",
                    "created_at",
                    "updated_at",
                ],
                records=[
                    (bank, f"91510100{i:09d}X"[:17] + "0", f"成都某科技有限公司{i}", "", now, now)
                    for i in range(cases)
                ],
            )
            await conn.execute(
                """INSERT INTO loans (bank_org_id, loan_no, pledgor_id, principal_fen, rate_bp,
                       outstanding_principal_fen, created_at, updated_at)
                   SELECT $1, 'L' || id, id, 100000000, 450, 80000000, $2, $2 FROM pledgors""",
                bank,
                now,
            )
            await conn.execute(
                """INSERT INTO disposal_cases (bank_org_id, loan_id, reference, status,
                       claim_principal_fen, claim_interest_fen, claim_costs_fen, opened_by,
                       opened_at)
                   SELECT $1, id, 'CZ-2026-' || lpad(id::text, 6, '0'), 'open', 80000000, 0, 0,
                       $2, $3
                   FROM loans""",
                bank,
                user,
                now,
            )
            case_ids = [
                r["id"] for r in await conn.fetch("SELECT id FROM disposal_cases ORDER BY id")
            ]
            await conn.execute(
                """CREATE TEMP TABLE lots_in (
                       case_id bigint, reference text, title text, description text, status text,
                       round smallint, valuation_fen bigint, start_price_fen bigint,
                       deposit_fen bigint, increment_fen bigint, terms jsonb,
                       announced_at timestamptz, bidding_starts_at timestamptz,
                       bidding_ends_at timestamptz, paused_from text, paused_at timestamptz,
                       resume_by timestamptz, region text, asset_kinds text[], ipc_keys text[],
                       doc text, current_price_fen bigint, published_at timestamptz)
                   ON COMMIT DROP"""
            )
            names = [s for s, _ in STATUSES]
            weights = [w for _, w in STATUSES]
            records = []
            for i in range(LOTS):
                kind = rng.choices(["patent", "trademark", "software_copyright"], [80, 12, 8])[0]
                title, codes, abstract = title_for(rng, kind)
                province, city = rng.choice(PROVINCES)
                region = province + city
                status = rng.choices(names, weights)[0]
                start = log_price_fen(rng)
                increment = max(100_00, start // 200 // 100_00 * 100_00)
                valuation = start * 10 // 7
                published = now - timedelta(seconds=rng.uniform(0, 40 * 86400))
                ends = now + timedelta(seconds=rng.uniform(60, 30 * 86400))
                current = None
                if status in ("announced", "paused"):
                    starts = ends - timedelta(days=rng.choice([1, 2, 3]))
                elif status == "bidding":
                    starts = now - timedelta(seconds=rng.uniform(3600, 3 * 86400))
                    if rng.random() < 0.5:
                        current = start + increment * rng.randint(1, 40)
                else:
                    ends = now - timedelta(seconds=rng.uniform(3600, 30 * 86400))
                    starts = ends - timedelta(days=1)
                    if status == "sold":
                        current = start + increment * rng.randint(0, 60)
                published = min(published, starts - timedelta(days=1))
                rnd = rng.choices([1, 2, 3], [80, 15, 5])[0]
                records.append(
                    (
                        case_ids[i // LOTS_PER_CASE],
                        f"LOT-2026-{i + 1:06d}",
                        title,
                        abstract,
                        status,
                        rnd,
                        valuation,
                        start,
                        start // 10,
                        increment,
                        '{"extension_window_s": 300, "extension_s": 300, "payment_days": 10}',
                        published,
                        starts,
                        ends,
                        "announced" if status == "paused" else None,
                        now if status == "paused" else None,
                        now + timedelta(days=5) if status == "paused" else None,
                        region,
                        [kind],
                        ipc_keys(codes),
                        search_document(title, abstract, *codes, region),
                        current,
                        published,
                    )
                )
            await conn.copy_records_to_table("lots_in", records=records)
            await conn.execute(
                """INSERT INTO lots (case_id, bank_org_id, reference, title, description, status,
                       round, valuation_fen, start_price_fen, deposit_fen, increment_fen,
                       first_start_fen, terms, announced_at, bidding_starts_at, bidding_ends_at,
                       paused_from, paused_at, resume_by, region, asset_kinds, ipc_keys, search,
                       current_price_fen, catalogue_price_fen, version, created_at, updated_at,
                       published_at)
                   SELECT case_id, $1, reference, title, description, status, round,
                       valuation_fen, start_price_fen, deposit_fen, increment_fen,
                       start_price_fen, terms, announced_at, bidding_starts_at, bidding_ends_at,
                       paused_from, paused_at, resume_by, region, asset_kinds, ipc_keys,
                       to_tsvector('simple', doc), current_price_fen, current_price_fen, 1, $2, $2,
                       published_at
                   FROM lots_in""",
                bank,
                now,
            )
            await conn.execute(
                """CREATE TABLE IF NOT EXISTS bench_catalog_meta (
                       version text NOT NULL, lots integer NOT NULL,
                       seeded_at timestamptz NOT NULL)"""
            )
            await conn.execute("DELETE FROM bench_catalog_meta")
            await conn.execute(
                "INSERT INTO bench_catalog_meta VALUES ($1, $2, $3)", SEED_VERSION, LOTS, now
            )
        await conn.execute("VACUUM ANALYZE lots")
    finally:
        await conn.close()


async def seeded_at(url: str) -> datetime | None:
    conn = await asyncpg.connect(url)
    try:
        if not await conn.fetchval("SELECT to_regclass('bench_catalog_meta') IS NOT NULL"):
            return None
        row = await conn.fetchrow("SELECT version, lots, seeded_at FROM bench_catalog_meta")
        if row is None or row["version"] != SEED_VERSION or row["lots"] != LOTS:
            return None
        return row["seeded_at"]  # type: ignore[no-any-return]
    finally:
        await conn.close()


# --- the query mix ------------------------------------------------------------------------

ALL_TERMS = [t for terms, _ in FIELDS for t in terms]
ALL_CODES = [c for _, codes in FIELDS for c in codes]
WORDS = ["5G", "LED", "OLED", "V2", "方法", "系统", "制备方法", "装置"]


def ipc_prefix_of(rng: random.Random) -> str:
    code = rng.choice(ALL_CODES)
    subclass, group = code.split(" ")
    return rng.choice(
        [
            subclass[:1],
            subclass[:3],
            subclass,
            subclass,
            subclass + " " + group.split("/")[0] + "/",
            code,
        ]
    )


def keywords(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.55:
        return rng.choice(ALL_TERMS)
    if roll < 0.75:
        return " ".join(rng.sample(ALL_TERMS, 2))
    if roll < 0.85:
        term = rng.choice(ALL_TERMS)
        start = rng.randrange(0, max(1, len(term) - 1))
        return term[start : start + 2]
    if roll < 0.92:
        return rng.choice(WORDS)
    return rng.choice(ALL_TERMS)[0]  # one character: prefix match


def price_range(r: random.Random) -> CatalogueQuery:
    low = r.choice([10_000, 100_000, 500_000, 1_000_000, 5_000_000]) * 100
    return CatalogueQuery(
        price_min_fen=low,
        price_max_fen=low * r.choice([2, 5, 10]),
        sort=r.choice([None, "price_asc"]),
    )


MIX: dict[str, tuple[int, Callable[[random.Random], CatalogueQuery]]] = {
    "browse": (8, lambda r: CatalogueQuery(page=r.choice([1, 1, 1, 2, 3]))),
    "keyword": (22, lambda r: CatalogueQuery(q=keywords(r))),
    "keyword_status": (
        8,
        lambda r: CatalogueQuery(
            q=keywords(r), statuses=(r.choice(["sold", "failed", "bidding"]),)
        ),
    ),
    "ipc": (10, lambda r: CatalogueQuery(ipc=ipc_prefix_of(r))),
    "kind_region": (
        10,
        lambda r: CatalogueQuery(
            kind=r.choices(["patent", "trademark", "software_copyright"], [70, 20, 10])[0],
            region=r.choice([p for p, _ in PROVINCES])[:2],
        ),
    ),
    "price_range": (10, price_range),
    "ending_soon": (
        8,
        lambda r: CatalogueQuery(ending_soon=True, q=r.choice([None, None, keywords(r)])),
    ),
    "sorted": (
        10,
        lambda r: CatalogueQuery(
            sort=r.choice(["price_asc", "price_desc", "newest"]),
            statuses=r.choice(
                [("announced", "bidding"), ("sold",), ("announced", "bidding", "sold", "failed")]
            ),
        ),
    ),
    "deep_page": (
        6,
        lambda r: CatalogueQuery(
            page=r.randint(5, 50),
            q=r.choice([None, r.choice(ALL_TERMS)]),
            sort=r.choice([None, "newest"]),
        ),
    ),
    "combined": (
        8,
        lambda r: CatalogueQuery(
            q=r.choice(ALL_TERMS),
            ipc=ipc_prefix_of(r)[:4],
            region=r.choice([p for p, _ in PROVINCES])[:2],
            price_max_fen=r.choice([1_000_000, 10_000_000]) * 100,
        ),
    ),
}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]


async def explain(pool: asyncpg.Pool, now: datetime) -> None:
    rng = random.Random(1)
    for name, (_, make) in MIX.items():
        query = make(rng)
        p = services.plan(query, now)
        for template in ("page", "count_capped"):
            sql, args = services.assemble(getattr(services.Q, template), p.where, p.order, p.values)
            async with pool.acquire() as conn:
                rows = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, *args)
            print(f"== {name} {template} {query}")
            print("\n".join(r[0] for r in rows))


async def run(args: argparse.Namespace) -> None:
    settings = load()
    with resolved(settings) as s:
        assert s.database_url
        url = await ensure_database(s.database_url, args.reseed)
        now = await seeded_at(url)
        if now is None:
            now = datetime.now(UTC).replace(microsecond=0)
            started = time.perf_counter()
            await seed(url, now)
            print(f"seeded {LOTS} lots in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        pool = await db.create_pool(url, min_size=1, max_size=2)
        try:
            if args.explain:
                await explain(pool, now)
                return
            rng = random.Random(SEED)
            names = list(MIX)
            weights = [MIX[n][0] for n in names]
            for _ in range(100):  # warm-up: caches and prepared statements, not measured
                await services.search(pool, MIX[rng.choices(names, weights)[0]][1](rng), now)
            timings: dict[str, list[float]] = defaultdict(list)
            for _ in range(args.queries):
                name = rng.choices(names, weights)[0]
                query = MIX[name][1](rng)
                started = time.perf_counter()
                await services.search(pool, query, now)
                timings[name].append((time.perf_counter() - started) * 1000)
        finally:
            await pool.close()
    every = [t for ts in timings.values() for t in ts]
    for name in names:
        ts = timings[name]
        if ts:
            print(
                f"catalog_search type={name} n={len(ts)} p50_ms={statistics.median(ts):.1f} "
                f"p95_ms={pct(ts, 95):.1f} max_ms={max(ts):.1f}"
            )
    p50, p95 = statistics.median(every), pct(every, 95)
    print(f"catalog_search p50_ms={p50:.1f} p95_ms={p95:.1f} lots={LOTS}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=int(os.environ.get("BENCH_QUERIES", "2000")))
    parser.add_argument(
        "--reseed", action="store_true", help="drop and seed the bench database again"
    )
    parser.add_argument(
        "--explain", action="store_true", help="EXPLAIN ANALYZE one query of each type"
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
