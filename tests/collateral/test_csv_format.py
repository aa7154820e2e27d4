"""The CSV format and row validation, without a database."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from market import i18n, problems
from market.collateral import csv_format
from market.collateral.csv_import import Undecodable, Validated, decode, validate
from market.collateral.rules import add_months, patent_term_end
from market.errors import BadValue
from tests.collateral.factories import TODAY, patent_number, portfolio_rows, to_csv

# --- the patent term rule (专利法 art. 42) ---------------------------------------------


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


@pytest.mark.parametrize(
    ("cell", "code", "params"),
    [
        ("2023-02-30", "csv_not_a_calendar_date", {"value": "2023-02-30"}),
        ("01/05/2023", "csv_not_a_date", {"value": "01/05/2023"}),
        ("20230501", "csv_not_a_date", {"value": "20230501"}),
        (
            "1900-01-01",
            "csv_date_out_of_range",
            {"value": "1900-01-01", "earliest": 1985, "latest": 2100},
        ),
    ],
)
def test_bad_dates(cell: str, code: str, params: dict[str, object]) -> None:
    with pytest.raises(BadValue) as bad:
        csv_format.parse_date(cell)
    assert (bad.value.code, bad.value.params) == (code, params)


def test_a_bad_date_reads_in_either_language() -> None:
    zh = problems.describe("zh", "csv_not_a_date", {"value": "01/05/2023"})
    en = problems.describe("en", "csv_not_a_date", {"value": "01/05/2023"})
    assert zh == "「01/05/2023」不是日期；请写作 YYYY-MM-DD，例如 2023-05-01。"
    assert en == "'01/05/2023' is not a date; write YYYY-MM-DD, e.g. 2023-05-01."


def test_rate_in_percent_becomes_basis_points() -> None:
    assert csv_format.parse_rate("4.35") == 435
    assert csv_format.parse_rate("4.35%") == 435
    assert csv_format.parse_rate("3.850") == 385
    for bad, code in (
        ("4.355", "csv_rate_too_precise"),
        ("abc", "csv_rate_not_percent"),
        ("101", "csv_rate_out_of_range"),
        ("-1", "csv_rate_out_of_range"),
        ("NaN", "csv_rate_not_percent"),
    ):
        with pytest.raises(BadValue) as refused:
            csv_format.parse_rate(bad)
        assert refused.value.code == code, bad
    assert problems.describe("zh", "csv_rate_out_of_range", {"max": 100}) == (
        "年利率须在 0 至 100% 之间。"
    )


def test_npl_classes_in_chinese_or_english() -> None:
    assert csv_format.parse_npl_class("次级") == "substandard"
    assert csv_format.parse_npl_class("可疑类") == "doubtful"
    assert csv_format.parse_npl_class("LOSS") == "loss"
    with pytest.raises(BadValue) as performing:
        csv_format.parse_npl_class("关注")
    assert (performing.value.code, performing.value.params) == (
        "csv_npl_class_performing",
        {"value": "关注"},
    )
    with pytest.raises(BadValue) as unknown:
        csv_format.parse_npl_class("坏账")
    assert unknown.value.code == "csv_npl_class_unknown"


def test_lists() -> None:
    assert csv_format.parse_ipc_codes("g06f16/245；H04L 9/32;G06F 16/245") == [
        "G06F 16/245",
        "H04L 9/32",
    ]
    assert csv_format.parse_owners("甲公司；乙大学、甲公司") == ["甲公司", "乙大学"]
    assert csv_format.parse_nice_classes("42;9，9") == [9, 42]
    with pytest.raises(BadValue) as refused:
        csv_format.parse_nice_classes("46")
    assert refused.value.code == "nice_class_range"
    with pytest.raises(BadValue) as long_name:
        csv_format.parse_owners("甲" * 201)
    assert (long_name.value.code, long_name.value.params) == ("csv_owner_too_long", {"max": 200})


def test_header_normalisation() -> None:
    assert csv_format.normalise_header("\ufeff 担保债权金额（元） ") == "担保债权金额(元)"
    assert csv_format.BY_HEADER[csv_format.normalise_header("年利率（%）")].key == "rate"


# --- decoding --------------------------------------------------------------------------


def test_decoding_order() -> None:
    text = "质押登记号\r\n"
    assert decode(text.encode("utf-8")) == (text, "utf-8")
    assert decode(b"\xef\xbb\xbf" + text.encode("utf-8")) == (text, "utf-8-sig")
    assert decode(text.encode("gb18030")) == (text, "gb18030")
    for data, code in (
        (text.encode("utf-16"), "csv_utf16"),
        (b"\xef\xbb\xbf\xff\xfe", "csv_bom_not_utf8"),
        (b"\x80\xff\xfe\x81", "csv_not_utf8_or_gb18030"),
    ):
        with pytest.raises(Undecodable) as bad:
            decode(data)
        assert bad.value.code == code


# --- whole-file validation -------------------------------------------------------------


async def _check(data: bytes) -> Validated:
    return await validate(data, today=TODAY)


def _found(result: Validated) -> list[tuple[int | None, str | None, str]]:
    """(line, column key, code) of each problem."""
    return [(e.line, e.field, e.code) for e in result.errors]


def _params(result: Validated) -> dict[tuple[int | None, str | None], dict[str, object]]:
    return {(e.line, e.field): e.params for e in result.errors}


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
    assert _found(result) == [(None, None, "csv_not_utf8_or_gb18030")]


async def test_utf16_is_named() -> None:
    result = await _check("质押登记号".encode("utf-16"))
    assert _found(result) == [(None, None, "csv_utf16")]
    assert "UTF-16" in problems.describe("zh", "csv_utf16")


async def test_unknown_and_missing_columns_are_reported_on_line_1() -> None:
    rows = portfolio_rows(3)
    data = to_csv(rows).replace(b"pledgor_credit_code", b"pledgor_creditcode", 1)
    result = await _check(data)
    assert _found(result) == [
        (1, None, "csv_unknown_column_suggest"),
        (1, "pledgor_credit_code", "csv_missing_column"),
    ]
    unknown, missing = (e.params for e in result.errors)
    assert unknown == {"column": "pledgor_creditcode", "suggestion": "pledgor_credit_code"}
    assert missing == {
        "column": "pledgor_credit_code",  # the file's headers are English
        "header": "出质人统一社会信用代码",
        "name": "pledgor_credit_code",
    }
    assert problems.describe("en", "csv_unknown_column_suggest", unknown) == (
        "Unknown column 'pledgor_creditcode'; did you mean 'pledgor_credit_code'?"
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
    assert (error.line, error.field, error.code) == (11, "asset_number", "patent_number_check_char")
    assert error.params["column"] == "申请号/注册号"
    assert error.params["char"] == rows[9]["asset_number"][-1]


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
    assert {(e.line, e.field, e.code) for e in result.errors} == {
        (lines[1], "secured_amount", "csv_differs_in_pledge"),
        (lines[1], "loan_no", "csv_differs_in_pledge"),
    }
    assert _params(result)[(lines[1], "loan_no")] == {
        "column": "loan_no",
        "value": "OTHER-LOAN",
        "first_line": lines[0],
        "first_value": rows[lines[0] - 2]["loan_no"],
        "pledge": reg,
    }


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
    found = {(line, key): code for line, key, code in _found(result)}
    assert found[(a + 2, "patent_type")] == "csv_patent_type_mismatch"
    assert found[(b + 2, "filing_date")] == "csv_filing_year_mismatch"
    assert found[(c + 2, "ipc_codes")] == "csv_design_has_ipc"
    mismatch = _params(result)[(a + 2, "patent_type")]
    assert mismatch["given"] == "design" and mismatch["expected"] in ("invention", "utility_model")
    year = _params(result)[(b + 2, "filing_date")]
    assert year["filed_year"] == 2011 and year["number_year"] == int(rows[b]["asset_number"][:4])
    assert problems.describe("en", "csv_filing_year_mismatch", year).startswith("Filed in 2011")


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
    found = {(line, key): code for line, key, code in _found(result)}
    assert found[(2, "nice_classes")] == "csv_trademark_needs_nice_classes"
    assert found[(2, "annuity_paid_through")] == "csv_only_for_patents"
    assert found[(3, "asset_number")] == "csv_scientific_notation"
    assert _params(result)[(3, "asset_number")] == {
        "column": "asset_number",
        "value": "2.02310E+11",
    }


async def test_blank_rows_are_skipped_and_extra_cells_reported() -> None:
    rows = portfolio_rows(3)
    data = to_csv(rows).decode()
    lines = data.split("\r\n")
    lines.insert(2, "," * (len(csv_format.COLUMNS) - 1))  # a blank row Excel left behind
    lines[3] += ",stray"
    result = await _check("\r\n".join(lines).encode())
    assert result.total_rows == 3
    assert _found(result) == [(4, None, "csv_cell_without_header")]
    assert result.errors[0].params == {"cell": len(csv_format.COLUMNS) + 1}


async def test_future_dates_and_impossible_loans() -> None:
    rows = portfolio_rows(2, max_assets=1)
    rows[0] = rows[0] | {"disbursed_on": "2026-02-01"}
    rows[1] = rows[1] | {"outstanding_principal": "999,999,999"}
    result = await _check(to_csv(rows))
    found = {(line, key): code for line, key, code in _found(result)}
    assert found[(2, "disbursed_on")] == "csv_date_after_today"
    assert _params(result)[(2, "disbursed_on")] == {
        "column": "disbursed_on",
        "date": "2026-02-01",
        "today": "2026-01-05",
    }
    assert found[(3, "outstanding_principal")] == "csv_outstanding_exceeds_principal"
    exceeds = _params(result)[(3, "outstanding_principal")]
    assert exceeds["outstanding_fen"] == 99_999_999_900
    # Amounts read as yuan, in the reader's language.
    assert problems.describe("zh", "csv_outstanding_exceeds_principal", exceeds).startswith(
        "未偿本金 ¥999,999,999.00 超过贷款本金"
    )
    assert "after today" in problems.describe(
        "en", "csv_date_after_today", _params(result)[(2, "disbursed_on")]
    )


async def test_errors_are_capped_but_counted() -> None:
    rows = [r | {"pledgor_credit_code": "bad"} for r in portfolio_rows(250, max_assets=1)]
    result = await _check(to_csv(rows))
    assert result.error_count == 250 and len(result.errors) == 200
    assert [e.line for e in result.errors] == list(range(2, 202))


async def test_asset_in_two_pledges_must_agree_and_loan_belongs_to_one_pledge() -> None:
    rows = portfolio_rows(40, max_assets=1)
    rows[5] = rows[5] | {k: rows[2][k] for k in csv_format.ASSET_KEYS} | {"title": "另一个名称"}
    rows[7] = rows[7] | {"loan_no": rows[6]["loan_no"]}
    result = await _check(to_csv(rows))
    found = {(line, key): code for line, key, code in _found(result)}
    assert found[(7, "title")] == "csv_differs_for_asset"
    assert _params(result)[(7, "title")]["first_line"] == 4
    assert found[(9, "loan_no")] == "csv_loan_in_two_pledges"
    assert _params(result)[(9, "loan_no")] == {
        "column": "loan_no",
        "loan_no": rows[6]["loan_no"],
        "pledge": rows[6]["pledge_registration_no"],
        "first_line": 8,
    }


async def test_semicolon_separated_file_is_named() -> None:
    data = to_csv(portfolio_rows(2)).decode().replace(",", ";").encode()
    result = await _check(data)
    assert _found(result) == [(1, None, "csv_wrong_separator")]
    assert result.errors[0].params == {"separator": ";"}
    tabs = await _check(to_csv(portfolio_rows(2)).decode().replace(",", "\t").encode())
    assert _found(tabs) == [(1, None, "csv_tab_separated")]


def test_every_code_the_area_raises_has_its_words_in_both_languages() -> None:
    sources = ("csv_import.py", "csv_format.py", "monitoring.py", "web.py", "api.py")
    folder = Path(csv_format.__file__).parent
    text = "".join((folder / name).read_text(encoding="utf-8") for name in sources)
    codes = set(re.findall(r'"((?:csv|monitoring_rule)_[a-z0-9_]+)"', text))
    assert len(codes) > 40, "the scan is broken"
    for code in sorted(codes):
        zh, en = (i18n.catalog(lang).get(f"problem.{code}") for lang in ("zh", "en"))
        assert zh and en and zh != en, code
