"""One asset by form: the portfolio CSV's columns as a page's fields, for a bank that has
one patent (or trademark, or software copyright) to register and no file to make.

There is one way to read a pledged asset: the form's fields are the CSV's columns
(csv_format.COLUMNS, by their keys), made into a one-line file and checked by the
import's own validator (csv_import.validate) — the same parsers and the same rules, each
problem named by its column, which is the form's field. Nothing is written while one
remains. A clean line is then written by the import itself (csv_import.import_now, as an
import "via" the form, kept with its content and audited like any), which adds the asset
to its pledge and removes none of the pledge's others. A later CSV file replaces only the
assets files brought (docs/rules.md §Collateral and monitoring).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import date
from typing import Annotated, Any, Final

import msgspec
from msgspec import Meta

from market.collateral import csv_format as fmt
from market.collateral import csv_import
from market.collateral.models import ImportResult
from market.collateral.monitoring import business_day
from market.commands import Act
from market.db import Conn, Queries
from market.errors import Invalid, LineProblem, NotFound

Q = Queries("collateral")
FILENAME: Final = "asset-form.csv"
FIELDS: Final[tuple[str, ...]] = tuple(c.key for c in fmt.COLUMNS)
# What a new form starts with: the kind the exchange mostly sees, in force.
DEFAULTS: Final[dict[str, str]] = {"asset_kind": "专利", "legal_status": "有效"}
_NPL_WORDS: Final = {"substandard": "次级", "doubtful": "可疑", "loss": "损失"}


def as_csv(values: Mapping[str, str]) -> bytes:
    """The form's fields as a one-line portfolio file (headers: the columns' keys)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(FIELDS)
    writer.writerow([values.get(key, "").strip() for key in FIELDS])
    return out.getvalue().encode("utf-8")


async def problems(values: Mapping[str, str], today: date) -> list[LineProblem]:
    """What is wrong with the form, by the import's own rules: each problem's field is the
    column's key (None for the line as a whole)."""
    checked = await csv_import.validate(as_csv(values), today=today)
    return [
        # An empty required field reads as the form's "required", not a spreadsheet cell's.
        LineProblem(code="required", field=p.field) if p.code == "csv_cell_required" else p
        for p in checked.errors
    ]


async def add_asset(act: Act, values: Mapping[str, str]) -> ImportResult:
    """Add the asset the fields describe to its pledge, as the caller (WRITE_COLLATERAL):
    refused, naming the field (every problem in `problems`), with nothing written; else
    written by the import, via the form (csv_import.write_import with `adds_only`)."""
    found = await problems(values, business_day(act.ctx.clock.now()))
    if found:
        first = found[0]
        raise Invalid(first.code, field=first.field, problems=found, **first.params)
    return await csv_import.import_now(
        act, csv_import.StartImport(content=as_csv(values), filename=FILENAME, via="form")
    )


# The API's body: the CSV's columns by their keys, each as the cell's text (a field left
# out is an empty cell).
_Cell = Annotated[str, Meta(max_length=5000)]
AssetLine: Any = msgspec.defstruct(
    "AssetLine",
    [(key, _Cell, "") for key in FIELDS],
    kw_only=True,
    forbid_unknown_fields=True,
)


# The API's example: the CSV template's example line with numbers of its own (the template's
# line itself is refused as the template's, csv_example_row).
EXAMPLE: Final[dict[str, str]] = {
    key: value
    for key, value in {
        **fmt.EXAMPLE,
        "pledge_registration_no": "Y2023110000456",
        "loan_no": "JD2023-0456",
        "asset_number": "202110654321.3",
    }.items()
    if value
}


def _yuan(fen: int | None) -> str:
    return "" if fen is None else f"{fen / 100:.2f}"


def _day(value: date | None) -> str:
    return "" if value is None else value.isoformat()


async def pledge_values(conn: Conn, bank_org_id: int, pledge_id: int) -> dict[str, str]:
    """An existing pledge's columns (pledge, pledgor, loan), to add an asset to it."""
    row = await conn.fetchrow(Q.pledge_for_form, bank_org_id, pledge_id)
    if row is None:
        raise NotFound("not_found")
    rate = row["rate_bp"]
    return {
        "pledge_registration_no": row["registration_no"],
        "pledge_registered_on": _day(row["registered_on"]),
        "secured_amount": _yuan(row["secured_amount_fen"]),
        "pledgor_name": row["pledgor_name"],
        "pledgor_credit_code": row["credit_code"],
        "pledgor_region": row["region"] or "",
        "loan_no": row["loan_no"] or "",
        "principal": _yuan(row["principal_fen"]),
        "rate": "" if rate is None else f"{rate / 100:g}",
        "outstanding_principal": _yuan(row["outstanding_principal_fen"]),
        "outstanding_interest": _yuan(row["outstanding_interest_fen"]),
        "disbursed_on": _day(row["disbursed_on"]),
        "default_date": _day(row["default_date"]),
        "npl_class": _NPL_WORDS.get(row["npl_class"] or "", ""),
        "pool_code": row["pool_code"] or "",
    }
