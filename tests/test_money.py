"""Tests for market.money: exact pinned results plus Hypothesis properties."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from market.errors import BadValue
from market.money import (
    MAX_FEN,
    allocate,
    allocate_capped,
    cny_capitals,
    format_cny,
    parse_cny,
    percent_of,
    round_to_nice,
)


def ref_hamilton(total: int, weights: list[int]) -> list[int]:
    """Plain largest-remainder with exact fractions; ties to the lower index."""
    w_sum = sum(weights)
    quotas = [Fraction(total * w, w_sum) for w in weights]
    shares = [q.numerator // q.denominator for q in quotas]
    left = total - sum(shares)
    # Highest fractional part first; among equals the lower index first.
    order = sorted(range(len(weights)), key=lambda i: (-(quotas[i] - shares[i]), i))
    for i in order[:left]:
        shares[i] += 1
    return shares


# --- allocate: pinned ----------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "weights", "expected"),
    [
        (100, [1, 1, 1], [34, 33, 33]),  # tie on remainder: first part wins
        (1, [1, 1], [1, 0]),
        (2, [1, 1, 1], [1, 1, 0]),
        (120_000_000, [54, 26, 16, 4], [64_800_000, 31_200_000, 19_200_000, 4_800_000]),
        (10, [0, 5, 5], [0, 5, 5]),
        (11, [0, 5, 5], [0, 6, 5]),
        (10, [1, 2], [3, 7]),  # remainders 1/3 and 2/3: the second part gets the fen
        (100, [1, 1, 4], [17, 17, 66]),  # remainders 2/3, 2/3, 2/3 -> first two
        (5, [1, 3, 1], [1, 3, 1]),
        (7, [3, 3, 1], [3, 3, 1]),
        (1, [1, 3], [0, 1]),  # largest remainder is not at index 0
        (0, [1, 2, 3], [0, 0, 0]),
        (999, [7], [999]),
    ],
)
def test_allocate_pinned(total: int, weights: list[int], expected: list[int]) -> None:
    assert allocate(total, weights) == expected
    assert ref_hamilton(total, weights) == expected


@pytest.mark.parametrize(
    ("total", "weights", "message"),
    [
        (-1, [1, 1], "negative amount"),
        (100, [0, 0], "at least one weight must be positive"),
        (100, [], "at least one weight must be positive"),
        (100, [1, -1, 2], "weights cannot be negative"),
    ],
)
def test_allocate_rejects(total: int, weights: list[int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        allocate(total, weights)


# --- allocate: properties ------------------------------------------------------

totals = st.integers(0, 10**15)
weight_lists = st.lists(st.integers(0, 10**6), min_size=1, max_size=12).filter(
    lambda ws: sum(ws) > 0
)


@given(totals, weight_lists)
def test_allocate_properties(total: int, weights: list[int]) -> None:
    shares = allocate(total, weights)
    assert len(shares) == len(weights)
    assert sum(shares) == total
    w_sum = sum(weights)
    for share, w in zip(shares, weights, strict=True):
        exact = Fraction(total * w, w_sum)
        assert abs(share - exact) < 1
        if w == 0:
            assert share == 0


@given(totals, weight_lists)
def test_allocate_matches_reference(total: int, weights: list[int]) -> None:
    assert allocate(total, weights) == ref_hamilton(total, weights)


@given(st.integers(0, 1000), st.integers(1, 20), st.integers(1, 100))
def test_allocate_equal_weights_front_loads_leftover(total: int, n: int, w: int) -> None:
    # With equal weights every remainder is equal, so the tie rule decides:
    # the first (total mod n) parts get one fen more.
    shares = allocate(total, [w] * n)
    q, r = divmod(total, n)
    assert shares == [q + 1] * r + [q] * (n - r)


# --- allocate_capped ------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "weights", "caps", "expected"),
    [
        (1000, [1, 1, 1], [None, None, None], ([334, 333, 333], 0)),
        (1000, [1, 1, 1], [100, None, None], ([100, 450, 450], 0)),
        (1000, [1, 1], [100, 200], ([100, 200], 700)),
        (1000, [0, 1], [None, 5], ([0, 5], 995)),
        (1000, [1, 1, 1], [0, None, None], ([0, 500, 500], 0)),
        # Cascade: capping the first pushes the second over its cap too.
        (900, [1, 1, 1], [100, 350, None], ([100, 350, 450], 0)),
        (0, [1, 2], [0, 0], ([0, 0], 0)),
        (10, [1, 1], [5, 5], ([5, 5], 0)),
    ],
)
def test_allocate_capped_pinned(
    total: int,
    weights: list[int],
    caps: list[int | None],
    expected: tuple[list[int], int],
) -> None:
    assert allocate_capped(total, weights, caps) == expected


@pytest.mark.parametrize(
    ("weights", "caps", "message"),
    [
        ([1, 1], [None], "2 weights but 1 caps"),
        ([1, 1], [None, -1], "caps cannot be negative"),
        ([0, 0], [None, None], "at least one weight"),
        ([1, -1], [None, None], "weights cannot be negative"),
    ],
)
def test_allocate_capped_rejects(weights: list[int], caps: list[int | None], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        allocate_capped(100, weights, caps)
    with pytest.raises(ValueError, match="negative amount"):
        allocate_capped(-1, [1], [None])


@st.composite
def capped_problems(draw: st.DrawFn) -> tuple[int, list[int], list[int | None]]:
    weights = draw(weight_lists)
    caps = draw(
        st.lists(
            st.none() | st.integers(0, 10**7),
            min_size=len(weights),
            max_size=len(weights),
        )
    )
    total = draw(st.integers(0, 10**7))
    return total, weights, caps


@given(capped_problems())
def test_allocate_capped_properties(problem: tuple[int, list[int], list[int | None]]) -> None:
    total, weights, caps = problem
    shares, unallocated = allocate_capped(total, weights, caps)
    assert len(shares) == len(weights)
    assert sum(shares) + unallocated == total
    assert unallocated >= 0
    for share, w, cap in zip(shares, weights, caps, strict=True):
        assert share >= 0
        if cap is not None:
            assert share <= cap
        if w == 0:
            assert share == 0
    if unallocated > 0:
        assert all(
            cap is not None and share == cap
            for share, w, cap in zip(shares, weights, caps, strict=True)
            if w > 0
        )
    # A part below its cap loses at most rounding (1 fen) against the plain
    # split: capping others can only raise its exact quota.
    plain = allocate(total, weights)
    for share, cap, base in zip(shares, caps, plain, strict=True):
        if cap is None or share < cap:
            assert share >= base - 1


@given(totals, weight_lists)
def test_allocate_capped_without_caps_is_allocate(total: int, weights: list[int]) -> None:
    assert allocate_capped(total, weights, [None] * len(weights)) == (
        allocate(total, weights),
        0,
    )
    # Caps nobody reaches change nothing either.
    assert allocate_capped(total, weights, [total] * len(weights)) == (
        allocate(total, weights),
        0,
    )


# --- parse_cny / format_cny ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("1,200,000.50", 120_000_050),
        ("1200000", 120_000_000),
        ("¥1,200,000.5", 120_000_050),
        ("1200000.00元", 120_000_000),
        ("￥１，２００，０００．５０", 120_000_050),
        ("１２００元", 120_000),
        (" ¥ 1,200 ", 120_000),
        ("RMB 5", 500),
        ("CNY5.01", 501),
        ("人民币5元", 500),
        ("0", 0),
        ("0.01", 1),
        ("0.1", 10),
        ("92,233,720,368,547,758.07", MAX_FEN),
        # 万 and 亿 as people write them (docs/rules.md §Money)
        ("40万", 40_000_000),
        ("40万元", 40_000_000),
        ("￥４０万", 40_000_000),
        ("1.2亿", 12_000_000_000),
        ("1亿2000万", 12_000_000_000),
        ("1,200万", 1_200_000_000),
        ("0.5万", 500_000),
        ("1.23456789亿", 12_345_678_900),
        ("3万5000", 3_500_000),
    ],
)
def test_parse_cny(text: str, fen: int) -> None:
    assert parse_cny(text) == fen


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("1.234", "amount_past_fen"),
        ("1.000", "amount_past_fen"),
        ("-5", "amount_negative"),
        ("-¥5", "amount_negative"),
        ("¥-5", "amount_negative"),
        ("\u22125", "amount_negative"),
        ("", "amount_empty"),
        ("¥", "amount_empty"),
        ("1,5", "amount_bad_grouping"),
        ("12,00,000", "amount_bad_grouping"),
        ("2万3亿", "amount_in_wan"),
        ("1亿20000万", "amount_in_wan"),
        ("1.5亿2000万", "amount_in_wan"),
        ("万", "amount_in_wan"),
        ("四十万元整", "amount_in_words"),
        ("肆拾万元整", "amount_in_words"),
        ("4十万", "amount_in_words"),
        ("一百万", "amount_in_words"),
        ("1.2345678万", "amount_past_fen"),
        ("999999999999999999亿", "amount_too_large"),
        ("1e5", "amount_not_yuan"),
        ("NaN", "amount_not_yuan"),
        ("1.", "amount_not_yuan"),
        ("abc", "amount_not_yuan"),
        ("5²", "amount_not_yuan"),
        ("92,233,720,368,547,758.08", "amount_too_large"),
        ("1" * 40, "amount_too_large"),
    ],
)
def test_parse_cny_rejects(text: str, code: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_cny(text)
    assert isinstance(refused.value, BadValue) and refused.value.code == code


@pytest.mark.parametrize(
    ("fen", "symbol", "text"),
    [
        (120_000_050, True, "¥1,200,000.50"),
        (120_000_050, False, "1,200,000.50"),
        (0, True, "¥0.00"),
        (5, True, "¥0.05"),
        (99_999, True, "¥999.99"),
        (-120_000_050, True, "-¥1,200,000.50"),
        (-5, False, "-0.05"),
    ],
)
def test_format_cny(fen: int, symbol: bool, text: str) -> None:
    assert format_cny(fen, symbol=symbol) == text


@given(st.integers(0, MAX_FEN), st.booleans())
def test_format_parse_round_trip(fen: int, symbol: bool) -> None:
    assert parse_cny(format_cny(fen, symbol=symbol)) == fen


@given(st.integers(0, 10**12), st.integers(0, 99))
def test_parse_format_round_trip(yuan: int, cents: int) -> None:
    text = f"{yuan}.{cents:02d}"
    assert format_cny(parse_cny(text), symbol=False).replace(",", "") == text


# --- percent_of ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "bp", "expected"),
    [
        (120_000_000, 1000, 12_000_000),  # 10 % deposit
        (12_345, 250, 309),  # 308.625 -> 309
        (2, 2500, 1),  # 0.5 -> 1 (half up)
        (1, 4999, 0),  # 0.4999 -> 0
        (3, 5000, 2),  # 1.5 -> 2
        (0, 300, 0),
        (100, 0, 0),
        (-3, 5000, -2),  # symmetric: ties away from zero
    ],
)
def test_percent_of(amount: int, bp: int, expected: int) -> None:
    assert percent_of(amount, bp) == expected


@given(st.integers(-(10**15), 10**15), st.integers(0, 10**5))
def test_percent_of_is_nearest_half_up(amount: int, bp: int) -> None:
    exact = Fraction(amount * bp, 10_000)
    result = percent_of(amount, bp)
    assert abs(result - exact) <= Fraction(1, 2)
    if abs(result - exact) == Fraction(1, 2):
        assert abs(result) > abs(exact)
    assert percent_of(-amount, bp) == -result


# --- round_to_nice ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fen", "nice"),
    [
        (600_000, 500_000),  # 6,000.00 -> 5,000.00
        (123_400, 100_000),  # 1,234 -> 1,000
        (26_000, 20_000),  # 260 -> 200
        (50, 100),  # 0.50 -> 1.00
        (0, 100),
        (100, 100),
        (199, 100),
        (200, 200),
        (499, 200),
        (500, 500),
        (999_999, 500_000),
        (1_000_000, 1_000_000),
        (200_000_000, 200_000_000),
    ],
)
def test_round_to_nice(fen: int, nice: int) -> None:
    assert round_to_nice(fen) == nice


def test_round_to_nice_rejects_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        round_to_nice(-1)


@given(st.integers(100, 10**18))
def test_round_to_nice_is_largest_125_step_below(fen: int) -> None:
    nice = round_to_nice(fen)
    steps = [m * 10**k * 100 for k in range(20) for m in (1, 2, 5)]
    assert nice in steps
    assert nice <= fen
    assert all(step > fen for step in steps if step > nice)


@pytest.mark.parametrize(
    ("fen", "capitals"),
    [
        (775_000_000_000, "柒拾柒亿伍仟万元整"),
        (10_000, "壹佰元整"),
        (101_000, "壹仟零壹拾元整"),
        (10_000_550, "壹拾万零伍元伍角整"),
        (100_000_000_100, "壹拾亿零壹元整"),
        (10_100_000_000, "壹亿零壹佰万元整"),
        (120, "壹元贰角整"),
        (1_005, "壹拾元零伍分"),
        (5, "伍分"),
        (0, "零元整"),
    ],
)
def test_an_amount_in_capitals(fen: int, capitals: str) -> None:
    assert cny_capitals(fen) == capitals
