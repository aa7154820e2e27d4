"""Bulk import of a bank's pledged portfolio from CSV (issue 3 item 2).

The flow: decode (UTF-8 with or without BOM, or GB18030 as Chinese Excel saves it) →
validate every row in Python → if any row is bad, reject the whole file with the list of
(line, column, reason) and write nothing → otherwise write everything in ONE transaction,
set-based: COPY the validated rows into a temp table, then one INSERT … SELECT … ON
CONFLICT … DO UPDATE per table. Re-uploading updates by key (pledgors by credit code,
assets by kind and number, pledges by registration number, loans by loan number) and a
pledge's assets become exactly the file's rows for it; nothing is ever duplicated. One
audit row records the import (file sha256, filename, counts), not one per row.

Concurrency: the write transaction first takes `pg_advisory_xact_lock` keyed by the bank's
organisation id (locks.lock_bank_registry), before touching any row. Two uploads of one
bank therefore write one after the other: the second sees the first's committed rows
(its created/updated counts are right) and its final state is exactly its own file — they
never interleave into a mix and never deadlock on each other's rows. Validation, the slow
part in Python, runs before the lock, so concurrent uploads still validate in parallel.
Different banks never wait on each other.

Progress: an import is a row in collateral_imports. Its counters (rows validated, rows
written) are updated every PROGRESS_EVERY rows through a separate pooled connection, so a
page can poll them while the write transaction is still open; the row turns 'done' in the
write transaction itself, i.e. exactly when the data is committed.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import hashlib
import io
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any, Final

import asyncpg
import msgspec

from market import audit, validators
from market.collateral import csv_format as fmt
from market.collateral.locks import lock_bank_registry
from market.collateral.models import ImportResult, RowError
from market.collateral.monitoring import business_day, refresh_flags
from market.collateral.rules import PatentType, patent_term_end
from market.db import Conn, Queries, returned
from market.errors import Invalid

Q = Queries("collateral")
log = logging.getLogger("market.collateral.import")

# (phase, rows done, rows in the file); phase is "validating" or "writing".
Progress = Callable[[str, int, int], Awaitable[None]]

ERROR_LIMIT: Final = 200  # errors kept and shown; all are counted
_ERRORS_HELD: Final = 5_000  # kept while validating, so the 200 shown are the first by line
PROGRESS_EVERY: Final = 500
MAX_ROWS: Final = 50_000
MAX_FILE_BYTES: Final = 20 * 1024 * 1024
DEFAULT_FILENAME: Final = "portfolio.csv"


class ImportRejected(Invalid):
    """The file was refused as a whole: `details` lists (line, column, reason)."""

    code = "invalid_csv"

    def __init__(self, filename: str, errors: Sequence[RowError], error_count: int) -> None:
        first = errors[0]
        where = f"line {first.line}, column {first.column}: " if first.column else ""
        if first.line and not first.column:
            where = f"line {first.line}: "
        more = ""
        if error_count > 1:
            more = f" ({error_count - 1} more problem{'s' if error_count > 2 else ''})"
        # The Chinese sentence says where; the reason itself (bilingual) follows once.
        where_zh = f"第 {first.line} 行" if first.line else "文件"
        if first.column:
            where_zh += f"「{first.column}」列"
        more_zh = f"，另有 {error_count - 1} 处问题" if error_count > 1 else ""
        super().__init__(
            f"{filename} 未导入，未写入任何数据：{where_zh}有误{more_zh}。 / "
            f"{filename} was not imported, nothing was written: {where}{first.reason}{more}",
            field="file",
            details=[msgspec.structs.asdict(e) for e in errors[:ERROR_LIMIT]],
        )
        self.errors = list(errors[:ERROR_LIMIT])
        self.error_count = error_count


# --- decoding --------------------------------------------------------------------------


class Undecodable(Exception):
    """The bytes are not text in an encoding the import reads; the message says why."""


NEITHER_ENCODING = "文件既不是 UTF-8 也不是 GB18030 编码 / file is neither UTF-8 nor GB18030"


def decode(data: bytes) -> tuple[str, str]:
    """(text, encoding): a BOM means UTF-8; else strict UTF-8; else strict GB18030."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise Undecodable(
            "文件为 UTF-16 编码（Excel 的“Unicode 文本”），请另存为“CSV UTF-8”或“CSV” / "
            "file is UTF-16 (Excel's 'Unicode text'); save it as 'CSV UTF-8' or 'CSV'"
        )
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data.decode("utf-8-sig"), "utf-8-sig"
        except UnicodeDecodeError:
            raise Undecodable(
                "文件以 UTF-8 BOM 开头，内容却不是 UTF-8 / "
                "file starts with a UTF-8 BOM but is not UTF-8"
            ) from None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "gb18030"
    except UnicodeDecodeError:
        raise Undecodable(NEITHER_ENCODING) from None


# --- validation ------------------------------------------------------------------------


class RowErrors:
    """The problems of a file: all counted, the first ERROR_LIMIT by line (then by the
    column order `keys`) shown."""

    def __init__(self, keys: Sequence[str]) -> None:
        self.count = 0
        self.items: list[RowError] = []
        self.order = {key: i for i, key in enumerate(keys)}

    def add(self, line: int, column: str, key: str, reason: str) -> None:
        self.count += 1
        if len(self.items) < _ERRORS_HELD:
            self.items.append(RowError(line=line, column=column, key=key, reason=reason))

    def failed(self) -> bool:
        return self.count > 0

    def first(self) -> list[RowError]:
        by_line = sorted(self.items, key=lambda e: (e.line, self.order.get(e.key, -1)))
        return by_line[:ERROR_LIMIT]


@dataclass(frozen=True)
class _Slot:
    index: int
    column: fmt.Column
    header: str


@dataclass
class Row:
    """One validated CSV row: parsed values by column key, plus what the file said."""

    line: int
    values: dict[str, Any]
    raw: dict[str, str] = field(repr=False)


@dataclass
class Validated:
    encoding: str
    rows: list[Row]
    total_rows: int
    errors: list[RowError]  # the first ERROR_LIMIT, by line
    error_count: int


# Excel shows long numbers in scientific notation and may save them that way, destroying
# the digits of an application number or credit code.
_SCIENTIFIC: Final = re.compile(r"[0-9](?:\.[0-9]+)?E\+?[0-9]+", re.IGNORECASE)
# ="000123": the usual trick to keep Excel from reading a code as a number.
_FORMULA_TEXT: Final = re.compile(r'="(.*)"', re.DOTALL)
_KIND_NAMES: Final = {
    "patent": "patents",
    "trademark": "trademarks",
    "software_copyright": "software copyrights",
}
# ZC 0006-2003 §4.2 application type digit (as validators.patent_type_code, which would
# validate the number a second time): 8 and 9 are PCT national-phase filings.
_TYPE_DIGITS: Final[dict[str, PatentType]] = {
    "1": "invention",
    "2": "utility_model",
    "3": "design",
    "8": "invention",
    "9": "utility_model",
}
_DATES_NOT_AFTER_TODAY: Final = (
    "pledge_registered_on",
    "disbursed_on",
    "default_date",
    "filing_date",
    "registered_on",
)


def _layout(header: list[str], errs: RowErrors) -> tuple[list[_Slot], list[int]]:
    """Which column each header cell is; unknown, duplicate or missing columns are errors."""
    slots: list[_Slot] = []
    unnamed: list[int] = []
    seen: dict[str, str] = {}
    chinese = 0
    for index, cell in enumerate(header):
        name = fmt.normalise_header(cell)
        if not name:
            unnamed.append(index)
            continue
        column = fmt.BY_HEADER.get(name)
        if column is None:
            close = difflib.get_close_matches(name, list(fmt.BY_HEADER), n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            errs.add(1, cell.strip(), "", f"unknown column '{cell.strip()}'{hint}")
            continue
        if column.key in seen:
            errs.add(
                1, cell.strip(), column.key, f"column appears twice (also as '{seen[column.key]}')"
            )
            continue
        seen[column.key] = cell.strip()
        chinese += name == column.header
        slots.append(_Slot(index, column, cell.strip()))
    for column in fmt.COLUMNS:
        if column.required and column.key not in seen:
            shown = column.header if chinese * 2 >= len(seen) else column.key
            errs.add(
                1,
                shown,
                column.key,
                f"required column is missing: add '{column.header}' (or '{column.key}')",
            )
    return slots, unnamed


def cell_text(cells: Sequence[str], index: int) -> str:
    """A cell's text, stripped (empty past the row's end); ="000123", Excel's way to keep a
    code as text, unwrapped."""
    cell = cells[index].strip() if index < len(cells) else ""
    if cell.startswith('="'):
        m = _FORMULA_TEXT.fullmatch(cell)
        cell = m[1].strip() if m else cell
    return cell


class _Failure(str):
    """A cell's parse error, remembered like a value."""


# Parsed cells by (column, text): the pledge columns repeat on every row of a pledge, and
# parsing each distinct text once keeps a 10,000-row file fast.
_Cache = dict[tuple[str, str], Any]


def _parse_cell(column: fmt.Column, cell: str, cache: _Cache) -> Any:
    try:
        return cache[(column.key, cell)]
    except KeyError:
        pass
    value: Any
    if _SCIENTIFIC.fullmatch(cell):
        value = _Failure(
            f"'{cell}' is a number Excel wrote in scientific notation; "
            "format the column as text and type the value again"
        )
    else:
        try:
            value = column.parse(cell)
        except ValueError as exc:
            value = _Failure(str(exc))
    cache[(column.key, cell)] = value
    return value


def _parse_row(
    line: int,
    cells: list[str],
    slots: list[_Slot],
    unnamed: list[int],
    width: int,
    today: date,
    errs: RowErrors,
    header_of: dict[str, str],
    cache: _Cache,
) -> Row | None:
    before = errs.count
    values: dict[str, Any] = {}
    raw: dict[str, str] = {}
    bad: set[str] = set()
    size = len(cells)
    for extra in (*unnamed, *range(width, size)):
        if extra < size and cells[extra].strip():
            errs.add(line, "", "", f"cell {extra + 1} has a value but its column has no header")
    for slot in slots:
        key = slot.column.key
        cell = cell_text(cells, slot.index)
        raw[key] = cell
        if not cell:
            if slot.column.required:
                errs.add(line, slot.header, key, "required; this cell cannot be empty")
                bad.add(key)
            continue
        value = _parse_cell(slot.column, cell, cache)
        if isinstance(value, _Failure):
            errs.add(line, slot.header, key, str(value))
            bad.add(key)
        else:
            values[key] = value

    def err(key: str, reason: str) -> None:
        errs.add(line, header_of[key], key, reason)
        bad.add(key)

    _check_asset(values, bad, err)
    for key in _DATES_NOT_AFTER_TODAY:
        day = values.get(key)
        if day is not None and day > today:
            err(key, f"{day.isoformat()} is after today ({today.isoformat()})")
    principal, outstanding = values.get("principal"), values.get("outstanding_principal")
    if principal is not None and outstanding is not None and outstanding > principal:
        err("outstanding_principal", "the outstanding principal exceeds the loan's principal")
    disbursed, defaulted = values.get("disbursed_on"), values.get("default_date")
    if disbursed is not None and defaulted is not None and defaulted < disbursed:
        err("default_date", "the loan cannot default before it was disbursed")
    if errs.count > before:
        return None
    values.setdefault("owners", [])
    if not values["owners"]:
        # The pledgor pledges its own IP: with no owners given, it is the owner.
        values["owners"] = [values["pledgor_name"]]
    return Row(line=line, values=values, raw=raw)


def _check_asset(values: dict[str, Any], bad: set[str], err: Callable[[str, str], None]) -> None:
    kind = values.get("asset_kind")
    if kind is None:
        return
    for key, only in fmt.ONLY_FOR.items():
        if only != kind and values.get(key) not in (None, []):
            err(key, f"applies to {_KIND_NAMES[only]} only; leave it empty for a {kind}")
            values.pop(key, None)
    number = values.get("asset_number")
    if kind == "patent":
        if number is not None:
            try:
                values["asset_number"] = number = validators.patent_application_number(number)
            except ValueError as exc:
                err("asset_number", str(exc))
                number = None
        filing = values.get("filing_date")
        if filing is None and "filing_date" not in bad:
            err("filing_date", "required for a patent")
        if number is None:
            return
        body = number.split(".")[0]
        digit = body[4] if len(body) == 12 else body[2]
        derived = _TYPE_DIGITS[digit]
        given = values.get("patent_type")
        if given is not None and given != derived:
            err(
                "patent_type",
                f"application number {number} is for a {derived.replace('_', ' ')} "
                f"(its type digit), not a {given.replace('_', ' ')}",
            )
            return
        values["patent_type"] = derived
        domestic = digit in "123"
        if filing is not None:
            year = int(body[:4]) if len(body) == 12 else validators.application_year(number)
            # The year in a domestic application number is the filing year (ZC 0006-2003);
            # PCT national-phase numbers (types 8, 9) carry the year of entry instead.
            if domestic and filing.year != year:
                err(
                    "filing_date",
                    f"filed in {filing.year} but application number {number} is from {year}",
                )
                return
            values["term_ends_on"] = patent_term_end(derived, filing)
        if derived == "design" and values.get("ipc_codes"):
            err("ipc_codes", "designs are classified by Locarno, not IPC; leave it empty")
    elif kind == "trademark":
        if number is not None:
            try:
                values["asset_number"] = validators.trademark_registration_number(number)
            except ValueError as exc:
                err("asset_number", str(exc))
        if not values.get("nice_classes") and "nice_classes" not in bad:
            err("nice_classes", "required for a trademark: its Nice classes, e.g. 9;42")
        if values.get("valid_until") is None and "valid_until" not in bad:
            err("valid_until", "required for a trademark: the last day of its registration")
    elif number is not None:
        try:
            values["asset_number"] = validators.software_copyright_registration_number(number)
        except ValueError as exc:
            err("asset_number", str(exc))


def _check_groups(rows: list[Row], errs: RowErrors, header_of: dict[str, str]) -> None:
    """Across rows: a pledge's rows agree; a pledgor, loan and asset are one thing each."""
    pledges: dict[str, Row] = {}
    pledgors: dict[str, Row] = {}
    loans: dict[str, Row] = {}
    assets: dict[tuple[str, str], Row] = {}

    def differ(row: Row, first: Row, key: str, what: str) -> None:
        errs.add(
            row.line,
            header_of[key],
            key,
            f"'{row.raw.get(key, '')}' differs from line {first.line} of {what} "
            f"('{first.raw.get(key, '')}' there)",
        )

    for row in rows:
        v = row.values
        reg = v["pledge_registration_no"]
        first = pledges.setdefault(reg, row)
        if first is not row:
            for key in fmt.PLEDGE_KEYS:
                if v.get(key) != first.values.get(key):
                    differ(row, first, key, f"the same pledge {reg}")
            continue  # the pledge's first row carries its pledgor and loan checks
        code = v["pledgor_credit_code"]
        first = pledgors.setdefault(code, row)
        for key in ("pledgor_name", "pledgor_region"):
            if first is not row and v.get(key) != first.values.get(key):
                differ(row, first, key, f"pledgor {code}")
        first = loans.setdefault(v["loan_no"], row)
        if first is not row:
            errs.add(
                row.line,
                header_of["loan_no"],
                "loan_no",
                f"loan {v['loan_no']} is already secured by pledge "
                f"{first.values['pledge_registration_no']} (line {first.line}); "
                "a loan appears under one pledge",
            )
    for row in rows:
        v = row.values
        key_ = (v["asset_kind"], v["asset_number"])
        first = assets.setdefault(key_, row)
        if first is row:
            continue
        reg = v["pledge_registration_no"]
        if first.values["pledge_registration_no"] == reg:
            errs.add(
                row.line,
                header_of["asset_number"],
                "asset_number",
                f"{v['asset_number']} is listed twice in pledge {reg} (also line {first.line})",
            )
            continue
        what = f"asset {v['asset_number']}"
        for key in (*fmt.ASSET_KEYS, "pledgor_credit_code"):
            if v.get(key) != first.values.get(key):
                differ(row, first, key, what)


async def validate(data: bytes, *, today: date, progress: Progress | None = None) -> Validated:
    """Decode and check every row; never raises for bad content (see Validated.errors)."""
    errs = RowErrors([c.key for c in fmt.COLUMNS])
    try:
        text, encoding = decode(data)
    except Undecodable as exc:
        errs.add(0, "", "", str(exc))
        return Validated("", [], 0, errs.first(), errs.count)
    records: list[list[str]] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for cells in reader:
            records.append(cells)
            if len(records) > MAX_ROWS + 1:
                errs.add(len(records), "", "", f"a file may have at most {MAX_ROWS:,} rows")
                break
    except csv.Error as exc:
        errs.add(len(records) + 1, "", "", f"not a valid CSV row: {exc}")
    if errs.failed():
        return Validated(encoding, [], 0, errs.first(), errs.count)
    if not records or not any(c.strip() for c in records[0]):
        errs.add(1, "", "", "the first line must be the header row with the column names")
        return Validated(encoding, [], 0, errs.first(), errs.count)
    if len(records[0]) == 1:
        for other in (";", "\t", "|"):
            if other in records[0][0]:
                shown = "tab" if other == "\t" else f"'{other}'"
                errs.add(1, "", "", f"columns must be separated by commas; this file uses {shown}")
                return Validated(encoding, [], 0, errs.first(), errs.count)
    slots, unnamed = _layout(records[0], errs)
    if errs.failed():
        return Validated(encoding, [], 0, errs.first(), errs.count)
    header_of = {c.key: c.header for c in fmt.COLUMNS} | {s.column.key: s.header for s in slots}
    width = len(records[0])
    data_lines = [
        (line, cells)
        for line, cells in enumerate(records[1:], start=2)
        if any(c.strip() for c in cells)  # blank rows Excel leaves behind are skipped
    ]
    total = len(data_lines)
    if total == 0:
        errs.add(2, "", "", "the file has a header but no data rows")
        return Validated(encoding, [], 0, errs.first(), errs.count)
    rows: list[Row] = []
    cache: _Cache = {}
    for n, (line, cells) in enumerate(data_lines, start=1):
        row = _parse_row(line, cells, slots, unnamed, width, today, errs, header_of, cache)
        if row is not None:
            rows.append(row)
        if progress is not None and (n % PROGRESS_EVERY == 0 or n == total):
            await progress("validating", n, total)
    _check_groups(rows, errs, header_of)
    return Validated(encoding, rows, total, errs.first(), errs.count)


# --- writing ---------------------------------------------------------------------------

COPY_COLUMNS: Final = (
    "line",
    "registration_no",
    "pledge_registered_on",
    "secured_amount_fen",
    "pledgor_credit_code",
    "pledgor_name",
    "pledgor_region",
    "loan_no",
    "principal_fen",
    "rate_bp",
    "outstanding_principal_fen",
    "outstanding_interest_fen",
    "disbursed_on",
    "default_date",
    "npl_class",
    "pool_code",
    "kind",
    "number",
    "title",
    "abstract",
    "patent_type",
    "filing_date",
    "term_ends_on",
    "ipc_codes",
    "annuity_paid_through",
    "nice_classes",
    "valid_until",
    "registered_on",
    "owners",
    "legal_status",
    "licences",
    "encumbrances",
)


def _record(row: Row) -> tuple[Any, ...]:
    v = row.values
    return (
        row.line,
        v["pledge_registration_no"],
        v.get("pledge_registered_on"),
        v["secured_amount"],
        v["pledgor_credit_code"],
        v["pledgor_name"],
        v.get("pledgor_region", ""),
        v["loan_no"],
        v["principal"],
        v["rate"],
        v["outstanding_principal"],
        v.get("outstanding_interest", 0),
        v.get("disbursed_on"),
        v.get("default_date"),
        v.get("npl_class"),
        v.get("pool_code") or None,
        v["asset_kind"],
        v["asset_number"],
        v["title"],
        v.get("abstract", ""),
        v.get("patent_type"),
        v.get("filing_date"),
        v.get("term_ends_on"),
        v.get("ipc_codes", []),
        v.get("annuity_paid_through"),
        v.get("nice_classes", []),
        v.get("valid_until"),
        v.get("registered_on"),
        v["owners"],
        v["legal_status"],
        v.get("licences", ""),
        v.get("encumbrances", ""),
    )


def _affected(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


async def write_rows(
    conn: Conn,
    at: datetime,
    *,
    bank_org_id: int,
    user_id: int,
    import_id: int,
    filename: str,
    sha256_hex: str,
    encoding: str,
    rows: list[Row],
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write validated rows into the bank's registry; in the caller's transaction.

    Takes the bank's registry lock first (see the module docstring), stages the rows with
    COPY, then upserts set-based, refreshes the monitoring flags and appends one audit row.
    Returns the summary (counts created / updated).
    """
    if not conn.is_in_transaction():
        raise RuntimeError("write_rows runs inside the import's transaction")
    await lock_bank_registry(conn, bank_org_id)
    await conn.execute(Q.drop_staging)
    await conn.execute(Q.create_staging)
    total = len(rows)
    for start in range(0, total, PROGRESS_EVERY):
        chunk = [_record(r) for r in rows[start : start + PROGRESS_EVERY]]
        await conn.copy_records_to_table(
            "collateral_import_rows", records=chunk, columns=COPY_COLUMNS
        )
        if progress is not None:
            await progress("writing", start + len(chunk), total)
    await conn.execute(Q.analyze_staging)
    existing = returned(await conn.fetchrow(Q.existing_counts, bank_org_id))
    distinct = {
        "pledgors": len({r.values["pledgor_credit_code"] for r in rows}),
        "assets": len({(r.values["asset_kind"], r.values["asset_number"]) for r in rows}),
        "pledges": len({r.values["pledge_registration_no"] for r in rows}),
        "loans": len({r.values["loan_no"] for r in rows}),
    }
    await conn.execute(Q.upsert_pledgors, bank_org_id, at)
    await conn.execute(Q.upsert_assets, bank_org_id, at)
    await conn.execute(Q.upsert_pledges, bank_org_id, at)
    removed = _affected(await conn.execute(Q.unlink_unlisted_assets, bank_org_id))
    await conn.execute(Q.link_assets, bank_org_id)
    await conn.execute(Q.upsert_loans, bank_org_id, at)
    await conn.execute(Q.drop_staging)
    flags = await refresh_flags(conn, at, bank_org_id)
    summary: dict[str, Any] = {"rows": total, "encoding": encoding}
    for what, count in distinct.items():
        summary[f"{what}_created"] = count - existing[what]
        summary[f"{what}_updated"] = existing[what]
    summary["links_removed"] = removed
    summary["flags_raised"] = flags.raised
    summary["flags_resolved"] = flags.resolved
    await audit.append(
        conn,
        at=at,
        chain_org_id=bank_org_id,
        actor_user_id=user_id,
        actor_org_id=bank_org_id,
        action="collateral.import",
        object_kind="collateral_import",
        object_id=import_id,
        after={"filename": filename, "sha256": sha256_hex, **summary},
    )
    return summary


# --- the import as a whole -------------------------------------------------------------


def clean_filename(name: str | None) -> str:
    """The file's own name without any folder a browser sent along; never empty."""
    base = PureWindowsPath(PurePosixPath(name or "").name).name.strip()
    base = "".join(ch for ch in base if ch.isprintable())[:200]
    return base or DEFAULT_FILENAME


def check_upload(data: bytes, max_bytes: int = MAX_FILE_BYTES) -> None:
    if not data:
        raise Invalid("文件为空 / the file is empty", field="file")
    if len(data) > max_bytes:
        raise Invalid(
            f"文件超过 {max_bytes // (1024 * 1024)} MB，请拆分后再导入 / "
            f"the file is larger than {max_bytes // (1024 * 1024)} MB; split it",
            field="file",
        )


async def record_upload(
    pool: asyncpg.Pool,
    at: datetime,
    *,
    bank_org_id: int,
    user_id: int,
    filename: str,
    data: bytes,
    status: str = "queued",
    via: str = "web",
) -> int:
    """Keep the uploaded file (with its sha256) as an import; returns its id."""
    check_upload(data)
    started = at if status != "queued" else None
    async with pool.acquire() as conn:
        import_id: int = await conn.fetchval(
            Q.insert_import,
            bank_org_id,
            user_id,
            clean_filename(filename),
            hashlib.sha256(data).digest(),
            data,
            status,
            via,
            at,
            started,
        )
    return import_id


class _Reporter:
    """Writes progress to the import's row on its own connection, then tells the caller."""

    def __init__(self, pool: asyncpg.Pool, import_id: int, then: Progress | None) -> None:
        self.pool, self.import_id, self.then = pool, import_id, then
        self.encoding = ""
        self.validated = 0

    async def __call__(self, phase: str, done: int, total: int) -> None:
        written = done if phase == "writing" else 0
        if phase == "writing":
            self.validated = total
        else:
            self.validated = done
        async with self.pool.acquire() as conn:
            await conn.execute(
                Q.import_progress,
                self.import_id,
                phase,
                total,
                self.validated,
                written,
                self.encoding or None,
            )
        if self.then is not None:
            await self.then(phase, done, total)


async def _run(
    pool: asyncpg.Pool,
    at: datetime,
    *,
    import_id: int,
    bank_org_id: int,
    user_id: int,
    filename: str,
    data: bytes,
    progress: Progress | None,
) -> ImportResult:
    reporter = _Reporter(pool, import_id, progress)
    try:
        checked = await validate(data, today=business_day(at), progress=reporter)
    except Exception:
        await _fail(pool, at, import_id)
        raise
    if checked.error_count:
        async with pool.acquire() as conn:
            await conn.execute(
                Q.reject_import,
                import_id,
                [msgspec.structs.asdict(e) for e in checked.errors],
                checked.error_count,
                checked.total_rows,
                checked.total_rows,
                checked.encoding or None,
                at,
            )
        raise ImportRejected(filename, checked.errors, checked.error_count)
    reporter.encoding = checked.encoding
    try:
        async with pool.acquire() as conn, conn.transaction():
            summary = await write_rows(
                conn,
                at,
                bank_org_id=bank_org_id,
                user_id=user_id,
                import_id=import_id,
                filename=filename,
                sha256_hex=hashlib.sha256(data).hexdigest(),
                encoding=checked.encoding,
                rows=checked.rows,
                progress=reporter,
            )
            # After the last progress write: the row is never locked while the other
            # connection updates it.
            await conn.execute(
                Q.finish_import, import_id, summary, checked.total_rows, checked.encoding, at
            )
    except Exception:
        await _fail(pool, at, import_id)
        raise
    return _result(import_id, filename, summary)


def _result(import_id: int, filename: str, summary: dict[str, Any]) -> ImportResult:
    fields = set(ImportResult.__struct_fields__)
    return ImportResult(
        import_id=import_id,
        filename=filename,
        **{k: v for k, v in summary.items() if k in fields},
    )


async def _fail(pool: asyncpg.Pool, at: datetime, import_id: int) -> None:
    log.exception("collateral import %s failed", import_id)
    reason = "the import failed inside the exchange and nothing was written; upload it again"
    async with pool.acquire() as conn:
        await conn.execute(
            Q.fail_import, import_id, [{"line": 0, "column": "", "key": "", "reason": reason}], at
        )


async def import_csv(
    pool: asyncpg.Pool,
    at: datetime,
    *,
    bank_org_id: int,
    user_id: int,
    filename: str | None,
    data: bytes,
    progress: Progress | None = None,
    via: str = "api",
) -> ImportResult:
    """Import a portfolio CSV now (the API's synchronous path); ImportRejected if any row
    is bad, with nothing written to the registry."""
    name = clean_filename(filename)
    import_id = await record_upload(
        pool,
        at,
        bank_org_id=bank_org_id,
        user_id=user_id,
        filename=name,
        data=data,
        status="validating",
        via=via,
    )
    return await _run(
        pool,
        at,
        import_id=import_id,
        bank_org_id=bank_org_id,
        user_id=user_id,
        filename=name,
        data=data,
        progress=progress,
    )


async def run_queued_import(
    pool: asyncpg.Pool, at: datetime, import_id: int, progress: Progress | None = None
) -> ImportResult | None:
    """Run an uploaded import if it is still queued (the worker's path); None if it was
    already claimed by another run. Raises ImportRejected like import_csv."""
    async with pool.acquire() as conn:
        claimed = await conn.fetchrow(Q.claim_import, import_id, at)
    if claimed is None:
        return None
    return await _run(
        pool,
        at,
        import_id=import_id,
        bank_org_id=claimed["bank_org_id"],
        user_id=claimed["uploaded_by"],
        filename=claimed["filename"],
        data=bytes(claimed["content"]),
        progress=progress,
    )


async def import_on_connection(
    conn: Conn,
    at: datetime,
    *,
    bank_org_id: int,
    user_id: int,
    filename: str,
    data: bytes,
    via: str = "demo",
) -> ImportResult:
    """Import on the caller's connection, inside its transaction if it has one (seeding).

    Same validation and write as import_csv, without progress; ImportRejected if any row
    is bad, before anything is written.
    """
    check_upload(data)
    name = clean_filename(filename)
    checked = await validate(data, today=business_day(at))
    if checked.error_count:
        raise ImportRejected(name, checked.errors, checked.error_count)
    async with conn.transaction():
        import_id: int = await conn.fetchval(
            Q.insert_import,
            bank_org_id,
            user_id,
            name,
            hashlib.sha256(data).digest(),
            data,
            "writing",
            via,
            at,
            at,
        )
        summary = await write_rows(
            conn,
            at,
            bank_org_id=bank_org_id,
            user_id=user_id,
            import_id=import_id,
            filename=name,
            sha256_hex=hashlib.sha256(data).hexdigest(),
            encoding=checked.encoding,
            rows=checked.rows,
        )
        await conn.execute(
            Q.finish_import, import_id, summary, checked.total_rows, checked.encoding, at
        )
    return _result(import_id, name, summary)
