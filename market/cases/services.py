"""Disposal cases: open a case on a defaulted loan, value its collateral, disclose documents.

Each change is a command (market/commands.py) acting for the bank whose user or token
calls it; its audit row (chain = the bank's organisation) commits with it, so a refused
request changes nothing. Every query names the bank: another bank's case, loan or
document is "not found" (404), never "forbidden".

Concurrency: opening a case locks the loan row, so two "open case" clicks take turns and
the second sees the first's case (409); the unique partial index disposal_cases_open_loan
is the backstop. Claim edits, valuations and documents lock the case row, so a valuation
supersedes exactly the one before it (valuations_current) and an upload cannot slip in
next to a removal.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import msgspec

from market.accounts.models import OrgDocumentOut
from market.accounts.permissions import WRITE_COLLATERAL
from market.cases import checklist, filetypes, storage
from market.cases.checklist import DisclosureStatus
from market.cases.models import (
    AppraisalIn,
    CaseAssetOut,
    CaseForLot,
    CaseOut,
    CaseSummary,
    ChangeClaim,
    Claim,
    DocumentOut,
    FlagOut,
    InternalIn,
    LotRef,
    OpenCase,
    RecordValuation,
    RemoveDocument,
    UploadDocument,
    ValuationOut,
)
from market.cases.policy import (
    CHINA,
    DEFAULT_DOCUMENT_POLICY,
    UNPUBLISHED_LOT_STATES,
    DocumentPolicy,
)
from market.cases.valuation import (
    DEFAULT_DIMENSION_WEIGHTS,
    DEFAULT_INDICATOR_WEIGHTS,
    InternalPolicy,
    Line,
    add_months,
    appraisal_dates,
    asset_shares,
    governs,
    internal_valuation,
)
from market.commands import UnitOfWork, command
from market.db import Conn, Queries, returned
from market.errors import Conflict, Invalid, NotFound

Q = Queries("cases")
QP = Queries("pledgor")
_UNPUBLISHED = sorted(UNPUBLISHED_LOT_STATES)


def china_today(at: datetime) -> date:
    return at.astimezone(CHINA).date()


def _reference(at: datetime, number: int) -> str:
    return f"CZ-{china_today(at).year}-{number:06d}"


def document_out(row: asyncpg.Record) -> DocumentOut:
    return DocumentOut(
        id=row["id"],
        item=row["item"],
        filename=row["filename"],
        content_type=row["content_type"],
        size_bytes=row["size_bytes"],
        sha256=bytes(row["sha256"]).hex(),
        uploaded_at=row["uploaded_at"],
    )


_EXPLANATION = msgspec.json.Decoder(list[Line])


def _explanation(stored: str) -> list[Line]:
    """The stored explanation: its lines as JSON; text that is not (a valuation written by
    hand into the table) is shown as it is, as one line."""
    if not stored:
        return []
    try:
        return _EXPLANATION.decode(stored)
    except msgspec.DecodeError:
        return [Line(key="cases.explain.recorded", params={"text": stored})]


def _valuation(row: asyncpg.Record) -> ValuationOut:
    return msgspec.convert(
        {**dict(row), "explanation": _explanation(row["explanation"])}, ValuationOut
    )


async def _published(conn: Conn, bank_org_id: int, case_id: int) -> bool:
    return bool(await conn.fetchval(Q.case_has_published_lot, bank_org_id, case_id, _UNPUBLISHED))


async def _lock_open_case(conn: Conn, bank_org_id: int, case_id: int) -> asyncpg.Record:
    case = await conn.fetchrow(Q.lock_case, bank_org_id, case_id)
    if case is None:
        raise NotFound("no_such_case")
    if case["status"] != "open":
        raise Conflict("case_closed", reference=case["reference"])
    return case


# --- opening a case ---------------------------------------------------------------------


@command(WRITE_COLLATERAL)
async def open_case(uow: UnitOfWork, data: OpenCase) -> CaseOut:
    """Open a disposal case on one of the bank's defaulted loans.

    Two opens of one loan take turns on the loan's row lock (`lock_loan`), so the second
    finds the first's case and is refused; the unique partial index on open cases is the
    backstop."""
    conn, bank_org_id = uow.conn, uow.actor.org
    loan = await conn.fetchrow(Q.lock_loan, bank_org_id, data.loan_id)
    if loan is None:
        raise NotFound("not_found", field="loan_id")
    if loan["default_date"] is None and loan["npl_class"] is None:
        raise Invalid("loan_not_defaulted", field="loan_id", loan_no=loan["loan_no"])
    twin = await conn.fetchval(Q.open_case_of_loan, bank_org_id, data.loan_id)
    if twin is not None:
        raise Conflict("case_already_open", field="loan_id", loan_no=loan["loan_no"])
    in_pledge = (
        []
        if loan["pledge_id"] is None
        else [r["id"] for r in await conn.fetch(Q.pledge_assets, bank_org_id, loan["pledge_id"])]
    )
    if not in_pledge:
        raise Invalid("loan_has_no_pledged_assets", field="loan_id", loan_no=loan["loan_no"])
    if data.asset_ids is None:
        asset_ids = in_pledge
    else:
        strangers = sorted(set(data.asset_ids) - set(in_pledge))
        if strangers:
            raise Invalid("assets_not_in_pledge", field="asset_ids", asset_ids=strangers)
        asset_ids = sorted(set(data.asset_ids))
    principal = (
        loan["outstanding_principal_fen"] if data.principal_fen is None else data.principal_fen
    )
    interest = loan["outstanding_interest_fen"] if data.interest_fen is None else data.interest_fen
    reference = _reference(uow.at, await conn.fetchval(Q.next_case_number))
    try:
        async with conn.transaction():  # a savepoint: a lost race is refused cleanly
            case_id: int = await conn.fetchval(
                Q.insert_case,
                bank_org_id,
                data.loan_id,
                reference,
                principal,
                interest,
                data.costs_fen,
                data.notes.strip(),
                uow.actor.user,
                uow.at,
            )
    except asyncpg.UniqueViolationError:
        # Only reachable by a race the loan lock already prevents; the index decides.
        raise Conflict("case_already_open", field="loan_id", loan_no=loan["loan_no"]) from None
    await conn.execute(Q.insert_case_assets, case_id, asset_ids)
    uow.audit(
        "case.open",
        "disposal_case",
        case_id,
        after={
            "reference": reference,
            "loan_id": data.loan_id,
            "claim_principal_fen": principal,
            "claim_interest_fen": interest,
            "claim_costs_fen": data.costs_fen,
            "asset_ids": asset_ids,
        },
    )
    return await load_case(conn, bank_org_id, case_id)


async def defaulted_loans(pool: asyncpg.Pool, bank_org_id: int) -> list[asyncpg.Record]:
    """The bank's defaulted loans without an open case: what a new case can be opened on."""
    async with pool.acquire() as conn:
        return list(await conn.fetch(Q.defaulted_loans, bank_org_id))


async def loan_for_new_case(
    pool: asyncpg.Pool, bank_org_id: int, loan_id: int
) -> tuple[asyncpg.Record, list[asyncpg.Record]]:
    """A loan of the bank and its pledge's assets, to prefill the new-case form."""
    async with pool.acquire() as conn:
        loan = await conn.fetchrow(Q.loan_for_new_case, bank_org_id, loan_id)
        if loan is None:
            raise NotFound("not_found", field="loan_id")
        assets = (
            []
            if loan["pledge_id"] is None
            else list(await conn.fetch(Q.pledge_assets, bank_org_id, loan["pledge_id"]))
        )
    return loan, assets


# --- reading cases ----------------------------------------------------------------------


async def load_case(conn: Conn, bank_org_id: int, case_id: int) -> CaseOut:
    row = await conn.fetchrow(Q.case_row, bank_org_id, case_id)
    if row is None:
        raise NotFound("no_such_case")
    flags: dict[int, list[FlagOut]] = {}
    for f in await conn.fetch(Q.case_asset_flags, bank_org_id, case_id):
        flags.setdefault(f["asset_id"], []).append(
            FlagOut(kind=f["kind"], detail=f["detail"] or {}, raised_at=f["raised_at"])
        )
    assets = [
        CaseAssetOut(
            id=a["id"],
            kind=a["kind"],
            number=a["number"],
            title=a["title"],
            legal_status=a["legal_status"],
            patent_type=a["patent_type"],
            term_ends_on=a["term_ends_on"],
            annuity_paid_through=a["annuity_paid_through"],
            flags=flags.get(a["id"], []),
        )
        for a in await conn.fetch(Q.case_assets, bank_org_id, case_id)
    ]
    valuations = [_valuation(v) for v in await conn.fetch(Q.valuations, bank_org_id, case_id)]
    current = valuations[0] if valuations and valuations[0].superseded_at is None else None
    documents = [document_out(d) for d in await conn.fetch(Q.case_documents, bank_org_id, case_id)]
    lots = [
        LotRef(id=t["id"], reference=t["reference"], title=t["title"], status=t["status"])
        for t in await conn.fetch(Q.case_lots, bank_org_id, case_id)
    ]
    published = any(t.status not in UNPUBLISHED_LOT_STATES for t in lots)
    principal, interest, costs = (
        row["claim_principal_fen"],
        row["claim_interest_fen"],
        row["claim_costs_fen"],
    )
    return CaseOut(
        id=row["id"],
        reference=row["reference"],
        status=row["status"],
        loan_id=row["loan_id"],
        loan_no=row["loan_no"],
        pledgor_name=row["pledgor_name"],
        claim=Claim(
            principal_fen=principal,
            interest_fen=interest,
            costs_fen=costs,
            total_fen=principal + interest + costs,
        ),
        notes=row["notes"],
        editable=row["status"] == "open" and not published,
        assets=assets,
        valuation=current,
        valuation_history=[v for v in valuations if v is not current],
        documents=documents,
        disclosure=checklist.disclosure(
            {a.kind for a in assets},
            {d.item for d in documents},
            current.method if current else None,
        ),
        lots=lots,
        opened_at=row["opened_at"],
        updated_at=row["updated_at"],
        licensing_consented_at=await conn.fetchval(QP.bank_case_licensing, case_id),
    )


async def get_case(pool: asyncpg.Pool, bank_org_id: int, case_id: int) -> CaseOut:
    async with pool.acquire() as conn:
        return await load_case(conn, bank_org_id, case_id)


def case_summary(r: asyncpg.Record) -> CaseSummary:
    return CaseSummary(
        id=r["id"],
        reference=r["reference"],
        status=r["status"],
        loan_id=r["loan_id"],
        loan_no=r["loan_no"],
        pledgor_name=r["pledgor_name"],
        claim_total_fen=r["claim_total_fen"],
        valuation_fen=r["valuation_fen"],
        valuation_method=r["valuation_method"],
        valuation_valid_until=r["valuation_valid_until"],
        missing_items=checklist.disclosure(
            r["asset_kinds"], r["items"], r["valuation_method"]
        ).missing,
        opened_at=r["opened_at"],
    )


async def list_cases(
    pool: asyncpg.Pool,
    bank_org_id: int,
    *,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[CaseSummary]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(Q.list_cases, bank_org_id, status, limit, offset)
    return [case_summary(r) for r in rows]


async def disclosure_status(conn: Conn, bank_org_id: int, case_id: int) -> DisclosureStatus:
    """Checklist items required for this case's assets, those present, those missing."""
    row = await conn.fetchrow(Q.disclosure_facts, bank_org_id, case_id)
    if row is None:
        raise NotFound("no_such_case")
    return checklist.disclosure(row["asset_kinds"], row["items"], row["valuation_method"])


async def case_for_lot(conn: Conn, bank_org_id: int, case_id: int) -> CaseForLot:
    """What the lots area needs of a case; NotFound for another bank's case."""
    row = await conn.fetchrow(Q.case_row, bank_org_id, case_id)
    if row is None:
        raise NotFound("no_such_case")
    assets = await conn.fetch(Q.case_assets, bank_org_id, case_id)
    valuation = await conn.fetchrow(Q.current_valuation, bank_org_id, case_id)
    status = await disclosure_status(conn, bank_org_id, case_id)
    shares = (
        asset_shares(
            valuation["value_fen"],
            [a["id"] for a in assets],
            recorded_asset_values(valuation["inputs"]),
        )
        if valuation
        else {}
    )
    return CaseForLot(
        asset_shares=shares,
        case_id=row["id"],
        reference=row["reference"],
        status=row["status"],
        asset_ids=[a["id"] for a in assets],
        valuation_fen=valuation["value_fen"] if valuation else None,
        valuation_method=valuation["method"] if valuation else None,
        valuation_valid_until=valuation["valid_until"] if valuation else None,
        objection_until=valuation["objection_until"] if valuation else None,
        missing_items=status.missing,
    )


# --- the claim --------------------------------------------------------------------------


@command(WRITE_COLLATERAL)
async def change_claim(uow: UnitOfWork, data: ChangeClaim) -> CaseOut:
    """Edit principal, interest, costs or notes while no lot of the case is published.

    The case row is locked (`lock_case`) for the whole change, so two edits take turns
    and each is audited against the claim it replaced."""
    conn, bank_org_id, case_id = uow.conn, uow.actor.org, data.case_id
    case = await _lock_open_case(conn, bank_org_id, case_id)
    if await _published(conn, bank_org_id, case_id):
        raise Conflict("claim_frozen_by_published_lot", reference=case["reference"])
    before = {
        "claim_principal_fen": case["claim_principal_fen"],
        "claim_interest_fen": case["claim_interest_fen"],
        "claim_costs_fen": case["claim_costs_fen"],
        "notes": case["notes"],
    }

    def pick(new: Any, key: str) -> Any:
        return before[key] if new is None else new

    after = {
        "claim_principal_fen": pick(data.principal_fen, "claim_principal_fen"),
        "claim_interest_fen": pick(data.interest_fen, "claim_interest_fen"),
        "claim_costs_fen": pick(data.costs_fen, "claim_costs_fen"),
        "notes": pick(None if data.notes is None else data.notes.strip(), "notes"),
    }
    if after != before:
        await conn.execute(Q.update_claim, bank_org_id, case_id, *after.values(), uow.at)
        uow.audit("case.claim_change", "disposal_case", case_id, before=before, after=after)
    return await load_case(conn, bank_org_id, case_id)


# --- valuation --------------------------------------------------------------------------


def _internal_policy(data: InternalIn) -> InternalPolicy:
    return InternalPolicy(
        dimension_weights=data.dimension_weights or dict(DEFAULT_DIMENSION_WEIGHTS),
        indicator_weights=data.indicator_weights or dict(DEFAULT_INDICATOR_WEIGHTS),
    )


def recorded_asset_values(inputs: Any) -> dict[int, int] | None:
    """The per-asset values a valuation recorded (its inputs' `asset_values`), if any."""
    values = inputs.get("asset_values") if isinstance(inputs, dict) else None
    if not isinstance(values, dict):
        return None
    return {int(k): int(v) for k, v in values.items()}


async def _check_asset_values(
    conn: Conn, bank_org_id: int, case_id: int, valuation: AppraisalIn
) -> dict[str, int] | None:
    """An appraisal's per-asset values name exactly the case's assets and add up to its
    value (docs/rules.md §Lot terms); stored with the inputs, keyed by asset id."""
    values = valuation.asset_values
    if values is None:
        return None
    ids = {a["id"] for a in await conn.fetch(Q.case_assets, bank_org_id, case_id)}
    if set(values) != ids:
        raise Invalid(
            "asset_values_not_case_assets",
            field="asset_values",
            missing=sorted(ids - set(values)),
            strangers=sorted(set(values) - ids),
        )
    total = sum(values.values())
    if total != valuation.value_fen:
        raise Invalid(
            "asset_values_sum", field="asset_values", sum_fen=total, value_fen=valuation.value_fen
        )
    return {str(k): v for k, v in sorted(values.items())}


def _decimal_map(weights: dict[str, Decimal]) -> dict[str, str]:
    return {k: str(v) for k, v in weights.items()}


@command(WRITE_COLLATERAL)
async def record_valuation(uow: UnitOfWork, data: RecordValuation) -> ValuationOut:
    """Record an appraisal or an internal valuation; it supersedes the case's previous one.

    The case row is locked (`lock_case`), so two valuations take turns and each supersedes
    exactly the one before it; the unique index valuations_current is the backstop."""
    conn, bank_org_id, case_id = uow.conn, uow.actor.org, data.case_id
    policy, valuation = data.policy, data.valuation
    today = china_today(uow.at)
    case = await _lock_open_case(conn, bank_org_id, case_id)
    objection_until: date | None
    explanation: list[Line]
    if isinstance(valuation, AppraisalIn):
        dates = appraisal_dates(valuation.valued_on, today, policy)
        value_fen, valued_on = valuation.value_fen, valuation.valued_on
        valid_until, objection_until = dates.valid_until, dates.objection_until
        appraiser, report_no = valuation.appraiser.strip(), valuation.report_no.strip()
        explanation = []
        per_asset = await _check_asset_values(conn, bank_org_id, case_id, valuation)
        inputs: dict[str, Any] = {
            "appraiser": appraiser,
            "report_no": report_no,
            "value_fen": value_fen,
            "valued_on": valued_on.isoformat(),
            "validity_months": policy.appraisal_validity_months,
            "objection_days": policy.objection_days,
        }
        if per_asset is not None:
            inputs["asset_values"] = per_asset
    else:
        current = await conn.fetchrow(Q.current_valuation, bank_org_id, case_id)
        if current is not None and governs(current["method"], current["valid_until"], today):
            # The governing valuation is the paid appraisal while it is valid: a bank's own
            # valuation does not replace it as the floor's basis (docs/rules.md §Disposal
            # cases and valuation); a new appraisal does.
            raise Conflict(
                "appraisal_governs",
                field="method",
                value_fen=current["value_fen"],
                valid_until=current["valid_until"].isoformat(),
            )
        claim_total = (
            case["claim_principal_fen"] + case["claim_interest_fen"] + case["claim_costs_fen"]
        )
        if claim_total >= policy.internal_max_claim_fen:
            # Only loans under CNY 10 m may be valued internally instead of by a paid
            # appraisal (docs/rules.md §Disposal cases and valuation).
            raise Invalid(
                "internal_valuation_claim_too_large",
                field="method",
                claim_fen=claim_total,
                limit_fen=policy.internal_max_claim_fen,
            )
        internal = _internal_policy(valuation)
        scores = msgspec.structs.asdict(valuation.scores)
        result = internal_valuation(
            valuation.base_value_fen, scores, basis=valuation.basis, policy=internal
        )
        if result.vetoed:
            raise Invalid("legal_score_vetoed", field="scores", **result.verdict[0].params)
        value_fen, valued_on = result.value_fen, today
        valid_until = add_months(today, policy.internal_validity_months)
        objection_until, appraiser, report_no = None, None, None
        explanation = result.explanation
        inputs = {
            "base_value_fen": valuation.base_value_fen,
            "basis": valuation.basis.strip(),
            "scores": scores,
            "dimension_weights": _decimal_map(internal.dimension_weights),
            "indicator_weights": _decimal_map(internal.indicator_weights),
            "veto_legal_below": str(internal.veto_legal_below),
            "par_score": str(internal.par_score),
            "factor_bounds": [str(internal.factor_min), str(internal.factor_max)],
            "dimension_scores": _decimal_map(result.dimension_scores),
            "weighted_score": str(result.weighted_score),
            "factor": str(result.factor),
        }
    superseded = [
        r["id"] for r in await conn.fetch(Q.supersede_valuation, bank_org_id, case_id, uow.at)
    ]
    row = returned(
        await conn.fetchrow(
            Q.insert_valuation,
            case_id,
            "appraisal" if isinstance(valuation, AppraisalIn) else "internal",
            value_fen,
            valued_on,
            valid_until,
            objection_until,
            appraiser,
            report_no,
            inputs,
            msgspec.json.encode(explanation).decode() if explanation else "",
            uow.actor.user,
            uow.at,
        )
    )
    uow.audit(
        "valuation.record",
        "valuation",
        row["id"],
        before={"superseded_valuation_ids": superseded},
        after={
            "case_id": case_id,
            "method": row["method"],
            "value_fen": value_fen,
            "valued_on": valued_on.isoformat(),
            "valid_until": valid_until.isoformat(),
            "objection_until": objection_until.isoformat() if objection_until else None,
            "inputs": inputs,
        },
    )
    return _valuation(row)


# --- disclosure documents ---------------------------------------------------------------


@command(WRITE_COLLATERAL)
async def upload_document(uow: UnitOfWork, data: UploadDocument) -> DocumentOut:
    """Attach a document to a checklist item; its type is judged by its bytes.

    The size, type, checklist item and the bank's storage quota are checked before a byte
    is written (market/cases/storage.py); the case row is locked (`lock_case`), so an
    upload and a removal on one case take turns, then the bank's storage lock."""
    conn, bank_org_id, case_id = uow.conn, uow.actor.org, data.case_id
    name, kind = filetypes.check(data.filename, data.content, max_bytes=data.policy.max_bytes)
    content = data.content
    await _lock_open_case(conn, bank_org_id, case_id)
    status = await disclosure_status(conn, bank_org_id, case_id)
    if data.item not in status.required and data.item not in checklist.PRIVATE_ITEMS:
        raise Invalid("item_not_in_checklist", field="item", item=data.item, items=status.required)
    await storage.reserve(conn, bank_org_id, [("file", len(content))], policy=data.policy)
    digest = await storage.store(conn, content)
    row = returned(
        await conn.fetchrow(
            Q.insert_document,
            case_id,
            data.item,
            name,
            kind.content_type,
            len(content),
            digest,
            uow.actor.user,
            uow.at,
            data.item not in checklist.PRIVATE_ITEMS,
        )
    )
    document = document_out(row)
    uow.audit(
        "document.upload",
        "case_document",
        document.id,
        after={
            "case_id": case_id,
            "item": data.item,
            "filename": name,
            "content_type": kind.content_type,
            "size_bytes": len(content),
            "sha256": document.sha256,
        },
    )
    return document


@command(WRITE_COLLATERAL)
async def remove_document(uow: UnitOfWork, data: RemoveDocument) -> None:
    """Withdraw a document (kept, marked removed) while no lot of the case is published.

    The case row is locked (`lock_case`), and the removal only marks a document still in
    place, so of two concurrent removals one finds nothing to remove (404)."""
    conn, bank_org_id, case_id = uow.conn, uow.actor.org, data.case_id
    case = await _lock_open_case(conn, bank_org_id, case_id)
    if await _published(conn, bank_org_id, case_id):
        raise Conflict("documents_frozen_by_published_lot", reference=case["reference"])
    row = await conn.fetchrow(Q.remove_document, bank_org_id, case_id, data.document_id, uow.at)
    if row is None:
        raise NotFound("no_such_document")
    uow.audit(
        "document.remove",
        "case_document",
        data.document_id,
        before={
            "case_id": case_id,
            "item": row["item"],
            "filename": row["filename"],
            "sha256": bytes(row["sha256"]).hex(),
        },
    )


async def find_document(
    pool: asyncpg.Pool, bank_org_id: int, case_id: int, document_id: int
) -> DocumentOut:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(Q.document_meta, bank_org_id, case_id, document_id)
    if row is None:
        raise NotFound("no_such_document")
    return document_out(row)


async def document_bytes(
    pool: asyncpg.Pool,
    document: DocumentOut | OrgDocumentOut,
    policy: DocumentPolicy = DEFAULT_DOCUMENT_POLICY,
) -> AsyncIterator[bytes]:
    """The document's bytes in chunks, read slice by slice (find_document checked access)."""
    digest = bytes.fromhex(document.sha256)
    async with pool.acquire() as conn:
        for offset in range(0, document.size_bytes, policy.chunk_bytes):
            chunk = await conn.fetchval(Q.blob_chunk, digest, offset + 1, policy.chunk_bytes)
            if not chunk:
                return
            yield bytes(chunk)
