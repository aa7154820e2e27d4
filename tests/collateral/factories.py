"""Realistic portfolio rows for CSV import tests, and helpers to write and read them back.

Rows are dicts keyed by the CSV's English column keys, with values as a bank's Excel
export would have them: Chinese titles and names, valid application numbers (check digit
by market.validators), amounts in yuan, dates as YYYY-MM-DD or YYYY/M/D.
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg

from market.clock import Clock, FrozenClock
from market.collateral import csv_format
from market.collateral.csv_import import Progress, StartImport, import_now
from market.collateral.models import ImportResult
from market.validators import _credit_check_char, _patent_check_char
from tests.factories import act_as

TODAY = date(2026, 1, 5)  # the FrozenClock's default day in Beijing

_CITIES = [
    "成都",
    "深圳",
    "杭州",
    "苏州",
    "武汉",
    "西安",
    "合肥",
    "南京",
    "中山",
    "宁波",
    "北京",
    "东莞",
]
_REGIONS = {
    "成都": "四川省成都市",
    "深圳": "广东省深圳市",
    "杭州": "浙江省杭州市",
    "苏州": "江苏省苏州市",
    "武汉": "湖北省武汉市",
    "西安": "陕西省西安市",
    "合肥": "安徽省合肥市",
    "南京": "江苏省南京市",
    "中山": "广东省中山市",
    "宁波": "浙江省宁波市",
    "北京": "北京市海淀区",
    "东莞": "广东省东莞市",
}
_FIRMS = [
    "华芯",
    "智联",
    "云帆",
    "天和",
    "锐思",
    "光启",
    "博远",
    "中科微",
    "新材",
    "易达",
    "恒信",
    "微纳",
]
_TRADES = ["科技", "电子", "新材料", "生物医药", "智能装备", "软件", "光电", "新能源"]
# (title, IPC code) pairs: what small Chinese tech firms actually patent.
_TOPICS = [
    ("基于深度学习的工业缺陷图像检测方法", "G06T 7/00"),
    ("一种锂离子电池隔膜及其制备方法", "H01M 50/403"),
    ("光伏逆变器的最大功率点跟踪控制方法", "H02J 3/38"),
    ("一种低功耗蓝牙无线传感器节点", "H04W 52/02"),
    ("数据库查询优化方法及系统", "G06F 16/2453"),
    ("一种可降解医用缝合线", "A61L 17/10"),
    ("用于新能源汽车的电机冷却结构", "H02K 9/19"),
    ("一种高导热石墨烯复合材料", "C01B 32/182"),
    ("车载激光雷达点云分割方法", "G01S 17/89"),
    ("一种智能仓储分拣机器人", "B65G 1/137"),
    ("区块链跨链数据验证方法", "H04L 9/32"),
    ("一种半导体芯片封装结构", "H01L 23/31"),
    ("中药提取物的制备方法及其应用", "A61K 36/00"),
    ("一种数控机床主轴温度补偿装置", "B23Q 11/14"),
    ("语音识别模型的训练方法", "G10L 15/06"),
    ("一种水处理用复合絮凝剂", "C02F 1/52"),
]
_TRADEMARKS = [("华芯", "9;42"), ("云帆", "9;35;42"), ("天和", "5"), ("锐思", "9")]
_SOFTWARE = ["智能制造执行系统V2.0", "供应链协同管理平台V1.0", "工业物联网数据采集软件V3.1"]


def patent_number(year: int, type_digit: int, serial: int) -> str:
    """A valid 12-digit CNIPA application number with its check character."""
    body = f"{year:04d}{type_digit}{serial:07d}"
    return f"{body}.{_patent_check_char(body)}"


def pledgor_credit_code(n: int) -> str:
    body = f"91510100MA{n:07d}"[:17]
    return body + _credit_check_char(body)


def _excel_date(day: date, rng: random.Random) -> str:
    # Half the dates as Excel writes them in a Chinese locale.
    return f"{day.year}/{day.month}/{day.day}" if rng.random() < 0.5 else day.isoformat()


def portfolio_rows(
    n: int, *, seed: int = 1, today: date = TODAY, max_assets: int = 4
) -> list[dict[str, str]]:
    """n rows (one per pledged asset) of pledges with 1..max_assets assets each."""
    rng = random.Random(seed)
    rows: list[dict[str, str]] = []
    pledge_no = asset_serial = 0
    while len(rows) < n:
        pledge_no += 1
        city = rng.choice(_CITIES)
        firm = f"{city}{rng.choice(_FIRMS)}{rng.choice(_TRADES)}有限公司"
        pledgor_n = pledge_no  # one pledgor per pledge keeps the generator simple
        registered = today - timedelta(days=rng.randint(200, 1500))
        principal = rng.randint(50, 1000) * 10_000
        outstanding = rng.randint(principal // 4, principal)
        defaulted = rng.random() < 0.3
        default_day = registered + timedelta(days=rng.randint(180, 190)) if defaulted else None
        pledge = {
            "pledge_registration_no": f"Y{registered.year}98{seed:02d}{pledge_no:05d}",
            "pledge_registered_on": _excel_date(registered, rng),
            "secured_amount": f"{principal:,}",
            "pledgor_name": firm,
            "pledgor_credit_code": pledgor_credit_code(seed * 100_000 + pledgor_n),
            "pledgor_region": _REGIONS[city],
            "loan_no": f"JD{registered.year}{seed:02d}{pledge_no:06d}",
            "principal": f"{principal:,}",
            "rate": rng.choice(["3.45", "3.85", "4.35", "4.8", "5.2%"]),
            "outstanding_principal": f"{outstanding}.00",
            "outstanding_interest": f"{rng.randint(0, outstanding // 20)}.{rng.randint(0, 99):02d}",
            "disbursed_on": _excel_date(registered, rng),
            "default_date": default_day.isoformat() if default_day else "",
            "npl_class": rng.choice(["次级", "可疑", "损失", "substandard"]) if defaulted else "",
            "pool_code": rng.choice(["", "ZS-2024", "SZ-01", "DG-T1"]),
        }
        for _ in range(min(rng.randint(1, max_assets), n - len(rows))):
            asset_serial += 1
            rows.append({**pledge, **_asset(rng, seed, asset_serial, firm, today)})
    return rows


def _asset(rng: random.Random, seed: int, serial: int, owner: str, today: date) -> dict[str, str]:
    blank = {c.key: "" for c in csv_format.COLUMNS if c.group == "asset"}
    roll = rng.random()
    if roll < 0.04:
        mark, classes = rng.choice(_TRADEMARKS)
        return blank | {
            "asset_kind": "商标",
            "asset_number": str(10_000_000 + seed * 100_000 + serial),
            "title": f"“{mark}”文字商标",
            "owners": owner,
            "legal_status": "有效",
            "nice_classes": classes,
            "valid_until": (today + timedelta(days=rng.randint(400, 3000))).isoformat(),
        }
    if roll < 0.07:
        year = rng.randint(2015, 2024)
        return blank | {
            "asset_kind": "软件著作权",
            "asset_number": f"{year}SR{seed:02d}{serial:05d}",
            "title": rng.choice(_SOFTWARE),
            "owners": owner,
            "legal_status": "有效",
            "registered_on": date(year, rng.randint(1, 12), rng.randint(1, 28)).isoformat(),
        }
    title, ipc = rng.choice(_TOPICS)
    invention = rng.random() < 0.7
    year = rng.randint(2013, 2023) if invention else rng.randint(2017, 2023)
    filed = date(year, rng.randint(1, 12), rng.randint(1, 28))
    # Annuities are paid year by year up to the day before the filing anniversary.
    anniversary = filed.replace(year=today.year)
    if anniversary <= today:
        anniversary = anniversary.replace(year=today.year + 1)
    owners = owner if rng.random() < 0.8 else f"{owner};电子科技大学"
    return blank | {
        "asset_kind": "专利",
        "asset_number": patent_number(year, 1 if invention else 2, seed * 100_000 + serial),
        "title": title if invention else title.replace("方法", "装置"),
        "abstract": f"本{'发明' if invention else '实用新型'}公开了{title}，结构简单、成本低，适于产业化应用。",
        "patent_type": rng.choice(["", "发明" if invention else "实用新型"]),
        "filing_date": _excel_date(filed, rng),
        "ipc_codes": ipc if rng.random() < 0.7 else f"{ipc};G06N 3/08",
        "owners": owners,
        "legal_status": "有效",
        "annuity_paid_through": (anniversary - timedelta(days=1)).isoformat(),
        "licences": "" if rng.random() < 0.9 else "普通许可：成都某制造公司，2023-2026",
        "encumbrances": "",
    }


def to_csv(
    rows: Iterable[dict[str, str]], *, headers: str = "en", encoding: str = "utf-8"
) -> bytes:
    """The rows as a CSV file: English keys or Chinese headers, in the given encoding."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    columns = csv_format.COLUMNS
    writer.writerow([c.key if headers == "en" else c.header for c in columns])
    for row in rows:
        writer.writerow([row.get(c.key, "") for c in columns])
    return out.getvalue().encode(encoding)


async def import_file(
    pool: asyncpg.Pool,
    at: datetime | Clock,
    user_id: int,
    data: bytes,
    *,
    filename: str = "portfolio.csv",
    progress: Progress | None = None,
) -> ImportResult:
    """Import a CSV as the bank user `user_id` would through the API (csv_import.import_now)."""
    # A datetime has a `now` too, so it would pass for a Clock (market.clock): freeze it.
    act = await act_as(pool, FrozenClock(at) if isinstance(at, datetime) else at, user_id)
    return await import_now(
        act, StartImport(content=data, filename=filename, via="api"), progress=progress
    )


async def make_portfolio(
    pool: asyncpg.Pool, at: datetime, user_id: int, *, rows: int = 12, seed: int = 1
) -> ImportResult:
    """Import a small realistic portfolio for the user's bank (for tests of other areas too)."""
    return await import_file(
        pool, at, user_id, to_csv(portfolio_rows(rows, seed=seed)), filename=f"portfolio-{seed}.csv"
    )


async def registry_snapshot(pool: asyncpg.Pool, bank_org_id: int) -> dict[str, Any]:
    """The bank's registry as seen through its pledges, without ids or timestamps."""
    async with pool.acquire() as conn:
        pledges = await conn.fetch(
            """SELECT g.id, g.registration_no, g.secured_amount_fen, g.registered_on,
                      p.credit_code, p.name, p.region,
                      l.loan_no, l.principal_fen, l.rate_bp, l.outstanding_principal_fen,
                      l.outstanding_interest_fen, l.disbursed_on, l.default_date, l.npl_class,
                      l.pool_code
               FROM pledges g JOIN pledgors p ON p.id = g.pledgor_id
               LEFT JOIN loans l ON l.pledge_id = g.id
               WHERE g.bank_org_id = $1""",
            bank_org_id,
        )
        assets = await conn.fetch(
            """SELECT pa.pledge_id, a.kind, a.number, a.title, a.abstract, a.patent_type,
                      a.filing_date, a.term_ends_on, a.ipc_codes, a.annuity_paid_through,
                      a.nice_classes, a.valid_until, a.registered_on, a.owners,
                      a.legal_status, a.licences, a.encumbrances
               FROM pledge_assets pa JOIN ip_assets a ON a.id = pa.asset_id
               WHERE a.bank_org_id = $1""",
            bank_org_id,
        )
    by_pledge: dict[int, list[tuple[Any, ...]]] = {}
    for a in assets:
        by_pledge.setdefault(a["pledge_id"], []).append(
            tuple(tuple(v) if isinstance(v, list) else v for k, v in a.items() if k != "pledge_id")
        )
    return {
        g["registration_no"]: (
            tuple(v for k, v in g.items() if k not in ("id", "registration_no")),
            sorted(by_pledge.get(g["id"], [])),
        )
        for g in pledges
    }


async def count_rows(pool: asyncpg.Pool, *tables: str) -> dict[str, int]:
    async with pool.acquire() as conn:
        return {t: int(await conn.fetchval(f"SELECT count(*) FROM {t}")) for t in tables}


REGISTRY_TABLES = ("pledgors", "ip_assets", "pledges", "pledge_assets", "loans", "monitoring_flags")
