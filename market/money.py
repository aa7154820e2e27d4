"""Money arithmetic in integer fen (分, 1 CNY = 100 fen).

Amounts are Python ints counted in fen everywhere in the system: no floats,
no Decimal in storage.  Decimal is used only at the edge, to read what a
person typed.  Every split of an amount into parts goes through
:func:`allocate`, so that rounding is done one way, once, and the parts
always add back up to the whole.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal, Inexact, Rounded, localcontext
from typing import Final

from market.errors import BadValue

__all__ = [
    "MAX_FEN",
    "ROUND_UNITS",
    "allocate",
    "allocate_capped",
    "cny_capitals",
    "format_cny",
    "parse_cny",
    "percent_of",
    "round_to_nice",
]

FEN_PER_YUAN: Final = 100
BASIS_POINTS: Final = 10_000
# Amounts are stored in PostgreSQL bigint columns; anything larger cannot be
# stored and is certainly a typing mistake.
MAX_FEN: Final = 2**63 - 1


def allocate(total_fen: int, weights: Sequence[int]) -> list[int]:
    """Split ``total_fen`` in proportion to ``weights`` (largest-remainder method).

    This is the Hamilton (largest-remainder) apportionment: part i first gets
    ``floor(total * w_i / W)``; the fen left over (fewer than the number of
    parts) go one each to the parts with the largest remainders
    ``total * w_i mod W``.  Equal remainders are broken by position: the
    earlier part (lower index) gets the fen.  That makes the result a pure
    function of its inputs, so a split can be recomputed and audited, and
    callers who want a particular party favoured on ties order the parts
    accordingly.

    Guarantees: the result sums exactly to ``total_fen``; a zero weight gets 0;
    every share is within 1 fen of its exact quota ``total * w_i / W``
    (``floor(q) <= share <= ceil(q)``).

    Raises ``ValueError`` for a negative total (a reversal is a separate
    posting, not a negative split), a negative weight, or no positive weight.
    """
    if total_fen < 0:
        raise ValueError(f"cannot split a negative amount ({total_fen} fen)")
    if any(w < 0 for w in weights):
        raise ValueError("weights cannot be negative")
    weight_sum = sum(weights)
    if weight_sum == 0:
        raise ValueError("at least one weight must be positive")
    shares: list[int] = []
    remainders: list[int] = []
    for w in weights:
        share, remainder = divmod(total_fen * w, weight_sum)
        shares.append(share)
        remainders.append(remainder)
    leftover = total_fen - sum(shares)
    # Stable sort on -remainder keeps the lower index first among equals.
    # A zero weight has remainder 0 and leftover < number of parts with a
    # positive remainder, so a zero-weight part never receives a fen.
    order = sorted(range(len(weights)), key=lambda i: -remainders[i])
    for i in order[:leftover]:
        shares[i] += 1
    return shares


def allocate_capped(
    total_fen: int,
    weights: Sequence[int],
    caps: Sequence[int | None],
) -> tuple[list[int], int]:
    """Split proportionally where part i may receive at most ``caps[i]`` fen.

    Returns ``(shares, unallocated_fen)``.  ``None`` means uncapped.  Used for
    rules such as "a pool never gets back more than it paid in".

    Method (water-filling): split the amount among the parts that are not yet
    full; every part whose share would exceed its cap is fixed at its cap; the
    rest of the amount is split again among the remaining parts, until no
    share exceeds its cap.  A share can only exceed its cap when its exact
    quota does (allocate() rounds by less than 1 fen), and fixing parts at
    their caps only raises the others' quotas, so a part once full stays full
    and the loop ends after at most ``len(weights) + 1`` splits.  The final
    amounts of the parts that are not full come from one allocate() call, so
    they carry allocate()'s rounding guarantees.

    Whatever no part can take (every positive-weight part is at its cap) is
    returned as ``unallocated_fen``; ``sum(shares) + unallocated_fen ==
    total_fen`` always holds.
    """
    if len(caps) != len(weights):
        raise ValueError(f"got {len(weights)} weights but {len(caps)} caps")
    if any(c is not None and c < 0 for c in caps):
        raise ValueError("caps cannot be negative")
    if total_fen < 0:
        raise ValueError(f"cannot split a negative amount ({total_fen} fen)")
    if any(w < 0 for w in weights):
        raise ValueError("weights cannot be negative")
    if sum(weights) == 0:
        raise ValueError("at least one weight must be positive")

    limits = {i: c for i, c in enumerate(caps) if c is not None}
    full: set[int] = set()
    while True:
        open_weights = [0 if i in full else w for i, w in enumerate(weights)]
        pool = total_fen - sum(limits[i] for i in full)
        if not any(open_weights):
            return [limits[i] if i in full else 0 for i in range(len(weights))], pool
        split = allocate(pool, open_weights)
        over = {i for i, limit in limits.items() if split[i] > limit}
        if not over:
            return [limits[i] if i in full else split[i] for i in range(len(weights))], 0
        full |= over


# ---------------------------------------------------------------------------
# Reading and writing amounts in yuan
# ---------------------------------------------------------------------------

# Either plain digits or thousands grouped strictly by three.  Strict grouping
# matters: "1,5" is 1.5 in much of Europe, and reading it as 15 yuan would be a
# silent ten-fold error, so it is rejected instead.
_AMOUNT_RE: Final = re.compile(r"(?:[0-9]+|[0-9]{1,3}(?:,[0-9]{3})+)(?:\.([0-9]+))?")
_PREFIXES: Final = ("¥", "CNY", "RMB", "人民币")
# Full-width forms from Chinese input methods (Unicode Halfwidth and Fullwidth
# Forms block: U+FF01-U+FF5E map one-to-one onto ASCII), the ideographic
# space, and the full-width yen sign U+FFE5 (the usual way to write 人民币).
# Not full NFKC, which would also read "²" as a digit.
_FULL_WIDTH: Final = {0xFF01 + i: 0x21 + i for i in range(94)} | {0x3000: 0x20, 0xFFE5: 0xA5}
_SUFFIXES: Final = ("元", "CNY", "RMB")
_MINUS: Final = ("-", "\u2212")
# MAX_FEN is 19 digits, i.e. 17 digits of yuan; longer input is rejected
# before any arithmetic is done on it.
_MAX_YUAN_DIGITS: Final = len(str(MAX_FEN // FEN_PER_YUAN))
# 亿 (10^8 yuan) and 万 (10^4 yuan), the everyday units of Chinese finance.
_UNITS_RE: Final = re.compile(r"(?:(?P<yi>[0-9.,]+)亿)?(?:(?P<wan>[0-9.,]+)万)?(?P<rest>[0-9.,]+)?")


# Chinese numerals, ordinary and capital (大写): an amount written in words.
_NUMERALS: Final = frozenset("零〇一二两三四五六七八九十百千壹贰貳叁參肆伍陆陸柒捌玖拾佰仟整角分")

AmountError = BadValue  # an amount a person typed that is not one


def parse_cny(s: str) -> int:
    """Parse an amount in yuan as a person writes it and return fen.

    Accepts ``1,200,000.50``, ``1200000``, ``¥1,200,000.5``, ``1200000.00元``,
    ``￥１，２００，０００`` (full-width forms are folded to ASCII), and the units of
    Chinese finance: ``40万`` (400,000 yuan), ``1.2亿`` (120,000,000 yuan),
    ``1亿2000万``.  At most two decimals of a yuan (1 fen is the smallest unit of the
    renminbi): ``1.2345678万`` is refused, ``1.23456789亿`` is not.  Negative amounts
    are rejected.  Parsed with Decimal, never float, so no binary rounding.
    """
    text = "".join(s.translate(_FULL_WIDTH).upper().split())
    # Both "-¥5" and "¥-5" occur; U+2212 MINUS SIGN is how word processors
    # print a minus.
    negative = text.startswith(_MINUS)
    text = text.lstrip("".join(_MINUS))
    for prefix in _PREFIXES:
        text = text.removeprefix(prefix)
    for suffix in _SUFFIXES:
        text = text.removesuffix(suffix)
    if negative or text.startswith(_MINUS):
        raise AmountError("amount_negative")
    if not text:
        raise AmountError("amount_empty")
    if any(c in _NUMERALS for c in text):
        # 四十万元整, 肆拾万: capitals are how the exchange says an amount back, never
        # how it reads one — refused in so many words rather than misread.
        raise AmountError("amount_in_words", text=s)
    yuan = _units(text) if ("万" in text or "亿" in text) else _plain(text, s)
    with localcontext() as ctx:
        # Enough precision for every digit, and trap any rounding so that a
        # result can never be silently altered.
        ctx.prec = len(text) + 12
        ctx.traps[Inexact] = True
        ctx.traps[Rounded] = True
        fen_exact = yuan.scaleb(2)
    if fen_exact != fen_exact.to_integral_value():
        raise AmountError("amount_past_fen")
    fen = int(fen_exact)
    if fen > MAX_FEN:
        raise AmountError("amount_too_large")
    return fen


def _plain(text: str, typed: str) -> Decimal:
    """Digits, grouped by three or not, with at most two decimals."""
    m = _AMOUNT_RE.fullmatch(text)
    if m is None:
        if "," in text:
            raise AmountError("amount_bad_grouping")
        raise AmountError("amount_not_yuan", text=typed.strip()[:40])
    if m[1] is not None and len(m[1]) > 2:
        raise AmountError("amount_past_fen")
    if len(text.split(".", maxsplit=1)[0].replace(",", "")) > _MAX_YUAN_DIGITS:
        raise AmountError("amount_too_large")
    return Decimal(text.replace(",", ""))


def _units(text: str) -> Decimal:
    """``A亿B万C``, each part optional but one: a part after a larger unit is a whole
    number below that unit (``1亿2000万``), and only the last part may have decimals;
    anything else (``2万3亿``, ``1亿20000万``) is ambiguous and refused."""
    m = _UNITS_RE.fullmatch(text)
    if m is None or not any(m.groups()):
        raise AmountError("amount_in_wan")
    parts = [(m["yi"], 10**8), (m["wan"], 10**4), (m["rest"], 1)]
    present = [(digits, unit) for digits, unit in parts if digits is not None]
    total = Decimal(0)
    for i, (digits, unit) in enumerate(present):
        last = i == len(present) - 1
        if len(digits.split(".")[0].replace(",", "")) > _MAX_YUAN_DIGITS:
            raise AmountError("amount_too_large")
        if ("." in digits and not last) or _AMOUNT_RE.fullmatch(digits) is None:
            raise AmountError("amount_in_wan")
        value = Decimal(digits.replace(",", ""))
        if i > 0 and value >= present[i - 1][1] // unit:
            raise AmountError("amount_in_wan")
        total += value * unit
    return total


def format_cny(fen: int, *, symbol: bool = True) -> str:
    """``¥1,200,000.50``; negative amounts as ``-¥1,200,000.50``."""
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), FEN_PER_YUAN)
    return f"{sign}{'¥' if symbol else ''}{yuan:,}.{cents:02d}"


def percent_of(amount_fen: int, basis_points: int) -> int:
    """``amount * basis_points / 10000`` rounded half-up to the fen.

    Used for deposits and commissions.  Half-up as in Decimal's ROUND_HALF_UP:
    ties go away from zero, so ``percent_of(-a, bp) == -percent_of(a, bp)``.
    Integer arithmetic only.
    """
    product = amount_fen * basis_points
    quotient, remainder = divmod(abs(product), BASIS_POINTS)
    if 2 * remainder >= BASIS_POINTS:
        quotient += 1
    return -quotient if product < 0 else quotient


# Mantissas of "round figures" (1-2-5 series, as on banknotes and in the
# usual auction bid-increment tables): 1, 2, 5, 10, 20, 50, 100, ... yuan.
ROUND_UNITS: Final = (1, 2, 5)


def round_to_nice(fen: int) -> int:
    """Largest 1/2/5 x 10^k yuan amount not above ``fen``, at least CNY 1.

    6,000.00 -> 5,000.00; 1,234 -> 1,000; 260 -> 200; 0.50 -> 1.00 (an
    auction increment is never less than one yuan, so anything below rounds
    up to CNY 1).
    """
    if fen < 0:
        raise ValueError("amount cannot be negative")
    # The steps are whole yuan, so the largest step <= fen is the largest
    # step <= floor(fen / 100) yuan.
    yuan = fen // FEN_PER_YUAN
    if yuan < 1:
        return FEN_PER_YUAN
    power = 1
    while power * 10 <= yuan:
        power *= 10
    lead = yuan // power
    unit = max(u for u in ROUND_UNITS if u <= lead)
    return unit * power * FEN_PER_YUAN


_DIGITS: Final = "零壹贰叁肆伍陆柒捌玖"
_PLACES: Final = ((1000, "仟"), (100, "佰"), (10, "拾"), (1, ""))
_GROUPS: Final = ("", "万", "亿", "万亿", "亿亿")


def _four(n: int) -> str:
    """0 < n < 10,000 in capitals, a zero inside read once (1010: 壹仟零壹拾)."""
    out, zero = "", False
    for place, unit in _PLACES:
        digit = n // place % 10
        if digit == 0:
            zero = bool(out)
            continue
        if zero:
            out, zero = out + "零", False
        out += _DIGITS[digit] + unit
    return out


def cny_capitals(fen: int) -> str:
    """An amount in the capitals (大写) a Chinese cheque, contract or confirmation writes it
    in, so a misplaced digit shows: 775,000,000,000 fen → 柒拾柒亿伍仟万元整 (中国人民银行
    《支付结算办法》附一 正确填写票据和结算凭证的基本规定: 零 for a gap, 整 after whole yuan)."""
    if not 0 <= fen <= MAX_FEN:
        raise ValueError("an amount in capitals is between 0 and MAX_FEN fen")
    yuan, jiao, cents = fen // 100, fen // 10 % 10, fen % 10
    groups: list[int] = []
    rest = yuan
    while rest:
        rest, group = divmod(rest, 10_000)
        groups.append(group)
    out, gap = "", False
    for index in reversed(range(len(groups))):
        group = groups[index]
        if group == 0:
            gap = bool(out)
            continue
        if out and (gap or group < 1000):
            out += "零"
        out += _four(group) + _GROUPS[index]
        gap = False
    if out:
        out += "元"
    if jiao == 0 and cents == 0:
        return (out or "零元") + "整"
    if jiao:
        out += _DIGITS[jiao] + "角"
    elif out:
        out += "零"
    if cents:
        out += _DIGITS[cents] + "分"
    else:
        out += "整"
    return out
