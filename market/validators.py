"""Validation and normalisation of the identifiers the exchange deals in.

Every validator is a pure function: it returns the normalised value or raises
``ValueError`` with a short message, Chinese first then English
("中文 / English"), that tells the person at the keyboard what to fix.
Normalised values are what gets stored and compared, so the same code
typed two ways (full-width digits, lower case, with or without a ``CN``
prefix, ...) ends up as one string.

Sources for the rules are cited next to each function.
"""

from __future__ import annotations

import re
from typing import Final, Literal

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
        raise ValueError(
            f"统一社会信用代码应为 18 位，现为 {len(code)} 位 / "
            f"credit code must be 18 characters, got {len(code)}"
        )
    for pos, c in enumerate(code, start=1):
        if c in _CREDIT_EXCLUDED:
            raise ValueError(
                f"统一社会信用代码不使用字母 I、O、S、V、Z（第 {pos} 位为 '{c}'） / "
                f"credit code cannot contain the letter '{c}' (position {pos}); "
                "I, O, S, V and Z are never used"
            )
        if c not in _CREDIT_VALUE:
            raise ValueError(
                f"统一社会信用代码第 {pos} 位为 '{c}'，只允许数字和大写字母 / "
                f"credit code contains '{c}' at position {pos}; "
                "only digits and upper-case letters are allowed"
            )
    for pos in range(3, 9):
        if code[pos - 1] not in _ASCII_DIGITS:
            raise ValueError(
                f"第 3–8 位（行政区划码）应为数字，第 {pos} 位为 '{code[pos - 1]}' / "
                "positions 3-8 (administrative division code) must be digits, "
                f"found '{code[pos - 1]}' at position {pos}"
            )
    expected = _credit_check_char(code[:17])
    if code[17] != expected:
        raise ValueError(
            f"校验码应为 '{expected}'，不是 '{code[17]}'，请核对代码 / "
            f"check character should be '{expected}', not '{code[17]}'"
        )
    return code


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
        raise ValueError("专利申请号为空 / patent application number is empty")
    if raw.count(".") > 1:
        raise ValueError("专利申请号含多个 '.' / patent application number has more than one '.'")
    if "." in raw:
        body, check = raw.split(".")
        if len(check) != 1:
            raise ValueError(
                "'.' 后须有且只有一位校验位 / exactly one check character must follow the '.'"
            )
    elif _is_digits(raw) and len(raw) in (8, 12):
        raise ValueError(
            "最后一位数字后缺少校验位 / check character is missing after the last digit"
        )
    else:
        body, check = raw[:-1], raw[-1]
    if not _is_digits(body):
        raise ValueError(
            "专利申请号应为数字加一位校验位 / "
            "patent application number must be digits followed by a check character"
        )
    if len(body) not in (8, 12):
        raise ValueError(
            "专利申请号校验位前应为 12 位数字（2003 年 10 月 1 日前为 8 位），"
            f"现为 {len(body)} 位 / "
            "patent application number must have 12 digits (8 before 2003-10-01) "
            f"before the check character, got {len(body)}"
        )
    if len(body) == 12:
        year, kind = body[:4], body[4]
        if not "2003" <= year <= "2099":
            raise ValueError(
                f"12 位专利申请号的年份不可能是 '{year}' / "
                f"year '{year}' is impossible for a 12-digit application number"
            )
    else:
        year, kind = body[:2], body[2]
        if year not in _OLD_YEARS:
            raise ValueError(
                f"8 位专利申请号（2003 年前）的年份不可能是 '{year}' / "
                f"year '{year}' is impossible for an 8-digit (pre-2003) number"
            )
    if kind not in _PATENT_TYPES:
        raise ValueError(
            f"申请种类号应为 1、2、3、8 或 9，不是 '{kind}' / "
            f"application type digit must be 1, 2, 3, 8 or 9, not '{kind}'"
        )
    if check not in _ASCII_DIGITS and check != "X":
        raise ValueError(
            f"校验位应为数字或 'X'，不是 '{check}' / "
            f"check character must be a digit or 'X', not '{check}'"
        )
    expected = _patent_check_char(body)
    if check != expected:
        raise ValueError(
            f"校验位应为 '{expected}'，不是 '{check}'，请核对专利申请号 / "
            f"check character should be '{expected}', not '{check}'"
        )
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
        raise ValueError("IPC 分类号为空 / IPC symbol is empty")
    m = _IPC_RE.fullmatch(text)
    if m is None:
        raise ValueError(
            f"'{text}' 不是 IPC 分类号，应形如 'G06F 16/245' / "
            f"'{text}' is not an IPC symbol; expected e.g. 'G06F 16/245'"
        )
    section, klass, subclass = m["section"], m["klass"], m["subclass"]
    main, slash, sub = m["main"], m["slash"], m["sub"]
    # IPC Guide §10: eight sections, A (human necessities) to H (electricity).
    if section not in "ABCDEFGH":
        raise ValueError(
            f"IPC 部应为字母 A–H，不是 '{section}' / "
            f"IPC section must be a letter A-H, not '{section}'"
        )
    if not klass:
        if subclass or main or slash:
            raise ValueError(
                "IPC 大类应为部后的两位数字，如 'G06' / "
                "IPC class must be two digits after the section, e.g. 'G06'"
            )
        return section, None, None, None, None
    if len(klass) != 2:
        raise ValueError(
            "IPC 大类应为部后的两位数字，如 'G06' / "
            "IPC class must be two digits after the section, e.g. 'G06'"
        )
    if not subclass:
        if main or slash:
            raise ValueError(
                "IPC 小类应为大类后的一个字母，如 'G06F' / "
                "IPC subclass must be a letter after the class, e.g. 'G06F'"
            )
        return section, klass, None, None, None
    if not main:
        if slash:
            raise ValueError(
                "'/' 前缺少 IPC 大组，如 'G06F 16/00' / "
                "IPC main group is missing before '/', e.g. 'G06F 16/00'"
            )
        return section, klass, subclass, None, None
    if len(main) > 4:
        raise ValueError(
            f"IPC 大组最多 4 位数字，现为 '{main}' / "
            f"IPC main group has at most 4 digits, got '{main}'"
        )
    # Main groups are numbers: "016" and "16" are the same group.
    main = str(int(main))
    if not slash:
        if sub:
            raise ValueError(
                "IPC 小组须跟在 '/' 之后，如 'G06F 16/245' / "
                "IPC subgroup must follow a '/', e.g. 'G06F 16/245'"
            )
        return section, klass, subclass, main, None
    # IPC Guide §17: a subgroup has at least two digits ("/00" is the main
    # group itself); WIPO ST.8 leaves room for six.  Trailing digits are
    # significant (16/245 and 16/2450 are different places in the schedule),
    # so the subgroup is kept verbatim.
    if not 2 <= len(sub) <= 6:
        raise ValueError(
            f"IPC 小组应为 '/' 后的 2–6 位数字，现为 '{sub}' / "
            f"IPC subgroup must be 2-6 digits after '/', got '{sub}'"
        )
    return section, klass, subclass, main, sub


def ipc_code(s: str) -> str:
    """Canonical full IPC symbol ``G06F 16/245``; a bare main group gets ``/00``."""
    section, klass, subclass, main, sub = _parse_ipc(s)
    if main is None:
        raise ValueError(
            "IPC 分类号至少须写到大组，如 'G06F 16/00' / "
            "IPC symbol needs at least a main group, e.g. 'G06F 16/00'"
        )
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

_NICE_CLASSES: Final = 45


def trademark_registration_number(s: str) -> str:
    """CNIPA trademark registration number: 1-9 digits, no leading zero."""
    number = _fold(s)
    if not number:
        raise ValueError("商标注册号为空 / trademark registration number is empty")
    if not _is_digits(number):
        raise ValueError(
            "商标注册号只能含数字 / trademark registration number must contain digits only"
        )
    if number[0] == "0":
        raise ValueError(
            "商标注册号不能以 0 开头 / trademark registration number cannot start with 0"
        )
    if len(number) > 9:
        raise ValueError(
            f"商标注册号最多 9 位，现为 {len(number)} 位 / "
            f"trademark registration number has at most 9 digits, got {len(number)}"
        )
    return number


def nice_class(n: int | str) -> int:
    """Nice class number 1-45 (Nice Classification, classes 1-34 goods, 35-45 services)."""
    # bool is an int subclass; True is not a class number.
    if isinstance(n, bool):
        raise ValueError("尼斯分类应为 1 至 45 的数字 / Nice class must be a number from 1 to 45")
    if isinstance(n, str):
        text = _fold(n)
        if not _is_digits(text):
            raise ValueError(
                f"尼斯分类应为 1 至 45 的数字，不是 '{n.strip()}' / "
                f"Nice class must be a number from 1 to 45, not '{n.strip()}'"
            )
        n = int(text)
    if not 1 <= n <= _NICE_CLASSES:
        raise ValueError(
            f"尼斯分类应为 1 至 45，不是 {n} / Nice class must be from 1 to 45, not {n}"
        )
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
        raise ValueError("软件著作权登记号为空 / software copyright registration number is empty")
    m = _SOFTWARE_RE.fullmatch(text)
    if m is None:
        raise ValueError(
            "软件著作权登记号应形如 '2019SR0123456'（年份、'SR'、6–7 位数字） / "
            "software copyright registration number must look like '2019SR0123456' "
            "(year, 'SR', 6-7 digits)"
        )
    if m[1][:2] not in ("19", "20"):
        raise ValueError(
            f"软件著作权登记号的年份不可能是 '{m[1]}' / "
            f"year '{m[1]}' is impossible in a registration number"
        )
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
        raise ValueError("邮箱为空 / email address is empty")
    if len(address) > _EMAIL_MAX:
        raise ValueError(
            f"邮箱过长（最多 {_EMAIL_MAX} 个字符） / "
            f"email address is too long (at most {_EMAIL_MAX} characters)"
        )
    if any(c.isspace() for c in address):
        raise ValueError("邮箱不能含空格 / email address cannot contain spaces")
    if not address.isprintable():
        raise ValueError(
            "邮箱含不可见的控制字符 / email address contains an invisible control character"
        )
    if address.count("@") != 1:
        raise ValueError("邮箱须含且只含一个 '@' / email address must contain exactly one '@'")
    local, domain = address.split("@")
    if not local:
        raise ValueError("'@' 前缺少用户名 / the part before '@' is missing")
    if len(local) > _LOCAL_MAX:
        raise ValueError(
            f"'@' 前的部分过长（最多 {_LOCAL_MAX} 个字符） / "
            f"the part before '@' is too long (at most {_LOCAL_MAX} characters)"
        )
    if not domain:
        raise ValueError("'@' 后缺少域名 / the domain after '@' is missing")
    if "." not in domain:
        raise ValueError(
            f"域名 '{domain}' 缺少点，如 'example.com' / "
            f"domain '{domain}' needs a dot, e.g. 'example.com'"
        )
    if any(not label for label in domain.split(".")):
        raise ValueError(
            f"域名 '{domain}' 的两个点之间为空 / domain '{domain}' has an empty part between dots"
        )
    return f"{local}@{domain.lower()}"
