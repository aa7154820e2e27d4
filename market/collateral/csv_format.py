"""The portfolio CSV: its columns, defined once, each with an English key and a Chinese header.

One row per pledged asset. The pledge, pledgor and loan columns repeat on every row of a
pledge and must agree across them. A header cell may be the English key or the Chinese
header (Chinese Excel users write the latter); either is matched exactly after stripping
the BOM and spaces, with full-width punctuation such as （） read as ().

Each column has a parser: a pure function from the stripped cell text to the value stored,
raising BadValue with a code and the values it names (the words are the catalogs'
`problem.<code>`, in the reader's language). Rules that involve several columns (the
patent type must match the application number, …) live in csv_import.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal

from market import money, validators
from market.collateral.models import AssetKind, LegalStatus, NplClass
from market.collateral.rules import PatentType
from market.errors import BadValue

Group = Literal["pledge", "asset"]

# --- parsers ---------------------------------------------------------------------------

# Full-width ASCII (U+FF01-U+FF5E) and the ideographic space, as Chinese input methods type
# them; the same folding market/validators.py applies to codes.
_FULL_WIDTH: Final = {0xFF01 + i: 0x21 + i for i in range(94)} | {0x3000: 0x20}


def fold(text: str) -> str:
    return text.translate(_FULL_WIDTH).strip()


def text(max_length: int) -> Callable[[str], str]:
    def parse(cell: str) -> str:
        if len(cell) > max_length:
            raise BadValue("too_long", max=max_length, length=len(cell))
        return cell

    return parse


def code(max_length: int) -> Callable[[str], str]:
    """An identifier a bank assigns (loan number, pledge registration number)."""

    def parse(cell: str) -> str:
        value = "".join(fold(cell).split())
        if len(value) > max_length:
            raise BadValue("too_long", max=max_length, length=len(value))
        return value

    return parse


# Dates as people and Excel write them: 2023-05-01, 2023/5/1 (Excel's short date in a
# Chinese locale), 2023.5.1 and 2023年5月1日.
_DATE_RE: Final = re.compile(
    r"([0-9]{4})\s*(?:[-/.]|年)\s*([0-9]{1,2})\s*(?:[-/.]|月)\s*([0-9]{1,2})日?"
    # a date cell formatted as date and time, at midnight
    r"(?:\s+0{1,2}:00(?::00)?)?"
)
# The Patent Law took effect on 1985-04-01: no date in a Chinese IP portfolio is earlier.
EARLIEST_DATE: Final = date(1985, 1, 1)
LATEST_DATE: Final = date(2100, 12, 31)


def parse_date(cell: str) -> date:
    m = _DATE_RE.fullmatch(fold(cell))
    if m is None:
        raise BadValue("csv_not_a_date", value=cell)
    try:
        day = date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        raise BadValue("csv_not_a_calendar_date", value=cell) from None
    if not EARLIEST_DATE <= day <= LATEST_DATE:
        raise BadValue(
            "csv_date_out_of_range",
            value=cell,
            earliest=EARLIEST_DATE.year,
            latest=LATEST_DATE.year,
        )
    return day


def parse_amount(cell: str) -> int:
    """Yuan as written (1,200,000.50 / ¥1200000) → fen; must be positive."""
    fen = money.parse_cny(cell)
    if fen <= 0:
        raise BadValue("csv_amount_not_positive")
    return fen


def parse_amount_or_zero(cell: str) -> int:
    return money.parse_cny(cell)


# An annual rate above 100 % is a typing error (the Supreme People's Court caps private
# lending at four times the LPR; bank loans are far below), and rates carry at most two
# decimals of a percent, i.e. whole basis points.
MAX_RATE_BP: Final = 10_000


def parse_rate(cell: str) -> int:
    """Annual rate in percent (4.35 or 4.35%) → basis points (435)."""
    value = fold(cell).removesuffix("%").strip()
    try:
        percent = Decimal(value)
    except InvalidOperation:
        raise BadValue("csv_rate_not_percent", value=cell) from None
    if not percent.is_finite():
        raise BadValue("csv_rate_not_percent", value=cell)
    bp = percent * 100
    if bp != bp.to_integral_value():
        raise BadValue("csv_rate_too_precise")
    if not 0 <= bp <= MAX_RATE_BP:
        raise BadValue("csv_rate_out_of_range", max=MAX_RATE_BP // 100)
    return int(bp)


_SPLIT_LIST: Final = re.compile(r"[;；、\n]+")
_SPLIT_NUMBERS: Final = re.compile(r"[;；、,，\s]+")


def split_list(cell: str) -> list[str]:
    return [part.strip() for part in _SPLIT_LIST.split(cell) if part.strip()]


def parse_ipc_codes(cell: str) -> list[str]:
    """IPC symbols separated by ';' (or '；', '、', ','), each in canonical form."""
    found: list[str] = []
    for part in re.split(r"[;；、,，\n]+", cell):
        if part.strip():
            ipc = validators.ipc_code(part)
            if ipc not in found:
                found.append(ipc)
    return found


MAX_OWNER_NAME: Final = 200


def parse_owners(cell: str) -> list[str]:
    owners: list[str] = []
    for name in split_list(cell):
        if len(name) > MAX_OWNER_NAME:
            raise BadValue("csv_owner_too_long", max=MAX_OWNER_NAME)
        if name not in owners:
            owners.append(name)
    return owners


def parse_nice_classes(cell: str) -> list[int]:
    return sorted({validators.nice_class(p) for p in _SPLIT_NUMBERS.split(fold(cell)) if p})


def _choice(table: dict[str, Any], code: str) -> Callable[[str], Any]:
    """A value from a closed list, in Chinese or English; BadValue(`code`) names the cell."""

    def parse(cell: str) -> Any:
        value = table.get(fold(cell).lower())
        if value is None:
            raise BadValue(code, value=cell)
        return value

    return parse


ASSET_KINDS_IN: Final[dict[str, AssetKind]] = {
    "patent": "patent",
    "专利": "patent",
    "trademark": "trademark",
    "商标": "trademark",
    "software_copyright": "software_copyright",
    "软件著作权": "software_copyright",
    "计算机软件著作权": "software_copyright",
    "软著": "software_copyright",
}
PATENT_TYPES_IN: Final[dict[str, PatentType]] = {
    "invention": "invention",
    "发明": "invention",
    "发明专利": "invention",
    "utility_model": "utility_model",
    "实用新型": "utility_model",
    "实用新型专利": "utility_model",
    "design": "design",
    "外观设计": "design",
    "外观设计专利": "design",
}
LEGAL_STATUSES_IN: Final[dict[str, LegalStatus]] = {
    "pending": "pending",
    "审中": "pending",
    "在审": "pending",
    "实质审查": "pending",
    "valid": "valid",
    "有效": "valid",
    "授权": "valid",
    "lapsed": "lapsed",
    "失效": "lapsed",
    "未缴年费终止": "lapsed",
    "终止": "lapsed",
    "invalidated": "invalidated",
    "无效": "invalidated",
    "宣告无效": "invalidated",
    "全部无效": "invalidated",
    "expired": "expired",
    "届满": "expired",
    "期限届满": "expired",
}
# Five-category loan classification (贷款风险分类): only the last three are non-performing.
NPL_CLASSES_IN: Final[dict[str, NplClass]] = {
    "substandard": "substandard",
    "次级": "substandard",
    "次级类": "substandard",
    "doubtful": "doubtful",
    "可疑": "doubtful",
    "可疑类": "doubtful",
    "loss": "loss",
    "损失": "loss",
    "损失类": "loss",
}


# The first two classes are performing loans: no NPL class to give.
PERFORMING_CLASSES: Final = frozenset(
    {"正常", "关注", "正常类", "关注类", "normal", "special mention"}
)


def parse_npl_class(cell: str) -> NplClass:
    value = NPL_CLASSES_IN.get(fold(cell).lower())
    if value is None:
        if fold(cell).lower() in PERFORMING_CLASSES:
            raise BadValue("csv_npl_class_performing", value=cell)
        raise BadValue("csv_npl_class_unknown", value=cell)
    return value


def parse_credit_code(cell: str) -> str:
    return validators.credit_code(cell)


# --- the columns -----------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    key: str  # English header and the name used everywhere in code
    header: str  # Chinese header
    required: bool  # the header must be present and every row must fill it
    parse: Callable[[str], Any]
    group: Group  # "pledge": repeats on every row of a pledge and must agree


def _c(key: str, header: str, parse: Callable[[str], Any], *, required: bool = False) -> Column:
    group: Group = "asset" if key in _ASSET_KEYS else "pledge"
    return Column(key, header, required, parse, group)


_ASSET_KEYS: Final = frozenset(
    {
        "asset_kind",
        "asset_number",
        "title",
        "abstract",
        "patent_type",
        "filing_date",
        "ipc_codes",
        "owners",
        "legal_status",
        "annuity_paid_through",
        "nice_classes",
        "valid_until",
        "registered_on",
        "licences",
        "encumbrances",
    }
)

COLUMNS: Final[tuple[Column, ...]] = (
    _c("pledge_registration_no", "质押登记号", code(60), required=True),
    _c("pledge_registered_on", "质押登记日", parse_date),
    _c("secured_amount", "担保债权金额(元)", parse_amount, required=True),
    _c("pledgor_name", "出质人", text(200), required=True),
    _c("pledgor_credit_code", "出质人统一社会信用代码", parse_credit_code, required=True),
    _c("pledgor_region", "出质人所在地", text(60)),
    _c("loan_no", "贷款编号", code(60), required=True),
    _c("principal", "贷款本金(元)", parse_amount, required=True),
    _c("rate", "年利率(%)", parse_rate, required=True),
    _c("outstanding_principal", "未偿本金(元)", parse_amount_or_zero, required=True),
    _c("outstanding_interest", "未偿利息(元)", parse_amount_or_zero),
    _c("disbursed_on", "放款日", parse_date),
    _c("default_date", "违约日", parse_date),
    _c("npl_class", "五级分类", parse_npl_class),
    _c("pool_code", "风险补偿资金池", code(60)),
    _c("asset_kind", "资产类型", _choice(ASSET_KINDS_IN, "csv_asset_kind_unknown"), required=True),
    # Parsed by kind in csv_import.py: a patent application number, a trademark or a
    # software copyright registration number.
    _c("asset_number", "申请号/注册号", text(40), required=True),
    _c("title", "名称", text(300), required=True),
    _c("abstract", "摘要", text(5000)),
    _c("patent_type", "专利类型", _choice(PATENT_TYPES_IN, "csv_patent_type_unknown")),
    _c("filing_date", "申请日", parse_date),
    _c("ipc_codes", "IPC分类号", parse_ipc_codes),
    _c("owners", "权利人", parse_owners),
    _c(
        "legal_status",
        "法律状态",
        _choice(LEGAL_STATUSES_IN, "csv_legal_status_unknown"),
        required=True,
    ),
    _c("annuity_paid_through", "年费缴至", parse_date),
    _c("nice_classes", "尼斯分类", parse_nice_classes),
    _c("valid_until", "有效期至", parse_date),
    _c("registered_on", "登记日", parse_date),
    _c("licences", "已有许可", text(2000)),
    _c("encumbrances", "其他权利负担", text(2000)),
)

BY_KEY: Final[dict[str, Column]] = {c.key: c for c in COLUMNS}
# Header text (either language) → column.
BY_HEADER: Final[dict[str, Column]] = {c.key: c for c in COLUMNS} | {c.header: c for c in COLUMNS}
PLEDGE_KEYS: Final[tuple[str, ...]] = tuple(c.key for c in COLUMNS if c.group == "pledge")
ASSET_KEYS: Final[tuple[str, ...]] = tuple(c.key for c in COLUMNS if c.group == "asset")
# Columns that only make sense for one kind of asset; filled for another kind is a mistake
# (usually a shifted column), so it is reported rather than silently dropped.
ONLY_FOR: Final[dict[str, AssetKind]] = {
    "patent_type": "patent",
    "filing_date": "patent",
    "ipc_codes": "patent",
    "annuity_paid_through": "patent",
    "nice_classes": "trademark",
    "valid_until": "trademark",
    "registered_on": "software_copyright",
}


# The template's example row (one patent of one pledge), valid as it stands so that a bank
# sees every column filled the way the import reads it. Uploaded unchanged it is refused
# (csv_import.validate: `csv_example_row`): it describes no real pledge.
EXAMPLE: Final[dict[str, str]] = {
    "pledge_registration_no": "Y2023990000001",
    "pledge_registered_on": "2023-05-10",
    "secured_amount": "5,000,000.00",
    "pledgor_name": "示例科技有限公司（请替换）",
    "pledgor_credit_code": "91110108MA01XM8K2" + validators._credit_check_char("91110108MA01XM8K2"),
    "pledgor_region": "北京市海淀区",
    "loan_no": "EXAMPLE-2023-0001",
    "principal": "5,000,000.00",
    "rate": "4.35",
    "outstanding_principal": "4,200,000.00",
    "outstanding_interest": "86,500.00",
    "disbursed_on": "2023-05-12",
    "default_date": "2025-06-30",
    "npl_class": "次级",
    "pool_code": "",
    "asset_kind": "专利",
    "asset_number": "202110123456.7",
    "title": "一种锂电池正极材料的制备方法（示例）",
    "abstract": "",
    "patent_type": "发明",
    "filing_date": "2021-03-15",
    "ipc_codes": "H01M 4/525",
    "owners": "示例科技有限公司（请替换）",
    "legal_status": "有效",
    "annuity_paid_through": "2026-03-15",
    "nice_classes": "",
    "valid_until": "",
    "registered_on": "",
    "licences": "",
    "encumbrances": "",
}


# What makes a row the example: its pledge, loan and asset numbers.
EXAMPLE_KEYS: Final = ("pledge_registration_no", "loan_no", "asset_number")


def example_row() -> list[str]:
    """The example row's cells, in the template's column order."""
    return [EXAMPLE[c.key] for c in COLUMNS]


def normalise_header(cell: str) -> str:
    return "".join(fold(cell.replace("\ufeff", "")).split())


def header_names(language: Literal["zh", "en"] = "zh") -> list[str]:
    """The header row of a blank template."""
    return [c.header if language == "zh" else c.key for c in COLUMNS]
