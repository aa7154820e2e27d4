"""The CSV format and row validation, without a database."""

from __future__ import annotations

from datetime import date

import pytest

from market.collateral import csv_format
from market.collateral.csv_import import Validated, decode, validate
from market.collateral.rules import add_months, patent_term_end
from tests.collateral.factories import TODAY, patent_number, portfolio_rows, to_csv

# --- the patent term rule (issue 3) ----------------------------------------------------


@pytest.mark.parametrize(
    ("patent_type", "filed", "last_day"),
    [
        ("invention", date(2023, 3, 15), date(2043, 3, 14)),
        ("utility_model", date(2019, 7, 1), date(2029, 6, 30)),
        ("design", date(2021, 5, 31), date(2031, 5, 30)),  # before the 2021 amendment: 10 y
        ("design", date(2021, 6, 1), date(2036, 5, 31)),  # from 2021-06-01: 15 y
        ("invention", date(2020, 2, 29), date(2040, 2, 28)),  # leap day, leap anniversary
        ("utility_model", date(2020, 2, 29), date(2030, 2, 28)),  # no 29 Feb in 2030
        ("invention", date(2004, 1, 1), date(2023, 12, 31)),
    ],
)
def test_patent_term_end(patent_type: str, filed: date, last_day: date) -> None:
    assert patent_term_end(patent_type, filed) == last_day  # type: ignore[arg-type]


def test_add_months_clamps_to_month_end() -> None:
    assert add_months(date(2025, 8, 31), 6) == date(2026, 2, 28)
    assert add_months(date(2025, 12, 15), 1) == date(2026, 1, 15)


# --- column parsers --------------------------------------------------------------------


def test_every_column_has_two_distinct_headers() -> None:
    keys = [c.key for c in csv_format.COLUMNS]
    headers = [c.header for c in csv_format.COLUMNS]
    assert len(set(keys)) == len(keys) and len(set(headers)) == len(headers)
    assert not set(keys) & set(headers)
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in h) for h in headers)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("2023-05-01", date(2023, 5, 1)),
        ("2023/5/1", date(2023, 5, 1)),
        ("2023.05.01", date(2023, 5, 1)),
        ("2023年5月1日", date(2023, 5, 1)),
        ("２０２３-０５-０１", date(2023, 5, 1)),
        ("2023/5/1 0:00", date(2023, 5, 1)),
    ],
)
def test_dates_as_excel_writes_them(cell: str, expected: date) -> None:
    assert csv_format.parse_date(cell) == expected


@pytest.mark.parametrize("cell", ["2023-02-30", "01/05/2023", "20230501", "1900-01-01"])
def test_bad_dates(cell: str) -> None:
    with pytest.raises(ValueError):
        csv_format.parse_date(cell)


def test_rate_in_percent_becomes_basis_points() -> None:
    assert csv_format.parse_rate("4.35") == 435
    assert csv_format.parse_rate("4.35%") == 435
    assert csv_format.parse_rate("3.850") == 385
    for bad in ("4.355", "abc", "101", "-1", "NaN"):
        with pytest.raises(ValueError):
            csv_format.parse_rate(bad)


def test_npl_classes_in_chinese_or_english() -> None:
    assert csv_format.parse_npl_class("次级") == "substandard"
    assert csv_format.parse_npl_class("可疑类") == "doubtful"
    assert csv_format.parse_npl_class("LOSS") == "loss"
    with pytest.raises(ValueError, match="performing"):
        csv_format.parse_npl_class("关注")


def test_lists() -> None:
    assert csv_format.parse_ipc_codes("g06f16/245；H04L 9/32;G06F 16/245") == [
        "G06F 16/245",
        "H04L 9/32",
    ]
    assert csv_format.parse_owners("甲公司；乙大学、甲公司") == ["甲公司", "乙大学"]
    assert csv_format.parse_nice_classes("42;9，9") == [9, 42]
    with pytest.raises(ValueError):
        csv_format.parse_nice_classes("46")


def test_header_normalisation() -> None:
    assert csv_format.normalise_header("\ufeff 担保债权金额（元） ") == "担保债权金额(元)"
    assert csv_format.BY_HEADER[csv_format.normalise_header("年利率（%）")].key == "rate"


# --- decoding --------------------------------------------------------------------------


def test_decoding_order() -> None:
    text = "质押登记号\r\n"
    assert decode(text.encode("utf-8")) == (text, "utf-8")
    assert decode(b"\xef\xbb\xbf" + text.encode("utf-8")) == (text, "utf-8-sig")
    assert decode(text.encode("gb18030")) == (text, "gb18030")


# --- whole-file validation -------------------------------------------------------------


async def _check(data: bytes) -> Validated:
    return await validate(data, today=TODAY)


def _reasons(result: Validated) -> list[tuple[int, str, str]]:
    return [(e.line, e.key, e.reason) for e in result.errors]


async def test_generated_portfolio_is_valid_in_every_encoding() -> None:
    rows = portfolio_rows(300)
    for headers, encoding in (("en", "utf-8"), ("zh", "utf-8-sig"), ("zh", "gb18030")):
        result = await _check(to_csv(rows, headers=headers, encoding=encoding))
        assert result.error_count == 0, result.errors[:3]
        assert result.total_rows == 300 and len(result.rows) == 300
        assert result.encoding == encoding


async def test_neither_utf8_nor_gb18030() -> None:
    result = await _check(b"pledge_registration_no\r\n\x80\xff\xfe\x81")
    assert result.error_count == 1
    assert result.errors[0].reason == (
        "文件既不是 UTF-8 也不是 GB18030 编码 / file is neither UTF-8 nor GB18030"
    )


async def test_utf16_is_named() -> None:
    result = await _check("质押登记号".encode("utf-16"))
    assert "UTF-16" in result.errors[0].reason


async def test_unknown_and_missing_columns_are_reported_on_line_1() -> None:
    rows = portfolio_rows(3)
    data = to_csv(rows).replace(b"pledgor_credit_code", b"pledgor_creditcode", 1)
    result = await _check(data)
    found = _reasons(result)
    assert (
        1,
        "",
        "unknown column 'pledgor_creditcode'; did you mean 'pledgor_credit_code'?",
    ) in found
    assert any(
        line == 1 and key == "pledgor_credit_code" and "missing" in r for line, key, r in found
    )


async def test_bad_check_digit_names_line_column_and_reason() -> None:
    rows = portfolio_rows(20)
    good = rows[9]["asset_number"]
    rows[9] = rows[9] | {
        "asset_kind": "专利",
        "asset_number": good[:-1] + ("0" if good[-1] != "0" else "1"),
    }
    result = await _check(to_csv(rows, headers="zh"))
    assert result.error_count == 1
    error = result.errors[0]
    assert (error.line, error.column, error.key) == (11, "申请号/注册号", "asset_number")
    assert "check character should be" in error.reason


async def test_rows_of_one_pledge_must_agree() -> None:
    rows = portfolio_rows(30, max_assets=4)
    reg = next(
        r["pledge_registration_no"]
        for i, r in enumerate(rows[1:])
        if r["pledge_registration_no"] == rows[i]["pledge_registration_no"]
    )
    lines = [i + 2 for i, r in enumerate(rows) if r["pledge_registration_no"] == reg]
    second = lines[1] - 2
    rows[second] = rows[second] | {"secured_amount": "1", "loan_no": "OTHER-LOAN"}
    result = await _check(to_csv(rows))
    assert {(e.line, e.key) for e in result.errors} == {
        (lines[1], "secured_amount"),
        (lines[1], "loan_no"),
    }
    assert f"differs from line {lines[0]} of the same pledge {reg}" in result.errors[0].reason


async def test_same_amount_written_two_ways_agrees() -> None:
    rows = portfolio_rows(30)
    first = rows[0]
    twin = next(
        i
        for i, r in enumerate(rows)
        if i and r["pledge_registration_no"] == first["pledge_registration_no"]
    )
    rows[twin] = rows[twin] | {"secured_amount": first["secured_amount"].replace(",", "") + ".00"}
    assert (await _check(to_csv(rows))).error_count == 0


async def test_patent_rules() -> None:
    rows = portfolio_rows(6, max_assets=1)
    patents = [i for i, r in enumerate(rows) if r["asset_kind"] == "专利"]
    a, b, c = patents[:3]
    design = patent_number(2022, 3, 4242)
    rows[a] = rows[a] | {"patent_type": "外观设计"}  # number says invention / utility model
    rows[b] = rows[b] | {"filing_date": "2011-03-01"}  # number's year differs
    rows[c] = rows[c] | {"asset_number": design, "filing_date": "2022-04-01", "patent_type": ""}
    result = await _check(to_csv(rows))
    found = {(line, key): reason for line, key, reason in _reasons(result)}
    assert "type digit" in found[(a + 2, "patent_type")]
    assert "filed in 2011" in found[(b + 2, "filing_date")]
    assert "Locarno" in found[(c + 2, "ipc_codes")]


async def test_kind_specific_columns_and_scientific_notation() -> None:
    rows = portfolio_rows(4, max_assets=1)
    rows[0] = rows[0] | {
        "asset_kind": "商标",
        "asset_number": "12345678",
        "nice_classes": "",
        "valid_until": "2030-01-01",
        "filing_date": "",
        "ipc_codes": "",
        "annuity_paid_through": "2026-06-01",
        "patent_type": "",
        "abstract": "",
    }
    rows[1] = rows[1] | {"asset_number": "2.02310E+11"}
    result = await _check(to_csv(rows))
    found = {(line, key): reason for line, key, reason in _reasons(result)}
    assert "required for a trademark" in found[(2, "nice_classes")]
    assert "applies to patents only" in found[(2, "annuity_paid_through")]
    assert "scientific notation" in found[(3, "asset_number")]


async def test_blank_rows_are_skipped_and_extra_cells_reported() -> None:
    rows = portfolio_rows(3)
    data = to_csv(rows).decode()
    lines = data.split("\r\n")
    lines.insert(2, "," * (len(csv_format.COLUMNS) - 1))  # a blank row Excel left behind
    lines[3] += ",stray"
    result = await _check("\r\n".join(lines).encode())
    assert result.total_rows == 3
    assert _reasons(result) == [
        (4, "", f"cell {len(csv_format.COLUMNS) + 1} has a value but its column has no header")
    ]


async def test_future_dates_and_impossible_loans() -> None:
    rows = portfolio_rows(2, max_assets=1)
    rows[0] = rows[0] | {"disbursed_on": "2026-02-01"}
    rows[1] = rows[1] | {"outstanding_principal": "999,999,999"}
    found = {(line, key) for line, key, _ in _reasons(await _check(to_csv(rows)))}
    assert (2, "disbursed_on") in found and (3, "outstanding_principal") in found


async def test_errors_are_capped_but_counted() -> None:
    rows = [r | {"pledgor_credit_code": "bad"} for r in portfolio_rows(250, max_assets=1)]
    result = await _check(to_csv(rows))
    assert result.error_count == 250 and len(result.errors) == 200
    assert [e.line for e in result.errors] == list(range(2, 202))


async def test_asset_in_two_pledges_must_agree_and_loan_belongs_to_one_pledge() -> None:
    rows = portfolio_rows(40, max_assets=1)
    rows[5] = rows[5] | {k: rows[2][k] for k in csv_format.ASSET_KEYS} | {"title": "另一个名称"}
    rows[7] = rows[7] | {"loan_no": rows[6]["loan_no"]}
    found = {(line, key): reason for line, key, reason in _reasons(await _check(to_csv(rows)))}
    assert "differs from line 4 of asset" in found[(7, "title")]
    assert "already secured by pledge" in found[(9, "loan_no")]


async def test_semicolon_separated_file_is_named() -> None:
    data = to_csv(portfolio_rows(2)).decode().replace(",", ";").encode()
    result = await _check(data)
    assert _reasons(result) == [(1, "", "columns must be separated by commas; this file uses ';'")]
