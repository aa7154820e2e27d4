"""Tests for market.validators.

Check characters are computed here by a separate, deliberately plain
implementation of each standard's formula (explicit weight tables, no shared
code), so a mistake in the module is not mirrored by the test.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from market import i18n
from market import validators as v
from market.errors import BadValue


def refusal(validator: Callable[[Any], object], raw: Any) -> BadValue:
    """The BadValue `validator` raises for `raw`, its words checked in both languages:
    the text exists and names every parameter the error carries."""
    with pytest.raises(BadValue) as refused:
        validator(raw)
    error = refused.value
    for lang in i18n.LANGS:
        text = i18n.catalog(lang)[f"problem.{error.code}"]
        for name in error.params:
            assert f"%({name})s" in text, (lang, error.code, name)
        assert "%(" not in i18n.gettext(lang, f"problem.{error.code}", **error.params)
    return error


def test_every_code_has_its_words() -> None:
    source = Path(v.__file__).read_text(encoding="utf-8")
    codes = re.findall(r'BadValue\(\s*"([a-z][a-z0-9_]*)"', source)
    # Every raise names its code literally, so the scan sees them all.
    assert len(codes) == source.count("raise BadValue(")
    assert len(codes) > 40
    for code in codes:
        assert i18n.has(f"problem.{code}"), code
        for lang in i18n.LANGS:
            assert f"problem.{code}" in i18n.catalog(lang), (lang, code)


# --- independent reference implementations ---------------------------------

# GB 32100-2015: 31 symbols, value = index; weights 3^(i-1) mod 31, written out.
CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]


def ref_credit_check(body17: str) -> str:
    total = 0
    for i in range(17):
        total += CHARSET.index(body17[i]) * CREDIT_WEIGHTS[i]
    c = 31 - total % 31
    if c == 31:
        c = 0
    return CHARSET[c]


# ZC 0006-2003: weights 2..9,2..5; remainder mod 11 is the check, 10 -> X.
PATENT_WEIGHTS = [2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5]


def ref_patent_check(digits: str) -> str:
    total = 0
    for i, d in enumerate(digits):
        total += int(d) * PATENT_WEIGHTS[i]
    r = total % 11
    return "X" if r == 10 else str(r)


def test_reference_weights_are_the_standard_ones() -> None:
    assert [3**i % 31 for i in range(17)] == CREDIT_WEIGHTS


# --- credit_code --------------------------------------------------------------

# Published codes, each checked by hand against the GB 32100-2015 formula
# (and by ref_credit_check below) before being pinned here.
PUBLISHED_CREDIT_CODES = [
    "91350100M000100Y43",  # the worked example in GB 32100-2015
    "914403001922038216",  # Huawei Technologies Co., Ltd.
    "91440300708461136T",  # Tencent Technology (Shenzhen) Co., Ltd.
]


@pytest.mark.parametrize("code", PUBLISHED_CREDIT_CODES)
def test_published_credit_codes(code: str) -> None:
    assert ref_credit_check(code[:17]) == code[17]
    assert v.credit_code(code) == code


def test_credit_code_normalises_case_spaces_full_width() -> None:
    assert v.credit_code("  91440300708461136t ") == "91440300708461136T"
    assert v.credit_code("９１４４０３００７０８４６１１３６Ｔ") == "91440300708461136T"


@pytest.mark.parametrize(
    ("code", "error", "params"),
    [
        ("91350100M000100Y4", "credit_code_length", {"length": 17}),
        ("91350100M000100Y433", "credit_code_length", {"length": 19}),
        ("", "credit_code_length", {"length": 0}),
        ("91350100M000100Y44", "credit_code_check_char", {"expected": "3", "char": "4"}),
        ("91440300708461136X", "credit_code_check_char", {"expected": "T", "char": "X"}),
        ("91350100I000100Y43", "credit_code_excluded_letter", {"position": 9, "char": "I"}),
        ("91350100O000100Y43", "credit_code_excluded_letter", {"position": 9, "char": "O"}),
        ("91350100S000100Y43", "credit_code_excluded_letter", {"position": 9, "char": "S"}),
        ("91350100V000100Y43", "credit_code_excluded_letter", {"position": 9, "char": "V"}),
        ("91350100Z000100Y43", "credit_code_excluded_letter", {"position": 9, "char": "Z"}),
        ("91350100-000100Y43", "credit_code_bad_char", {"position": 9, "char": "-"}),
        ("913A0100M000100Y43", "credit_code_region_digits", {"position": 4, "char": "A"}),
    ],
)
def test_credit_code_invalid(code: str, error: str, params: dict[str, object]) -> None:
    refused = refusal(v.credit_code, code)
    assert refused.code == error and refused.params == params


def test_forbidden_letter_message_names_the_rule() -> None:
    refused = refusal(v.credit_code, "9135010OM000100Y43")
    assert refused.code == "credit_code_excluded_letter"
    assert refused.params == {"position": 8, "char": "O"}
    assert "I, O, S, V and Z" in i18n.gettext(
        "en", "problem.credit_code_excluded_letter", **refused.params
    )
    assert "I、O、S、V、Z" in i18n.gettext(
        "zh", "problem.credit_code_excluded_letter", **refused.params
    )


credit_char = st.sampled_from(CHARSET)
digit = st.sampled_from("0123456789")


@st.composite
def credit_bodies(draw: st.DrawFn) -> str:
    head = draw(credit_char) + draw(credit_char)
    region = "".join(draw(digit) for _ in range(6))
    org = "".join(draw(credit_char) for _ in range(9))
    return head + region + org


@given(credit_bodies())
def test_generated_credit_codes_are_valid(body: str) -> None:
    code = body + ref_credit_check(body)
    assert v.credit_code(code) == code
    assert v.credit_code(code.lower()) == code


@given(credit_bodies(), st.integers(0, 16), st.integers(1, 30))
def test_any_single_substitution_is_detected(body: str, pos: int, shift: int) -> None:
    # 31 is prime and no weight is 0 mod 31, so changing one character by a
    # value difference d (0 < |d| < 31) changes the sum by d*W_i != 0 mod 31:
    # the check character no longer fits.  Stay inside the character set (and
    # digits in positions 3-8) so only the check can catch it.
    code = body + ref_credit_check(body)
    if 2 <= pos <= 7:
        new = str((int(code[pos]) + shift) % 10)
        if new == code[pos]:
            new = str((int(code[pos]) + 1) % 10)
    else:
        new = CHARSET[(CHARSET.index(code[pos]) + shift) % 31]
    mutated = code[:pos] + new + code[pos + 1 :]
    assert mutated != code
    with pytest.raises(BadValue) as refused:
        v.credit_code(mutated)
    assert refused.value.code == "credit_code_check_char"


@given(credit_bodies(), st.sampled_from(CHARSET))
def test_wrong_check_character_is_detected(body: str, check: str) -> None:
    expected = ref_credit_check(body)
    if check == expected:
        assert v.credit_code(body + check) == body + check
    else:
        with pytest.raises(BadValue) as refused:
            v.credit_code(body + check)
        assert refused.value.code == "credit_code_check_char"
        assert refused.value.params == {"expected": expected, "char": check}


@given(credit_bodies(), st.integers(8, 15))
def test_adjacent_transposition_is_detected(body: str, pos: int) -> None:
    # W_{i+1} = 3 W_i, so swapping c_i and c_{i+1} changes the sum by
    # (a - b)(W_i - W_{i+1}) = -2 W_i (a - b), never 0 mod 31 for a != b.
    code = body + ref_credit_check(body)
    if code[pos] == code[pos + 1]:
        return
    swapped = code[:pos] + code[pos + 1] + code[pos] + code[pos + 2 :]
    with pytest.raises(BadValue) as refused:
        v.credit_code(swapped)
    assert refused.value.code == "credit_code_check_char"


# --- patent_application_number ----------------------------------------------

# Published application numbers, verified against ZC 0006-2003 by hand.
PUBLISHED_PATENTS = [
    ("201911050262.8", "201911050262.8"),  # published as CN 110823978 A
    ("202011167667.2", "202011167667.2"),  # granted as CN 112415790 B
    ("200310102344.5", "200310102344.5"),  # example from ZC 0006-2003
    ("ZL 99 1 14725.1", "99114725.1"),  # pre-2003 form as printed on a grant
]


@pytest.mark.parametrize(("raw", "normalised"), PUBLISHED_PATENTS)
def test_published_patent_numbers(raw: str, normalised: str) -> None:
    body, check = normalised.split(".")
    assert ref_patent_check(body) == check
    assert v.patent_application_number(raw) == normalised


@pytest.mark.parametrize(
    "raw",
    [
        "201911050262.8",
        "CN201911050262.8",
        "ZL201911050262.8",
        "zl 2019 1 1050262.8",
        "2019110502628",
        "CN 2019110502628",
        "２０１９１１０５０２６２．８",
    ],
)
def test_patent_number_forms(raw: str) -> None:
    assert v.patent_application_number(raw) == "201911050262.8"


def test_patent_check_x_accepted_in_either_case() -> None:
    body = next(
        f"2021100{n:05d}" for n in range(100000) if ref_patent_check(f"2021100{n:05d}") == "X"
    )
    assert v.patent_application_number(body + ".x") == body + ".X"
    assert v.patent_application_number(body + "X") == body + ".X"


@pytest.mark.parametrize(
    ("raw", "error", "params"),
    [
        ("201911050262.9", "patent_number_check_char", {"expected": "8", "char": "9"}),
        ("99114725.2", "patent_number_check_char", {"expected": "1", "char": "2"}),
        ("201911050262", "patent_number_check_missing", {}),
        ("20191105026.8", "patent_number_length", {"length": 11}),
        ("201941050262.8", "patent_number_type", {"digit": "4"}),
        ("201951050262.8", "patent_number_type", {"digit": "5"}),
        ("199911050262.8", "patent_number_year", {"year": "1999"}),
        ("04114725.1", "patent_number_old_year", {"year": "04"}),
        ("201911050262.A", "patent_number_check_form", {"char": "A"}),
        ("2019110502.62.8", "patent_number_many_dots", {}),
        ("201911050262.88", "patent_number_check_after_dot", {}),
        ("2019A1050262.8", "patent_number_not_digits", {}),
        ("CN", "patent_number_empty", {}),
    ],
)
def test_patent_number_invalid(raw: str, error: str, params: dict[str, object]) -> None:
    refused = refusal(v.patent_application_number, raw)
    assert refused.code == error and refused.params == params


@pytest.mark.parametrize(
    ("number", "kind", "year"),
    [
        ("201911050262.8", "invention", 2019),
        ("99114725.1", "invention", 1999),
    ],
)
def test_type_and_year_of_published(number: str, kind: str, year: int) -> None:
    assert v.patent_type_code(number) == kind
    assert v.application_year(number) == year


def _with_check(body: str) -> str:
    return f"{body}.{ref_patent_check(body)}"


@pytest.mark.parametrize(
    ("type_digit", "kind"),
    [
        ("1", "invention"),
        ("2", "utility_model"),
        ("3", "design"),
        ("8", "invention"),
        ("9", "utility_model"),
    ],
)
def test_patent_type_codes(type_digit: str, kind: str) -> None:
    assert v.patent_type_code(_with_check(f"2020{type_digit}0000001")) == kind
    assert v.patent_type_code(_with_check(f"02{type_digit}00001")) == kind


@pytest.mark.parametrize(("yy", "year"), [("85", 1985), ("99", 1999), ("00", 2000), ("03", 2003)])
def test_old_form_years(yy: str, year: int) -> None:
    assert v.application_year(_with_check(f"{yy}100001")) == year


@st.composite
def new_patent_bodies(draw: st.DrawFn) -> str:
    year = draw(st.integers(2003, 2099))
    kind = draw(st.sampled_from("12389"))
    serial = draw(st.integers(0, 9_999_999))
    return f"{year}{kind}{serial:07d}"


@given(new_patent_bodies())
def test_generated_patent_numbers_are_valid(body: str) -> None:
    check = ref_patent_check(body)
    assert v.patent_application_number(body + check) == f"{body}.{check}"
    assert v.application_year(body + check) == int(body[:4])


@given(new_patent_bodies(), st.integers(5, 11), st.integers(1, 9))
def test_patent_single_digit_substitution_is_detected(body: str, pos: int, shift: int) -> None:
    # 11 is prime, no weight is 0 mod 11 and digits differ by less than 11.
    # Positions 5-11 are the serial, so the year and type stay valid.
    new = str((int(body[pos]) + shift) % 10)
    mutated = body[:pos] + new + body[pos + 1 :]
    with pytest.raises(BadValue) as refused:
        v.patent_application_number(f"{mutated}.{ref_patent_check(body)}")
    assert refused.value.code == "patent_number_check_char"


# --- IPC ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("G06F 16/245", "G06F 16/245"),
        ("G06F16/245", "G06F 16/245"),
        ("g06f  16 / 245", "G06F 16/245"),
        ("H01L21/02", "H01L 21/02"),
        ("A61K 31/00", "A61K 31/00"),
        ("G06F 16", "G06F 16/00"),
        ("G06F16/00", "G06F 16/00"),
        ("G06F 016/245", "G06F 16/245"),
        ("C07D 487/04", "C07D 487/04"),
        ("B01D 1/123456", "B01D 1/123456"),
        ("Ｇ０６Ｆ １６／２４５", "G06F 16/245"),
    ],
)
def test_ipc_code_valid(raw: str, canonical: str) -> None:
    assert v.ipc_code(raw) == canonical
    assert v.ipc_code(canonical) == canonical


@pytest.mark.parametrize(
    ("raw", "error", "params"),
    [
        ("J06F 16/245", "ipc_section_letter", {"section": "J"}),
        ("606F 16/245", "ipc_section_letter", {"section": "6"}),
        ("G6F 16/245", "ipc_class_digits", {}),
        ("G06 16/245", "ipc_subclass_letter", {}),
        ("G06F 16/2", "ipc_subgroup_length", {"subgroup": "2"}),
        ("G06F 16/1234567", "ipc_subgroup_length", {"subgroup": "1234567"}),
        ("G06F 12345/00", "ipc_main_group_length", {"group": "12345"}),
        ("G06F /00", "ipc_main_group_missing", {}),
        ("G06F", "ipc_needs_main_group", {}),
        ("G", "ipc_needs_main_group", {}),
        ("", "ipc_empty", {}),
        ("G06F 16/245 (2019.01)", "ipc_not_symbol", {"text": "G06F 16/245 (2019.01)"}),
    ],
)
def test_ipc_code_invalid(raw: str, error: str, params: dict[str, object]) -> None:
    refused = refusal(v.ipc_code, raw)
    assert refused.code == error and refused.params == params


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("G", "G"),
        ("g06", "G06"),
        ("G06F", "G06F"),
        ("G06F 16", "G06F16/"),
        ("G06F16/00", "G06F16/00"),
        ("G06F 16/245", "G06F16/245"),
    ],
)
def test_ipc_prefix(raw: str, key: str) -> None:
    assert v.ipc_prefix(raw) == key


def test_ipc_prefix_keys_nest() -> None:
    stored = v.ipc_prefix(v.ipc_code("G06F 16/245"))
    for query in ("G", "G06", "G06F", "G06F 16", "G06F 16/24", "G06F 16/245"):
        assert stored.startswith(v.ipc_prefix(query)), query
    # The main-group key ends with '/' so group 16 does not match group 161.
    assert not v.ipc_prefix(v.ipc_code("G06F 161/00")).startswith(v.ipc_prefix("G06F 16"))


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("K", "ipc_section_letter"),
        ("G6", "ipc_class_digits"),
        ("G06 16", "ipc_subclass_letter"),
        ("G061", "ipc_subclass_letter"),
    ],
)
def test_ipc_prefix_invalid(raw: str, error: str) -> None:
    assert refusal(v.ipc_prefix, raw).code == error


# --- trademarks --------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "number"), [("1", "1"), (" 12345678 ", "12345678"), ("999999999", "999999999")]
)
def test_trademark_number_valid(raw: str, number: str) -> None:
    assert v.trademark_registration_number(raw) == number


@pytest.mark.parametrize(
    ("raw", "error", "params"),
    [
        ("", "trademark_number_empty", {}),
        ("0123", "trademark_number_leading_zero", {}),
        ("1234567890", "trademark_number_length", {"length": 10, "max": 9}),
        ("12A45", "trademark_number_digits", {}),
        ("12 345", "trademark_number_digits", {}),
        ("²", "trademark_number_digits", {}),
    ],
)
def test_trademark_number_invalid(raw: str, error: str, params: dict[str, object]) -> None:
    refused = refusal(v.trademark_registration_number, raw)
    assert refused.code == error and refused.params == params


@pytest.mark.parametrize(("raw", "n"), [(1, 1), (45, 45), ("9", 9), (" 09 ", 9), ("３５", 35)])
def test_nice_class_valid(raw: int | str, n: int) -> None:
    assert v.nice_class(raw) == n


@pytest.mark.parametrize(
    ("raw", "error", "shown"),
    [
        (0, "nice_class_range", {"value": 0}),
        (46, "nice_class_range", {"value": 46}),
        (-1, "nice_class_range", {"value": -1}),
        ("0", "nice_class_range", {"value": 0}),
        ("46", "nice_class_range", {"value": 46}),
        ("", "nice_class_not_digits", {"text": ""}),
        ("nine", "nice_class_not_digits", {"text": "nine"}),
        ("9.5", "nice_class_not_digits", {"text": "9.5"}),
        (True, "nice_class_not_a_number", {}),
    ],
)
def test_nice_class_invalid(raw: int | str, error: str, shown: dict[str, object]) -> None:
    refused = refusal(v.nice_class, raw)
    assert refused.code == error and refused.params == {"min": 1, "max": 45, **shown}


# --- software copyright -----------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "number"),
    [
        ("2019SR0123456", "2019SR0123456"),
        ("2010sr012345", "2010SR012345"),
        (" 2019 SR 0123456 ", "2019SR0123456"),
        ("软著登字第2019SR0123456号", "2019SR0123456"),
    ],
)
def test_software_copyright_valid(raw: str, number: str) -> None:
    assert v.software_copyright_registration_number(raw) == number


@pytest.mark.parametrize(
    ("raw", "error", "params"),
    [
        ("", "software_number_empty", {}),
        ("2019SR01234", "software_number_form", {}),
        ("2019SR01234567", "software_number_form", {}),
        ("19SR0123456", "software_number_form", {}),
        ("2019RS0123456", "software_number_form", {}),
        ("3019SR0123456", "software_number_year", {"year": "3019"}),
    ],
)
def test_software_copyright_invalid(raw: str, error: str, params: dict[str, object]) -> None:
    refused = refusal(v.software_copyright_registration_number, raw)
    assert refused.code == error and refused.params == params


# --- email -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "address"),
    [
        ("Zhang.San@Example.COM", "Zhang.San@example.com"),
        ("  a@b.cn ", "a@b.cn"),
        ("ip+auction@bank.example.com.cn", "ip+auction@bank.example.com.cn"),
    ],
)
def test_email_valid(raw: str, address: str) -> None:
    assert v.email(raw) == address


@pytest.mark.parametrize(
    ("raw", "error", "params"),
    [
        ("", "email_empty", {}),
        ("zhang", "email_at_count", {}),
        ("a@b@c.cn", "email_at_count", {}),
        ("a b@c.cn", "email_spaces", {}),
        ("@example.com", "email_local_missing", {}),
        ("a@", "email_domain_missing", {}),
        ("a@localhost", "email_domain_no_dot", {"domain": "localhost"}),
        ("a@example..com", "email_domain_empty_label", {"domain": "example..com"}),
        ("a@.example.com", "email_domain_empty_label", {"domain": ".example.com"}),
        ("a@example.com.", "email_domain_empty_label", {"domain": "example.com."}),
        ("a\x00@example.com", "email_control_char", {}),
        ("a" * 65 + "@example.com", "email_local_too_long", {"max": 64}),
        ("a@" + "b" * 250 + ".cn", "email_too_long", {"max": 254}),
    ],
)
def test_email_invalid(raw: str, error: str, params: dict[str, object]) -> None:
    refused = refusal(v.email, raw)
    assert refused.code == error and refused.params == params
