"""Verification codes of the exchange's documents (docs/rules.md §Sale documents).

A code is 19 random characters of Crockford's base32 (no I, L, O, U: nothing to misread),
95 bits from the operating system's generator, then one check character (Luhn mod 32), so
a mistyped character, or two swapped neighbours (all but 0 and Z, as Luhn's 0 and 9), is
caught before any look-up. It is shown in groups of four; what a person types is read
leniently (any case, dashes and spaces ignored, O read as 0, I and L as 1).
"""

from __future__ import annotations

import secrets
from typing import Final

ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
RANDOM_LENGTH: Final = 19
LENGTH: Final = RANDOM_LENGTH + 1
_VALUE: Final = {c: i for i, c in enumerate(ALPHABET)}
_LENIENT: Final = str.maketrans({"O": "0", "I": "1", "L": "1", "-": None, " ": None})


def _check(body: str) -> str:
    """The Luhn mod N check character of `body` (N = 32)."""
    n, total, factor = len(ALPHABET), 0, 2
    for char in reversed(body):
        addend = factor * _VALUE[char]
        total += addend // n + addend % n
        factor = 1 if factor == 2 else 2
    return ALPHABET[(n - total % n) % n]


def new_code() -> str:
    body = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    return body + _check(body)


def normalise(typed: str) -> str | None:
    """The code a person typed, or None when it cannot be one (wrong length, a character
    outside the alphabet, or a check character that does not match)."""
    code = typed.upper().translate(_LENIENT)
    if len(code) != LENGTH or any(c not in _VALUE for c in code):
        return None
    return code if _check(code[:-1]) == code[-1] else None


def grouped(code: str) -> str:
    """`ABCD-EFGH-…` as printed on the document."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))
