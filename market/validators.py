"""Validation and normalisation of the identifiers the exchange deals in.

Every validator is a pure function: it returns the normalised value or raises
``BadValue`` (still a ``ValueError``) with a code and the values it names; the
words that tell the person at the keyboard what to fix are the catalog texts
``problem.<code>`` (market/locale, domain ``values``), in the reader's language.
Normalised values are what gets stored and compared, so the same code
typed two ways (full-width digits, lower case, with or without a ``CN``
prefix, ...) ends up as one string.

Sources for the rules are cited next to each function.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import Final, Literal

from market.errors import BadValue

__all__ = [
    "application_year",
    "credit_code",
    "email",
    "ipc_code",
    "ipc_prefix",
    "nice_class",
    "patent_application_number",
    "patent_type_code",
    "software_copyright_registration_number",
    "trademark_registration_number",
]

_ASCII_DIGITS: Final = frozenset("0123456789")


# Chinese input methods readily produce full-width forms (``９１３５``, ``ＣＮ``,
# ``．``, ideographic space).  Unicode's Halfwidth and Fullwidth Forms block
# maps U+FF01-U+FF5E one-to-one onto ASCII U+0021-U+007E.  Only these are
# folded: full NFKC would also turn "²" or "①" into digits and so accept
# garbage as a number.
_FULL_WIDTH: Final = {0xFF01 + i: 0x21 + i for i in range(94)} | {0x3000: 0x20}


def _fold(s: str) -> str:
    """Fold full-width ASCII to ASCII, strip and upper-case a typed code.

    Only ASCII is upper-cased: str.upper() maps "ı" and "ſ" to "I" and "S",
    which would smuggle look-alikes into a code.
    """
    return "".join(c.upper() if c.isascii() else c for c in s.translate(_FULL_WIDTH).strip())


def _is_digits(s: str) -> bool:
    # str.isdigit() also accepts superscripts and non-Latin digits; the codes
    # below are defined over ASCII 0-9 only.
    return bool(s) and all(c in _ASCII_DIGITS for c in s)


def _without_spaces(s: str) -> str:
    return "".join(s.split())


# ---------------------------------------------------------------------------
# 统一社会信用代码 — GB 32100-2015
# ---------------------------------------------------------------------------

# GB 32100-2015 §4 (代码字符集): digits and upper-case Latin letters except
# I, O, S, V, Z (too easily confused with 1, 0, 5, U, 2).  The position of a
# character in this string is its numeric value in the check computation.
_CREDIT_CHARSET: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_VALUE: Final = {c: i for i, c in enumerate(_CREDIT_CHARSET)}
# GB 32100-2015 §5 (校验码): W_i = 3^(i-1) mod 31 for positions i = 1..17.
_CREDIT_WEIGHTS: Final = tuple(pow(3, i, 31) for i in range(17))
_CREDIT_EXCLUDED: Final = frozenset("IOSVZ")


def _credit_check_char(body: str) -> str:
    """GB 32100-2015 §5: C18 = 31 - (sum(value(c_i) * W_i) mod 31); 31 -> 0."""
    total = sum(_CREDIT_VALUE[c] * w for c, w in zip(body, _CREDIT_WEIGHTS, strict=True))
    return _CREDIT_CHARSET[(31 - total % 31) % 31]


def credit_code(s: str) -> str:
    """Validate a unified social credit code (统一社会信用代码, GB 32100-2015).

    Layout (GB 32100-2015 §4): 1 registration-authority code, 1 organisation
    type code, 6-digit administrative division code (GB/T 2260), 9-character
    organisation code body (GB 11714), 1 check character.

    Positions 1 and 2 are only checked against the character set: the
    authorities extend the code tables (e.g. ``A`` and ``N`` were added after
    2015), so a hard-coded list would reject legitimate new issuers.  The GB
    11714 check inside positions 9-17 is not enforced either, because codes
    issued to sole proprietors (个体工商户) do not always carry a valid one.
    """
    code = _fold(s)
    if len(code) != 18:
        raise BadValue("credit_code_length", length=len(code))
    for pos, c in enumerate(code, start=1):
        if c in _CREDIT_EXCLUDED:
            raise BadValue("credit_code_excluded_letter", position=pos, char=c)
        if c not in _CREDIT_VALUE:
            raise BadValue("credit_code_bad_char", position=pos, char=c)
    for pos in range(3, 9):
        if code[pos - 1] not in _ASCII_DIGITS:
            raise BadValue("credit_code_region_digits", position=pos, char=code[pos - 1])
    expected = _credit_check_char(code[:17])
    if code[17] != expected:
        raise BadValue("credit_code_check_char", expected=expected, char=code[17])
    return code


# ---------------------------------------------------------------------------
# 公民身份号码 — GB 11643-1999
# ---------------------------------------------------------------------------

# GB 11643-1999 §8.2 (校验码): W_i = 2^(18-i) mod 11 for positions i = 1..17; the check is
# (12 - sum(a_i * W_i) mod 11) mod 11, written X for 10.
_ID_WEIGHTS: Final = tuple(pow(2, 17 - i, 11) for i in range(17))


def _id_check_char(body: str) -> str:
    value = (12 - sum(int(c) * w for c, w in zip(body, _ID_WEIGHTS, strict=True)) % 11) % 11
    return "X" if value == 10 else str(value)


def id_number(s: str) -> str:
    """Validate a resident identity number (居民身份号码, GB 11643-1999): 6-digit address
    code, 8-digit date of birth, 3-digit order code, check character (a digit or X).

    The date of birth must be a real date; the address code is checked only as digits
    (GB/T 2260 changes every year, and old numbers keep their old codes)."""
    number = _fold(s)
    if len(number) != 18:
        raise BadValue("id_number_length", length=len(number))
    if not _is_digits(number[:17]) or not (_is_digits(number[17]) or number[17] == "X"):
        raise BadValue("id_number_bad_char")
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise BadValue("id_number_birth_date", date=number[6:14]) from None
    if born.year < 1900:
        raise BadValue("id_number_birth_date", date=number[6:14])
    expected = _id_check_char(number[:17])
    if number[17] != expected:
        raise BadValue("id_number_check_char", expected=expected, char=number[17])
    return number


# ---------------------------------------------------------------------------
# Chinese patent application numbers — CNIPA standard ZC 0006-2003
# 《专利申请号标准》, in force since 2003-10-01.
# ---------------------------------------------------------------------------

# ZC 0006-2003 §5: the check digit is the weighted sum of the digits mod 11
# (not 11 minus it), a remainder of 10 is written as upper-case X.  The same
# rule with the first eight weights applies to the 8-digit pre-2003 numbers.
_PATENT_WEIGHTS: Final = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)

PatentType = Literal["invention", "utility_model", "design"]

# ZC 0006-2003 §4.2 (申请种类号): 1 invention, 2 utility model, 3 design,
# 8 PCT application for an invention entering the Chinese national phase,
# 9 PCT application for a utility model entering the national phase.
_PATENT_TYPES: Final[dict[str, PatentType]] = {
    "1": "invention",
    "2": "utility_model",
    "3": "design",
    "8": "invention",
    "9": "utility_model",
}

# The Patent Law took effect on 1985-04-01 and the 8-digit form was replaced
# on 2003-10-01, so an old two-digit year is 85-99 or 00-03.
_OLD_YEARS: Final = frozenset([f"{y:02d}" for y in (*range(85, 100), *range(4))])


def _patent_check_char(digits: str) -> str:
    total = sum(int(d) * w for d, w in zip(digits, _PATENT_WEIGHTS, strict=False))
    r = total % 11
    return "X" if r == 10 else str(r)


def patent_application_number(s: str) -> str:
    """Validate a CNIPA patent application number and normalise it.

    Accepts ``202310123456.7``, ``CN202310123456.7``, ``ZL 2023 1 0123456.7``,
    ``2023101234567`` and the pre-2003 form ``ZL 99 1 14725.1``.  Returns
    ``YYYYTNNNNNNN.C`` (12 digits since 2003-10-01) or ``YYTNNNNN.C`` (8 digits
    before), where T is the application type and C the check character.
    """
    raw = _without_spaces(_fold(s))
    # "CN" is the WIPO ST.3 country code, "ZL" (专利) is how granted patents
    # are cited; neither is part of the number itself.
    if raw[:2] in ("CN", "ZL"):
        raw = raw[2:]
    if not raw:
        raise BadValue("patent_number_empty")
    if raw.count(".") > 1:
        raise BadValue("patent_number_many_dots")
    if "." in raw:
        body, check = raw.split(".")
        if len(check) != 1:
            raise BadValue("patent_number_check_after_dot")
    elif _is_digits(raw) and len(raw) in (8, 12):
        raise BadValue("patent_number_check_missing")
    else:
        body, check = raw[:-1], raw[-1]
    if not _is_digits(body):
        raise BadValue("patent_number_not_digits")
    if len(body) not in (8, 12):
        raise BadValue("patent_number_length", length=len(body))
    if len(body) == 12:
        year, kind = body[:4], body[4]
        if not "2003" <= year <= "2099":
            raise BadValue("patent_number_year", year=year)
    else:
        year, kind = body[:2], body[2]
        if year not in _OLD_YEARS:
            raise BadValue("patent_number_old_year", year=year)
    if kind not in _PATENT_TYPES:
        raise BadValue("patent_number_type", digit=kind)
    if check not in _ASCII_DIGITS and check != "X":
        raise BadValue("patent_number_check_form", char=check)
    expected = _patent_check_char(body)
    if check != expected:
        raise BadValue("patent_number_check_char", expected=expected, char=check)
    return f"{body}.{check}"


def patent_type_code(number: str) -> PatentType:
    """Kind of right applied for: PCT national-phase types map to their kind."""
    body = patent_application_number(number).split(".")[0]
    return _PATENT_TYPES[body[4] if len(body) == 12 else body[2]]


def application_year(number: str) -> int:
    """Filing year encoded in the number (pre-2003: 85-99 -> 19xx, 00-03 -> 20xx)."""
    body = patent_application_number(number).split(".")[0]
    if len(body) == 12:
        return int(body[:4])
    yy = int(body[:2])
    return 1900 + yy if yy >= 85 else 2000 + yy


# ---------------------------------------------------------------------------
# International Patent Classification — WIPO IPC Guide, §§ 9-19 (symbol
# structure: section letter, 2-digit class, subclass letter, group "N/NN").
# ---------------------------------------------------------------------------

_IPC_RE: Final = re.compile(
    r"""
    (?P<section>.)
    \s*
    (?P<klass>[0-9]{0,2})
    \s*
    (?P<subclass>[A-Z]?)
    \s*
    (?P<main>[0-9]*)
    \s*
    (?P<slash>/?)
    \s*
    (?P<sub>[0-9]*)
    """,
    re.VERBOSE,
)


def _parse_ipc(s: str) -> tuple[str, str | None, str | None, str | None, str | None]:
    """Split an IPC symbol into (section, class, subclass, main group, subgroup).

    Trailing parts may be absent (None) so that prefixes can be parsed too.
    """
    text = _fold(s)
    if not text:
        raise BadValue("ipc_empty")
    m = _IPC_RE.fullmatch(text)
    if m is None:
        raise BadValue("ipc_not_symbol", text=text)
    section, klass, subclass = m["section"], m["klass"], m["subclass"]
    main, slash, sub = m["main"], m["slash"], m["sub"]
    # IPC Guide §10: eight sections, A (human necessities) to H (electricity).
    if section not in "ABCDEFGH":
        raise BadValue("ipc_section_letter", section=section)
    if not klass:
        if subclass or main or slash:
            raise BadValue("ipc_class_digits")
        return section, None, None, None, None
    if len(klass) != 2:
        raise BadValue("ipc_class_digits")
    if not subclass:
        if main or slash:
            raise BadValue("ipc_subclass_letter")
        return section, klass, None, None, None
    if not main:
        if slash:
            raise BadValue("ipc_main_group_missing")
        return section, klass, subclass, None, None
    if len(main) > 4:
        raise BadValue("ipc_main_group_length", group=main)
    # Main groups are numbers: "016" and "16" are the same group.
    main = str(int(main))
    if not slash:
        if sub:
            raise BadValue("ipc_subgroup_without_slash")
        return section, klass, subclass, main, None
    # IPC Guide §17: a subgroup has at least two digits ("/00" is the main
    # group itself); WIPO ST.8 leaves room for six.  Trailing digits are
    # significant (16/245 and 16/2450 are different places in the schedule),
    # so the subgroup is kept verbatim.
    if not 2 <= len(sub) <= 6:
        raise BadValue("ipc_subgroup_length", subgroup=sub)
    return section, klass, subclass, main, sub


def ipc_code(s: str) -> str:
    """Canonical full IPC symbol ``G06F 16/245``; a bare main group gets ``/00``."""
    section, klass, subclass, main, sub = _parse_ipc(s)
    if main is None:
        raise BadValue("ipc_needs_main_group")
    return f"{section}{klass}{subclass} {main}/{sub or '00'}"


def ipc_prefix(s: str) -> str:
    """Compact key (no spaces) of a full or partial IPC symbol, for prefix search.

    ``G`` -> ``G``, ``G06`` -> ``G06``, ``g06f`` -> ``G06F``,
    ``G06F 16/245`` -> ``G06F16/245``.  A main group given without a subgroup
    (``G06F 16``) becomes ``G06F16/``: the trailing slash ends the group
    number, so the key matches 16/00 and 16/245 but not group 161.  Store
    ``ipc_prefix(ipc_code(x))`` and search with ``LIKE ipc_prefix(q) || '%'``.
    """
    section, klass, subclass, main, sub = _parse_ipc(s)
    key = section + (klass or "") + (subclass or "")
    if main is not None:
        key += f"{main}/" + (sub or "")
    return key


# ---------------------------------------------------------------------------
# Trademarks — CNIPA (商标局) registration numbers and the Nice
# Classification (Nice Agreement, 12th edition: 34 goods + 11 services
# classes).
# ---------------------------------------------------------------------------

_TRADEMARK_DIGITS: Final = 9
_NICE_CLASSES: Final = 45


def trademark_registration_number(s: str) -> str:
    """CNIPA trademark registration number: 1-9 digits, no leading zero."""
    number = _fold(s)
    if not number:
        raise BadValue("trademark_number_empty")
    if not _is_digits(number):
        raise BadValue("trademark_number_digits")
    if number[0] == "0":
        raise BadValue("trademark_number_leading_zero")
    if len(number) > _TRADEMARK_DIGITS:
        raise BadValue("trademark_number_length", length=len(number), max=_TRADEMARK_DIGITS)
    return number


def nice_class(n: int | str) -> int:
    """Nice class number 1-45 (Nice Classification, classes 1-34 goods, 35-45 services)."""
    # bool is an int subclass; True is not a class number.
    if isinstance(n, bool):
        raise BadValue("nice_class_not_a_number", min=1, max=_NICE_CLASSES)
    if isinstance(n, str):
        text = _fold(n)
        if not _is_digits(text):
            raise BadValue("nice_class_not_digits", text=n.strip(), min=1, max=_NICE_CLASSES)
        n = int(text)
    if not 1 <= n <= _NICE_CLASSES:
        raise BadValue("nice_class_range", value=n, min=1, max=_NICE_CLASSES)
    return n


# ---------------------------------------------------------------------------
# Software copyright — 中国版权保护中心 registration numbers as printed on
# the certificate (软著登字第2019SR0123456号).
# ---------------------------------------------------------------------------

_SOFTWARE_RE: Final = re.compile(r"([0-9]{4})SR([0-9]{6,7})")


def software_copyright_registration_number(s: str) -> str:
    """Registration number ``YYYYSRNNNNNN[N]``; certificate wording is tolerated."""
    text = _without_spaces(_fold(s))
    # Accept the number copied with its certificate wording around it.
    text = text.removeprefix("软著登字").removeprefix("第").removesuffix("号")
    if not text:
        raise BadValue("software_number_empty")
    m = _SOFTWARE_RE.fullmatch(text)
    if m is None:
        raise BadValue("software_number_form")
    if m[1][:2] not in ("19", "20"):
        raise BadValue("software_number_year", year=m[1])
    return text


# ---------------------------------------------------------------------------
# E-mail — deliberately pragmatic: the full RFC 5322 grammar admits
# addresses nobody can type, and the only real proof is a confirmation mail.
# ---------------------------------------------------------------------------

_EMAIL_MAX: Final = 254  # RFC 5321 §4.5.3.1.3: 256-octet path minus "<>".
_LOCAL_MAX: Final = 64  # RFC 5321 §4.5.3.1.1.


def email(s: str) -> str:
    """Pragmatic address check; the domain is lower-cased (RFC 5321 §2.4).

    The local part keeps its case: RFC 5321 §2.4 lets the receiving host
    treat it case-sensitively.
    """
    address = s.strip()
    if not address:
        raise BadValue("email_empty")
    if len(address) > _EMAIL_MAX:
        raise BadValue("email_too_long", max=_EMAIL_MAX)
    if any(c.isspace() for c in address):
        raise BadValue("email_spaces")
    if not address.isprintable():
        raise BadValue("email_control_char")
    if address.count("@") != 1:
        raise BadValue("email_at_count")
    local, domain = address.split("@")
    if not local:
        raise BadValue("email_local_missing")
    if len(local) > _LOCAL_MAX:
        raise BadValue("email_local_too_long", max=_LOCAL_MAX)
    if not domain:
        raise BadValue("email_domain_missing")
    if "." not in domain:
        raise BadValue("email_domain_no_dot", domain=domain)
    if any(not label for label in domain.split(".")):
        raise BadValue("email_domain_empty_label", domain=domain)
    return f"{local}@{domain.lower()}"


# ---------------------------------------------------------------------------
# A name shown to others (an organisation's): no character that changes how the
# text around it reads — bidi overrides and isolates (U+202A–202E, U+2066–2069) can
# make "公司ABC" display as another name, zero-width characters (U+200B–200D, U+2060,
# U+FEFF) make two names that look alike differ (docs/rules.md §Security). Unicode
# classes those as format (Cf) or control (Cc) characters; none belongs in a name.
# ---------------------------------------------------------------------------


def display_name(s: str) -> str:
    """A name without format or control characters, trimmed."""
    for c in s:
        if unicodedata.category(c) in ("Cf", "Cc"):
            raise BadValue("name_invisible_character", char=f"U+{ord(c):04X}")
    return s.strip()
