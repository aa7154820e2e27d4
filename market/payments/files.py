"""Payment files: the operator exports the instructions due by a value date as a file for
the exchange's bank, and closes the value date once the file was sent (docs/rules.md
§Payments out; the layout: docs/payment_file.md).

An instruction goes into a file only with its payee's settlement account
(market/payments/accounts.py); one whose payee has none is held back, with the reason shown
to the operator, until the account is set. Each export is a `payment_files` row keeping the
file's bytes; its instructions move from pending to in_file and name it.

Concurrency: an export and a closing take the value date's `payment_periods` row FOR
UPDATE first (inserted if new), so they run one after the other per value date: an export
after the closing is refused, a closing after an export sees its file. The instructions
are then locked FOR UPDATE in (due, id) order and only pending ones are taken — a second
export, of any value date, waits for the first's and re-reads them as in_file — and an
instruction names a single file (`file_id`), so it never goes out in two files.
"""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import date, datetime, time, timedelta
from typing import Any, Final, Literal

import msgspec

from market.accounts.permissions import OPERATE
from market.cases.policy import CHINA
from market.cases.services import china_today
from market.commands import UnitOfWork, command
from market.db import Conn, Queries, returned
from market.errors import Conflict, Invalid, NotFound

Q = Queries("payments")

HEADER: Final = ("序号", "收款户名", "收款账号", "开户行", "金额(元)", "用途/附言")
Held = Literal["payee_no_account", "party_not_here"]
MAX_LINES: Final = 5_000  # one file per value date may hold this many transfers


class ExportIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The value date the bank is to pay on: instructions due by its end (China) go out."""

    value_date: date


class CloseIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    value_date: date


class HeldOut(msgspec.Struct, frozen=True, kw_only=True):
    instruction_id: int
    reference: str
    amount_fen: int
    reason: Held


class FileOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    value_date: date
    line_count: int
    total_fen: int
    created_at: datetime
    period_closed: bool
    held: list[HeldOut] = []  # due, but not in the file: the payee has no account


class PeriodOut(msgspec.Struct, frozen=True, kw_only=True):
    value_date: date
    closed_at: datetime | None
    files: int


def yuan(fen: int) -> str:
    """An amount as the bank's file writes it: yuan with two decimals, no grouping."""
    return f"{fen // 100}.{fen % 100:02d}"


def held_reason(row: Any) -> Held | None:
    if row["account_number"] is not None:
        return None
    return "party_not_here" if row["payee_kind"] == "party" else "payee_no_account"


def render(rows: list[Any]) -> bytes:
    """The payment file: UTF-8 with BOM, CRLF, one transfer per line (docs/payment_file.md)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    for n, r in enumerate(rows, start=1):
        writer.writerow(
            (
                n,
                r["account_name"],
                r["account_number"],
                r["bank_name"],
                yuan(r["amount_fen"]),
                r["reference"],
            )
        )
    return "\ufeff".encode() + out.getvalue().encode("utf-8")


async def _period(uow: UnitOfWork, value_date: date) -> Any:
    await uow.conn.execute(Q.insert_period, value_date)
    return returned(await uow.conn.fetchrow(Q.period_locked, value_date))


def _end_of(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(), CHINA)


@command(OPERATE)
async def export_payment_file(uow: UnitOfWork, data: ExportIn) -> FileOut:
    """Export the pending instructions due by the end of `value_date` that have an account
    (module docstring). 409 for a closed value date, 422 for a past one or when nothing
    is payable — naming `value_date`, with nothing written."""
    conn = uow.conn
    if data.value_date < china_today(uow.at):
        raise Invalid("value_date_past", field="value_date", value_date=data.value_date)
    period = await _period(uow, data.value_date)
    if period["closed_at"] is not None:
        raise Conflict(
            "payment_period_closed", field="value_date", value_date=data.value_date.isoformat()
        )
    rows = await conn.fetch(Q.due_instructions_locked, _end_of(data.value_date), MAX_LINES)
    going = [r for r in rows if held_reason(r) is None]
    held = [
        HeldOut(
            instruction_id=r["id"],
            reference=r["reference"],
            amount_fen=r["amount_fen"],
            reason=held_reason(r) or "payee_no_account",
        )
        for r in rows
        if held_reason(r) is not None
    ]
    if not going:
        raise Invalid(
            "nothing_to_pay",
            field="value_date",
            value_date=data.value_date.isoformat(),
            held=len(held),
        )
    content = render(going)
    total = sum(r["amount_fen"] for r in going)
    made = returned(
        await conn.fetchrow(
            Q.insert_file,
            data.value_date,
            len(going),
            total,
            content,
            hashlib.sha256(content).digest(),
            uow.actor.user,
            uow.at,
        )
    )
    await conn.execute(
        Q.put_in_file, made["id"], [r["id"] for r in going], list(range(1, len(going) + 1))
    )
    uow.audit(
        "payment_file.export",
        "payment_file",
        made["id"],
        after={
            "value_date": data.value_date.isoformat(),
            "lines": len(going),
            "total_fen": total,
            "sha256": hashlib.sha256(content).hexdigest(),
            "held": [h.reference for h in held],
        },
    )
    return FileOut(
        id=made["id"],
        value_date=data.value_date,
        line_count=len(going),
        total_fen=total,
        created_at=made["created_at"],
        period_closed=False,
        held=held,
    )


@command(OPERATE)
async def close_payment_period(uow: UnitOfWork, data: CloseIn) -> PeriodOut:
    """The operator sent the value date's files: no more are exported for it. 409 naming
    `value_date` if it was closed before (nothing written)."""
    period = await _period(uow, data.value_date)
    if period["closed_at"] is not None:
        raise Conflict(
            "payment_period_closed", field="value_date", value_date=data.value_date.isoformat()
        )
    row = returned(await uow.conn.fetchrow(Q.close_period, data.value_date, uow.at, uow.actor.user))
    uow.audit(
        "payment_period.close",
        "payment_period",
        data.value_date.isoformat(),
        after={"files": row["files"]},
    )
    return msgspec.convert(dict(row), PeriodOut)


async def file_content(conn: Conn, file_id: int) -> tuple[date, bytes]:
    row = await conn.fetchrow(Q.file_content, file_id)
    if row is None:
        raise NotFound("not_found", field="file_id")
    return row["value_date"], bytes(row["content"])


async def list_files(conn: Conn, limit: int = 100) -> list[FileOut]:
    return [
        FileOut(
            id=r["id"],
            value_date=r["value_date"],
            line_count=r["line_count"],
            total_fen=r["total_fen"],
            created_at=r["created_at"],
            period_closed=r["closed_at"] is not None,
        )
        for r in await conn.fetch(Q.files, limit)
    ]
