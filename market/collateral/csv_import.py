"""Bulk import of a bank's pledged portfolio from CSV (docs/rules.md §Collateral and
monitoring).

The flow: decode (UTF-8 with or without BOM, or GB18030 as Chinese Excel saves it) →
validate every row in Python → if any row is bad, reject the whole file with the list of
its problems and write nothing → otherwise write everything in ONE transaction,
set-based: COPY the validated rows into a temp table, then one INSERT … SELECT … ON
CONFLICT … DO UPDATE per table. Re-uploading updates by key (pledgors by credit code,
assets by kind and number, pledges by registration number, loans by loan number) and a
pledge's assets brought by files become exactly the file's rows for it (an asset added by
the single-asset form, market/collateral/single.py, stays until a file lists it); nothing
is ever duplicated. One
audit row records the import (file sha256, filename, counts), not one per row.

Commands (market/commands.py): the bank starts an import (`start_import`, which keeps the
file, queued); the rest runs as the exchange (SYSTEM): `claim_import` makes a queued
import one run's, `record_progress` writes its counters, then `reject_import` keeps the
file's problems or `write_import` writes the registry; `fail_import` records a run that
broke, `sweep_imports` finds runs that were lost. `run_import` drives one run: the
worker's job for an upload of the page, the request itself for the API (`import_now`).

Problems: each is a LineProblem — a code, the line as the spreadsheet numbers it (the
header is line 1; none for the file as a whole), the column's key as its field, and
params, among them `column`, the header as the file wrote it. The import keeps codes and
params; the words are the catalogs' `problem.<code>`, in the reader's language, where
they are shown (the import page, the API).

Concurrency: the write transaction first takes `pg_advisory_xact_lock` keyed by the bank's
organisation id (locks.lock_bank_registry), before touching any row. Two uploads of one
bank therefore write one after the other: the second sees the first's committed rows
(its created/updated counts are right) and its final state is exactly its own file — they
never interleave into a mix and never deadlock on each other's rows. Validation, the slow
part in Python, runs before the lock, so concurrent uploads still validate in parallel.
Different banks never wait on each other.

Progress: an import is a row in collateral_imports. Its counters (rows validated, rows
written) are updated every PROGRESS_EVERY rows in transactions of their own, so a page can
poll them while the write transaction is still open; the row turns 'done' in the write
transaction itself, i.e. exactly when the data is committed.
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
from datetime import date, timedelta
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any, Final, Literal

import msgspec

from market import validators
from market.accounts.permissions import WRITE_COLLATERAL
from market.collateral import csv_format as fmt
from market.collateral.locks import lock_bank_registry
from market.collateral.models import ImportResult, ImportVia
from market.collateral.monitoring import business_day, refresh_flags
from market.collateral.rules import PatentType, patent_term_end
from market.commands import SYSTEM, Act, Context, UnitOfWork, command, run
from market.db import Queries, returned
from market.errors import BadValue, Invalid, LineProblem

Q = Queries("collateral")
QA = Queries("api")  # the ids an import names (sql/queries/api.sql)
log = logging.getLogger("market.collateral.import")

# (phase, rows done, rows in the file); phase is "validating" or "writing".
Progress = Callable[[str, int, int], Awaitable[None]]

ERROR_LIMIT: Final = 200  # problems kept and shown; all are counted
_ERRORS_HELD: Final = 5_000  # kept while validating, so the 200 shown are the first by line
PROGRESS_EVERY: Final = 500
MAX_ROWS: Final = 50_000
MAX_FILE_BYTES: Final = 20 * 1024 * 1024
DEFAULT_FILENAME: Final = "portfolio.csv"


class PortfolioRejected(Invalid):
    """The file was refused as a whole and nothing was written: `problems` holds its
    problems (the first ERROR_LIMIT by line), `count` counts them all."""

    def __init__(self, filename: str, problems: Sequence[LineProblem], count: int) -> None:
        super().__init__(
            "csv_rejected",
            field="file",
            problems=list(problems[:ERROR_LIMIT]),
            filename=filename,
            count=count,
        )

    @property
    def count(self) -> int:
        return int(self.params["count"])


# --- decoding --------------------------------------------------------------------------


class Undecodable(BadValue):
    """The bytes are not text in an encoding the import reads; the code says why."""


def decode(data: bytes) -> tuple[str, str]:
    """(text, encoding): a BOM means UTF-8; else strict UTF-8; else strict GB18030."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise Undecodable("csv_utf16")
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data.decode("utf-8-sig"), "utf-8-sig"
        except UnicodeDecodeError:
            raise Undecodable("csv_bom_not_utf8") from None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "gb18030"
    except UnicodeDecodeError:
        raise Undecodable("csv_not_utf8_or_gb18030") from None


# --- validation ------------------------------------------------------------------------


class Problems:
    """The problems of a file: all counted, the first ERROR_LIMIT by line (then by the
    column order `keys`) kept."""

    def __init__(self, keys: Sequence[str]) -> None:
        self.count = 0
        self.items: list[LineProblem] = []
        self.order = {key: i for i, key in enumerate(keys)}

    def add(
        self,
        line: int | None,
        code: str,
        *,
        key: str | None = None,
        column: str | None = None,
        **params: Any,
    ) -> None:
        """A problem at `line` (None: the file as a whole), in the column `key` whose
        header the file wrote as `column`."""
        self.count += 1
        if len(self.items) < _ERRORS_HELD:
            if column:
                params = {"column": column, **params}
            self.items.append(LineProblem(code=code, line=line, field=key, params=params))

    def failed(self) -> bool:
        return self.count > 0

    def first(self) -> list[LineProblem]:
        by_line = sorted(self.items, key=lambda p: (p.line or 0, self.order.get(p.field or "", -1)))
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
    errors: list[LineProblem]  # the first ERROR_LIMIT, by line
    error_count: int


# Excel shows long numbers in scientific notation and may save them that way, destroying
# the digits of an application number or credit code.
_SCIENTIFIC: Final = re.compile(r"[0-9](?:\.[0-9]+)?E\+?[0-9]+", re.IGNORECASE)
# ="000123": the usual trick to keep Excel from reading a code as a number.
_FORMULA_TEXT: Final = re.compile(r'="(.*)"', re.DOTALL)
# A column filled for a kind of asset it does not apply to (fmt.ONLY_FOR).
_ONLY_FOR_CODES: Final = {
    "patent": "csv_only_for_patents",
    "trademark": "csv_only_for_trademarks",
    "software_copyright": "csv_only_for_software",
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


def _layout(header: list[str], errs: Problems) -> tuple[list[_Slot], list[int]]:
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
            if close:
                errs.add(1, "csv_unknown_column_suggest", column=cell.strip(), suggestion=close[0])
            else:
                errs.add(1, "csv_unknown_column", column=cell.strip())
            continue
        if column.key in seen:
            errs.add(
                1,
                "csv_duplicate_column",
                key=column.key,
                column=cell.strip(),
                first=seen[column.key],
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
                "csv_missing_column",
                key=column.key,
                column=shown,
                header=column.header,
                name=column.key,
            )
    return slots, unnamed


def _is_example(cells: Sequence[str], slots: Sequence[_Slot]) -> bool:
    """The template's example row left in the file: its pledge, loan and asset numbers
    are the example's (csv_format.EXAMPLE), whatever else was edited. It is no pledge of
    the bank's, and imported it would stand in the registry as one."""
    given = {slot.column.key: cell_text(cells, slot.index) for slot in slots}
    return all(given.get(key) == fmt.EXAMPLE[key] for key in fmt.EXAMPLE_KEYS)


def cell_text(cells: Sequence[str], index: int) -> str:
    """A cell's text, stripped (empty past the row's end); ="000123", Excel's way to keep a
    code as text, unwrapped."""
    cell = cells[index].strip() if index < len(cells) else ""
    if cell.startswith('="'):
        m = _FORMULA_TEXT.fullmatch(cell)
        cell = m[1].strip() if m else cell
    return cell


@dataclass(frozen=True)
class _Failure:
    """A cell's parse error, remembered like a value."""

    code: str
    params: dict[str, Any]


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
        value = _Failure("csv_scientific_notation", {"value": cell})
    else:
        try:
            value = column.parse(cell)
        except BadValue as exc:
            value = _Failure(exc.code, exc.params)
    cache[(column.key, cell)] = value
    return value


def _parse_row(
    line: int,
    cells: list[str],
    slots: list[_Slot],
    unnamed: list[int],
    width: int,
    today: date,
    errs: Problems,
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
            errs.add(line, "csv_cell_without_header", cell=extra + 1)
    for slot in slots:
        key = slot.column.key
        cell = cell_text(cells, slot.index)
        raw[key] = cell
        if not cell:
            if slot.column.required:
                errs.add(line, "csv_cell_required", key=key, column=slot.header)
                bad.add(key)
            continue
        value = _parse_cell(slot.column, cell, cache)
        if isinstance(value, _Failure):
            errs.add(line, value.code, key=key, column=slot.header, **value.params)
            bad.add(key)
        else:
            values[key] = value

    def err(key: str, code: str, **params: Any) -> None:
        errs.add(line, code, key=key, column=header_of[key], **params)
        bad.add(key)

    _check_asset(values, bad, err)
    for key in _DATES_NOT_AFTER_TODAY:
        day = values.get(key)
        if day is not None and day > today:
            err(key, "csv_date_after_today", date=day.isoformat(), today=today.isoformat())
    principal, outstanding = values.get("principal"), values.get("outstanding_principal")
    if principal is not None and outstanding is not None and outstanding > principal:
        err(
            "outstanding_principal",
            "csv_outstanding_exceeds_principal",
            outstanding_fen=outstanding,
            principal_fen=principal,
        )
    disbursed, defaulted = values.get("disbursed_on"), values.get("default_date")
    if disbursed is not None and defaulted is not None and defaulted < disbursed:
        err(
            "default_date",
            "csv_default_before_disbursement",
            default_date=defaulted.isoformat(),
            disbursed_on=disbursed.isoformat(),
        )
    if errs.count > before:
        return None
    values.setdefault("owners", [])
    if not values["owners"]:
        # The pledgor pledges its own IP: with no owners given, it is the owner.
        values["owners"] = [values["pledgor_name"]]
    return Row(line=line, values=values, raw=raw)


def _check_asset(values: dict[str, Any], bad: set[str], err: Callable[..., None]) -> None:
    kind = values.get("asset_kind")
    if kind is None:
        return
    for key, only in fmt.ONLY_FOR.items():
        if only != kind and values.get(key) not in (None, []):
            err(key, _ONLY_FOR_CODES[only], kind=kind)
            values.pop(key, None)
    number = values.get("asset_number")
    if kind == "patent":
        if number is not None:
            try:
                values["asset_number"] = number = validators.patent_application_number(number)
            except BadValue as exc:
                err("asset_number", exc.code, **exc.params)
                number = None
        filing = values.get("filing_date")
        if filing is None and "filing_date" not in bad:
            err("filing_date", "csv_patent_needs_filing_date")
        if number is None:
            return
        body = number.split(".")[0]
        digit = body[4] if len(body) == 12 else body[2]
        derived = _TYPE_DIGITS[digit]
        given = values.get("patent_type")
        if given is not None and given != derived:
            err(
                "patent_type",
                "csv_patent_type_mismatch",
                number=number,
                digit=digit,
                expected=derived,
                given=given,
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
                    "csv_filing_year_mismatch",
                    filed_year=filing.year,
                    number=number,
                    number_year=year,
                )
                return
            values["term_ends_on"] = patent_term_end(derived, filing)
        if derived == "design" and values.get("ipc_codes"):
            err("ipc_codes", "csv_design_has_ipc")
    elif kind == "trademark":
        if number is not None:
            try:
                values["asset_number"] = validators.trademark_registration_number(number)
            except BadValue as exc:
                err("asset_number", exc.code, **exc.params)
        if not values.get("nice_classes") and "nice_classes" not in bad:
            err("nice_classes", "csv_trademark_needs_nice_classes")
        if values.get("valid_until") is None and "valid_until" not in bad:
            err("valid_until", "csv_trademark_needs_valid_until")
    elif number is not None:
        try:
            values["asset_number"] = validators.software_copyright_registration_number(number)
        except BadValue as exc:
            err("asset_number", exc.code, **exc.params)


def _check_groups(rows: list[Row], errs: Problems, header_of: dict[str, str]) -> None:
    """Across rows: a pledge's rows agree; a pledgor, loan and asset are one thing each."""
    pledges: dict[str, Row] = {}
    pledgors: dict[str, Row] = {}
    loans: dict[str, Row] = {}
    assets: dict[tuple[str, str], Row] = {}

    def differ(row: Row, first: Row, key: str, code: str, **what: Any) -> None:
        errs.add(
            row.line,
            code,
            key=key,
            column=header_of[key],
            value=row.raw.get(key, ""),
            first_line=first.line,
            first_value=first.raw.get(key, ""),
            **what,
        )

    for row in rows:
        v = row.values
        reg = v["pledge_registration_no"]
        first = pledges.setdefault(reg, row)
        if first is not row:
            for key in fmt.PLEDGE_KEYS:
                if v.get(key) != first.values.get(key):
                    differ(row, first, key, "csv_differs_in_pledge", pledge=reg)
            continue  # the pledge's first row carries its pledgor and loan checks
        code = v["pledgor_credit_code"]
        first = pledgors.setdefault(code, row)
        for key in ("pledgor_name", "pledgor_region"):
            if first is not row and v.get(key) != first.values.get(key):
                differ(row, first, key, "csv_differs_for_pledgor", credit_code=code)
        first = loans.setdefault(v["loan_no"], row)
        if first is not row:
            errs.add(
                row.line,
                "csv_loan_in_two_pledges",
                key="loan_no",
                column=header_of["loan_no"],
                loan_no=v["loan_no"],
                pledge=first.values["pledge_registration_no"],
                first_line=first.line,
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
                "csv_asset_twice_in_pledge",
                key="asset_number",
                column=header_of["asset_number"],
                number=v["asset_number"],
                pledge=reg,
                first_line=first.line,
            )
            continue
        for key in (*fmt.ASSET_KEYS, "pledgor_credit_code"):
            if v.get(key) != first.values.get(key):
                differ(row, first, key, "csv_differs_for_asset", number=v["asset_number"])


async def validate(data: bytes, *, today: date, progress: Progress | None = None) -> Validated:
    """Decode and check every row; never raises for bad content (see Validated.errors)."""
    errs = Problems([c.key for c in fmt.COLUMNS])

    def refused(encoding: str = "") -> Validated:
        return Validated(encoding, [], 0, errs.first(), errs.count)

    try:
        text, encoding = decode(data)
    except Undecodable as exc:
        errs.add(None, exc.code, **exc.params)
        return refused()
    records: list[list[str]] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for cells in reader:
            records.append(cells)
            if len(records) > MAX_ROWS + 1:
                errs.add(len(records), "csv_too_many_rows", max=MAX_ROWS)
                break
    except csv.Error:
        errs.add(len(records) + 1, "csv_unreadable_row")
    if errs.failed():
        return refused(encoding)
    if not records or not any(c.strip() for c in records[0]):
        errs.add(1, "csv_no_header")
        return refused(encoding)
    if len(records[0]) == 1:
        if "\t" in records[0][0]:
            errs.add(1, "csv_tab_separated")
            return refused(encoding)
        for other in (";", "|"):
            if other in records[0][0]:
                errs.add(1, "csv_wrong_separator", separator=other)
                return refused(encoding)
    slots, unnamed = _layout(records[0], errs)
    if errs.failed():
        return refused(encoding)
    header_of = {c.key: c.header for c in fmt.COLUMNS} | {s.column.key: s.header for s in slots}
    width = len(records[0])
    data_lines = [
        (line, cells)
        for line, cells in enumerate(records[1:], start=2)
        if any(c.strip() for c in cells)  # blank rows Excel leaves behind are skipped
    ]
    total = len(data_lines)
    if total == 0:
        errs.add(2, "csv_no_data_rows")
        return refused(encoding)
    rows: list[Row] = []
    cache: _Cache = {}
    for n, (line, cells) in enumerate(data_lines, start=1):
        if _is_example(cells, slots):
            errs.add(line, "csv_example_row")
            continue
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


# --- the commands ----------------------------------------------------------------------


def clean_filename(name: str | None) -> str:
    """The file's own name without any folder a browser sent along; never empty."""
    base = PureWindowsPath(PurePosixPath(name or "").name).name.strip()
    base = "".join(ch for ch in base if ch.isprintable())[:200]
    return base or DEFAULT_FILENAME


def check_upload(data: bytes, max_bytes: int = MAX_FILE_BYTES) -> None:
    if not data:
        raise Invalid("csv_empty", field="file")
    if len(data) > max_bytes:
        raise Invalid("csv_too_large", field="file", max_mb=max_bytes // (1024 * 1024))


class StartImport(msgspec.Struct, frozen=True, kw_only=True):
    """An uploaded portfolio file. One from the page ("web") is run by the worker; one
    from the API ("api") or the demo seeding ("demo") by the request that started it."""

    content: bytes
    filename: str | None = None
    # "form": one asset entered on the page (market/collateral/single.py), run by the
    # request; it adds its asset to its pledge and removes none.
    via: ImportVia = "web"


class Started(msgspec.Struct, frozen=True, kw_only=True):
    import_id: int
    filename: str


@command(WRITE_COLLATERAL)
async def start_import(uow: UnitOfWork, data: StartImport) -> Started:
    """Keep the uploaded file (with its sha256) as a queued import of the caller's bank.

    It reads and locks nothing else, so uploads never wait for each other; exactly one
    run then claims the import (claim_import).
    """
    check_upload(data.content)
    name = clean_filename(data.filename)
    import_id: int = await uow.conn.fetchval(
        Q.insert_import,
        uow.actor.org,
        uow.actor.user,
        name,
        hashlib.sha256(data.content).digest(),
        data.content,
        "queued",
        data.via,
        uow.at,
        None,
    )
    return Started(import_id=import_id, filename=name)


class Claimed(msgspec.Struct, frozen=True, kw_only=True):
    import_id: int
    bank_org_id: int
    uploaded_by: int
    filename: str
    content: bytes
    via: str = "web"


@command(None)
async def claim_import(uow: UnitOfWork, import_id: int) -> Claimed | None:
    """Make a queued import this run's ('validating'); None if another run has it.

    The UPDATE … WHERE status = 'queued' is the claim: of two runs of one import (a job
    delivered twice), one updates the row and the other finds nothing to do.
    """
    row = await uow.conn.fetchrow(Q.claim_import, import_id, uow.at)
    if row is None:
        return None
    return Claimed(
        import_id=row["id"],
        bank_org_id=row["bank_org_id"],
        uploaded_by=row["uploaded_by"],
        filename=row["filename"],
        content=bytes(row["content"]),
        via=row["via"],
    )


class ImportProgress(msgspec.Struct, frozen=True, kw_only=True):
    import_id: int
    phase: Literal["validating", "writing"]
    total_rows: int
    validated_rows: int
    written_rows: int
    encoding: str | None = None


@command(None)
async def record_progress(uow: UnitOfWork, data: ImportProgress) -> None:
    """A running import's counters, in a transaction of their own: a page polling them
    sees them while the import's write transaction is still open. Only a running import
    is updated (one that finished meanwhile keeps its final counts)."""
    await uow.conn.execute(
        Q.import_progress,
        data.import_id,
        data.phase,
        data.total_rows,
        data.validated_rows,
        data.written_rows,
        data.encoding,
    )


class RejectImport(msgspec.Struct, frozen=True, kw_only=True):
    import_id: int
    problems: list[LineProblem]  # the first ERROR_LIMIT, by line
    count: int  # all of them
    total_rows: int
    encoding: str | None = None


@command(None)
async def reject_import(uow: UnitOfWork, data: RejectImport) -> None:
    """The file's problems kept with the import, as codes and params; nothing is written
    to the registry (so no lock is needed)."""
    await uow.conn.execute(
        Q.reject_import,
        data.import_id,
        data.problems,
        data.count,
        data.total_rows,
        data.total_rows,
        data.encoding,
        uow.at,
    )


@command(None)
async def fail_import(uow: UnitOfWork, import_id: int) -> None:
    """An import that broke inside the exchange: failed, with nothing written (its write
    transaction rolled back). One that finished already stays as it is."""
    await uow.conn.execute(
        Q.fail_import, import_id, [LineProblem(code="csv_import_failed")], uow.at
    )


class WriteImport(msgspec.Struct, frozen=True, kw_only=True):
    """A validated file to write into its bank's registry."""

    import_id: int
    bank_org_id: int
    uploaded_by: int
    filename: str
    sha256_hex: str
    encoding: str
    total_rows: int
    rows: list[Row]
    # Where the counters go meanwhile (record_progress, in transactions of their own).
    progress: Progress | None = None
    # A file makes each pledge's assets the file's (those files brought); one asset from
    # the form is added to its pledge, and no other is removed (docs/rules.md §Collateral
    # and monitoring).
    adds_only: bool = False


@command(None)
async def write_import(uow: UnitOfWork, data: WriteImport) -> ImportResult:
    """Write a validated file into the bank's registry, refresh the bank's monitoring
    flags, audit the import and mark it done, all in this unit of work. A file replaces
    each of its pledges' assets brought by files; one asset from the form (`adds_only`)
    is added to its pledge.

    Concurrency: the bank's registry lock is taken first, before any row (see the module
    docstring), so two imports of one bank, or an import and the monitoring run, write one
    after the other. The rows are staged with COPY, then upserted set-based.
    """
    conn = uow.conn
    bank = data.bank_org_id
    await lock_bank_registry(conn, bank)
    await conn.execute(Q.drop_staging)
    await conn.execute(Q.create_staging)
    rows = data.rows
    total = len(rows)
    for start in range(0, total, PROGRESS_EVERY):
        chunk = [_record(r) for r in rows[start : start + PROGRESS_EVERY]]
        await conn.copy_records_to_table(
            "collateral_import_rows", records=chunk, columns=COPY_COLUMNS
        )
        if data.progress is not None:
            await data.progress("writing", start + len(chunk), total)
    await conn.execute(Q.analyze_staging)
    existing = returned(await conn.fetchrow(Q.existing_counts, bank))
    assets_before = {r["id"] for r in await conn.fetch(QA.import_asset_ids, bank)}
    loans_before = {r["id"] for r in await conn.fetch(QA.import_loan_ids, bank)}
    distinct = {
        "pledgors": len({r.values["pledgor_credit_code"] for r in rows}),
        "assets": len({(r.values["asset_kind"], r.values["asset_number"]) for r in rows}),
        "pledges": len({r.values["pledge_registration_no"] for r in rows}),
        "loans": len({r.values["loan_no"] for r in rows}),
    }
    await conn.execute(Q.upsert_pledgors, bank, uow.at)
    await conn.execute(Q.upsert_assets, bank, uow.at)
    await conn.execute(Q.upsert_pledges, bank, uow.at)
    removed = 0
    if not data.adds_only:
        removed = _affected(await conn.execute(Q.unlink_unlisted_assets, bank))
    await conn.execute(Q.link_assets, bank, "form" if data.adds_only else "csv")
    await conn.execute(Q.upsert_loans, bank, uow.at)
    # The ids the file created and those it found (and updated where they differed).
    assets_after = [r["id"] for r in await conn.fetch(QA.import_asset_ids, bank)]
    loans_after = [r["id"] for r in await conn.fetch(QA.import_loan_ids, bank)]
    await conn.execute(Q.drop_staging)
    flags = await refresh_flags(uow, bank)
    summary: dict[str, Any] = {"rows": total, "encoding": data.encoding}
    for what, count in distinct.items():
        summary[f"{what}_created"] = count - existing[what]
        summary[f"{what}_updated"] = existing[what]
    summary["links_removed"] = removed
    summary["flags_raised"] = flags.raised
    summary["flags_resolved"] = flags.resolved
    # The exchange writes; the person who uploaded the file is named with it.
    uow.audit(
        "collateral.import",
        "collateral_import",
        data.import_id,
        chain_org_id=bank,
        after={
            "filename": data.filename,
            "sha256": data.sha256_hex,
            "uploaded_by": data.uploaded_by,
            "adds_only": data.adds_only,
            **summary,
        },
    )
    # After the last progress write: the row is never locked while another transaction
    # updates its counters.
    await conn.execute(
        Q.finish_import, data.import_id, summary, data.total_rows, data.encoding, uow.at
    )
    # The ids answer the request that ran the import; the import's row and its audit
    # keep the counts.
    return msgspec.structs.replace(
        _result(data.import_id, data.filename, summary),
        asset_ids_created=[i for i in assets_after if i not in assets_before],
        asset_ids_updated=sorted(assets_before),
        loan_ids_created=[i for i in loans_after if i not in loans_before],
        loan_ids_updated=sorted(loans_before),
    )


class Sweep(msgspec.Struct, frozen=True, kw_only=True):
    stale_after: timedelta  # a run claimed longer ago than this has lost its worker
    queued_after: timedelta  # a web import queued longer ago than this may have lost its job


class Swept(msgspec.Struct, frozen=True, kw_only=True):
    enqueue: list[int]  # web imports to enqueue (again)
    failed: list[int]  # imports run by a request that was lost


@command(None)
async def sweep_imports(uow: UnitOfWork, data: Sweep) -> Swept:
    """Imports whose run was lost: a web import claimed long ago is queued again (its
    transaction rolled back, so running it from the start is safe), one started by a
    request is failed, and web imports still queued are listed to be enqueued again.

    Each UPDATE only touches rows still in the state it looks for, so a run finishing
    meanwhile keeps its result.
    """
    conn = uow.conn
    stale = await conn.fetch(Q.requeue_stale_imports, uow.at - data.stale_after)
    failed = await conn.fetch(
        Q.fail_stale_api_imports,
        uow.at - data.stale_after,
        uow.at,
        [LineProblem(code="csv_import_interrupted")],
    )
    waiting = await conn.fetch(Q.queued_imports, uow.at - data.queued_after)
    return Swept(
        enqueue=sorted({r["id"] for r in waiting} | {r["id"] for r in stale}),
        failed=sorted(r["id"] for r in failed),
    )


# --- running an import -----------------------------------------------------------------


class _Reporter:
    """Writes progress to the import's row (record_progress), then tells the caller."""

    def __init__(self, ctx: Context, import_id: int, then: Progress | None) -> None:
        self.ctx, self.import_id, self.then = ctx, import_id, then
        self.encoding = ""
        self.validated = 0

    async def __call__(self, phase: str, done: int, total: int) -> None:
        written = done if phase == "writing" else 0
        self.validated = total if phase == "writing" else done
        await run(
            record_progress,
            ImportProgress(
                import_id=self.import_id,
                phase="writing" if phase == "writing" else "validating",
                total_rows=total,
                validated_rows=self.validated,
                written_rows=written,
                encoding=self.encoding or None,
            ),
            ctx=self.ctx,
            actor=SYSTEM,
        )
        if self.then is not None:
            await self.then(phase, done, total)


def _result(import_id: int, filename: str, summary: dict[str, Any]) -> ImportResult:
    fields = set(ImportResult.__struct_fields__)
    return ImportResult(
        import_id=import_id,
        filename=filename,
        **{k: v for k, v in summary.items() if k in fields},
    )


async def _fail(ctx: Context, import_id: int) -> None:
    log.exception("collateral import %s failed", import_id)
    await run(fail_import, import_id, ctx=ctx, actor=SYSTEM)


async def run_import(
    ctx: Context, import_id: int, progress: Progress | None = None
) -> ImportResult | None:
    """Run an import that is still queued, as the exchange: claim, validate, then write
    it or keep its problems. None if another run claimed it; PortfolioRejected if the
    file has problems (kept with the import, nothing written)."""
    claimed = await run(claim_import, import_id, ctx=ctx, actor=SYSTEM)
    if claimed is None:
        return None
    reporter = _Reporter(ctx, import_id, progress)
    try:
        checked = await validate(
            claimed.content, today=business_day(ctx.clock.now()), progress=reporter
        )
    except Exception:
        await _fail(ctx, import_id)
        raise
    if checked.error_count:
        await run(
            reject_import,
            RejectImport(
                import_id=import_id,
                problems=checked.errors,
                count=checked.error_count,
                total_rows=checked.total_rows,
                encoding=checked.encoding or None,
            ),
            ctx=ctx,
            actor=SYSTEM,
        )
        raise PortfolioRejected(claimed.filename, checked.errors, checked.error_count)
    reporter.encoding = checked.encoding
    try:
        return await run(
            write_import,
            WriteImport(
                import_id=import_id,
                bank_org_id=claimed.bank_org_id,
                uploaded_by=claimed.uploaded_by,
                filename=claimed.filename,
                sha256_hex=hashlib.sha256(claimed.content).hexdigest(),
                encoding=checked.encoding,
                total_rows=checked.total_rows,
                rows=checked.rows,
                progress=reporter,
                adds_only=claimed.via == "form",
            ),
            ctx=ctx,
            actor=SYSTEM,
        )
    except Exception:
        await _fail(ctx, import_id)
        raise


async def import_now(act: Act, data: StartImport, progress: Progress | None = None) -> ImportResult:
    """Start an import as the caller and run it in this request (the API, the demo):
    its result, or PortfolioRejected with nothing written to the registry."""
    started = await act(start_import, data)
    result = await run_import(act.ctx, started.import_id, progress)
    if result is None:  # only the worker claims imports, and only those of the page
        raise RuntimeError(f"import {started.import_id} was claimed by another run")
    return result
