"""Lots: create and edit drafts, and every transition of the lifecycle, each in one
transaction with its transition row, round history and audit row.

Concurrency: every change of a lot first locks its row (SELECT … FOR UPDATE); the
lifecycle rules then run on the state as it is after any concurrent change committed, so
two clicks on "publish" give one publication and one 409, and the worker opening bidding
cannot interleave with a bank pausing the lot. Draft edits also check the version the
editor read, so a stale form cannot overwrite a newer save.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg
import msgspec

from market import audit
from market.accounts.models import Viewer
from market.cases.services import case_for_lot
from market.catalogue.text import ipc_keys, search_document
from market.db import Conn, Queries, returned
from market.errors import Conflict, Invalid, NotFound
from market.lots import lifecycle, terms
from market.lots.lifecycle import LotState
from market.lots.models import (
    ActionInput,
    FixedPriceInput,
    LotDraft,
    LotOut,
    LotUpdate,
    PauseInput,
    PublishInput,
    RelistInput,
    ResumeInput,
    WithdrawInput,
)
from market.money import format_cny
from market.notify import events
from market.settings import Settings

Q = Queries("lots")


def policy_for(settings: Settings) -> terms.TermsPolicy:
    """The exchange's terms policy; the announcement period is a setting (issue 3)."""
    return terms.TermsPolicy(
        announcement_period=timedelta(seconds=settings.announcement_period_seconds)
    )


def _out(row: asyncpg.Record, asset_ids: list[int]) -> LotOut:
    data = dict(row)
    data["terms"] = msgspec.convert(row["terms"], terms.Terms)
    data["asset_ids"] = asset_ids
    return msgspec.convert(
        {k: data[k] for k in LotOut.__struct_fields__}, LotOut, from_attributes=False
    )


def _state(row: asyncpg.Record) -> LotState:
    return LotState(
        status=row["status"],
        round=row["round"],
        start_price_fen=row["start_price_fen"],
        first_start_fen=row["first_start_fen"],
        announced_at=row["announced_at"],
        bidding_starts_at=row["bidding_starts_at"],
        bidding_ends_at=row["bidding_ends_at"],
        paused_from=row["paused_from"],
        paused_at=row["paused_at"],
        resume_by=row["resume_by"],
        reason=row["status_reason"],
    )


async def _catalogue_fields(
    conn: Conn, bank_org_id: int, asset_ids: list[int], title: str, description: str
) -> tuple[str, list[str], list[str], str]:
    """(region, asset kinds, IPC prefix keys, search document) for the public catalogue."""
    rows = await conn.fetch(Q.catalogue_inputs, asset_ids, bank_org_id)
    codes = [c for r in rows for c in r["ipc_codes"]]
    region = next((r["region"] for r in rows if r["region"]), "")
    texts = [title, description, region, *codes]
    for r in rows:
        texts += [r["title"], r["abstract"], r["number"]]
    return region, sorted({r["kind"] for r in rows}), ipc_keys(codes), search_document(*texts)


async def _checked_assets(
    conn: Conn, lot_id: int, case_assets: list[int], wanted: list[int] | None
) -> list[int]:
    asset_ids = sorted(set(wanted if wanted is not None else case_assets))
    if not asset_ids:
        raise Invalid("拍品至少包含一项资产 / a lot offers at least one asset", field="asset_ids")
    strangers = sorted(set(asset_ids) - set(case_assets))
    if strangers:
        raise Invalid(
            f"资产 {strangers} 不是本案件的质物 / "
            f"assets {strangers} are not collateral of this case",
            field="asset_ids",
        )
    taken = await conn.fetch(Q.assets_in_other_lots, asset_ids, lot_id)
    if taken:
        listed = ", ".join(f"{r['asset_id']} ({r['reference']})" for r in taken)
        raise Conflict(
            f"资产已在其他拍品中：{listed} / assets already offered by another lot: {listed}",
            field="asset_ids",
        )
    return asset_ids


async def _basis(
    conn: Conn, bank_org_id: int, case_id: int, lot_id: int, data: LotDraft
) -> tuple[int, list[int]]:
    """The valuation a lot answers to, and its checked assets.

    A lot offering the whole collateral carries the case's valuation. A lot offering part
    of it (issue 3: "a single patent or a package") states the part of the valuation it
    carries; the live lots of a case never carry more than the case's valuation together.
    """
    case = await case_for_lot(conn, bank_org_id, case_id)
    if case.status != "open":
        raise Conflict(
            "案件已结案，只有进行中的案件可以创建拍品 / "
            "the case is closed; lots are made only on an open case"
        )
    if case.valuation_fen is None:
        raise Invalid(
            "请先对案件质物进行评估，再创建拍品 / "
            "value the case's collateral before creating a lot",
            field="valuation_fen",
            code="no_valuation",
        )
    asset_ids = await _checked_assets(conn, lot_id, case.asset_ids, data.asset_ids)
    if set(asset_ids) == set(case.asset_ids):
        if data.valuation_fen not in (None, case.valuation_fen):
            raise Invalid(
                f"包含全部质物的拍品，评估价即案件评估价 {format_cny(case.valuation_fen)} / "
                "a lot offering all the collateral carries the case's valuation "
                f"{format_cny(case.valuation_fen)}",
                field="valuation_fen",
            )
        return case.valuation_fen, asset_ids
    if data.valuation_fen is None:
        raise Invalid(
            "只含部分质物的拍品须填写其所占的评估价 / "
            "a lot offering part of the collateral states the part of the "
            "case's valuation it carries",
            field="valuation_fen",
        )
    others = int(await conn.fetchval(Q.valuation_of_other_lots, case_id, lot_id))
    room = case.valuation_fen - others
    if data.valuation_fen > room:
        raise Invalid(
            f"各拍品评估价合计将超过案件评估价 {format_cny(case.valuation_fen)}，"
            f"最多还剩 {format_cny(room)} / "
            f"the case's lots would carry more than its valuation "
            f"{format_cny(case.valuation_fen)}: at most {format_cny(room)} is left",
            field="valuation_fen",
        )
    return data.valuation_fen, asset_ids


async def create_lot(
    pool: asyncpg.Pool,
    at: datetime,
    policy: terms.TermsPolicy,
    viewer: Viewer,
    case_id: int,
    data: LotDraft,
) -> LotOut:
    async with pool.acquire() as conn, conn.transaction():
        lot_id: int = await conn.fetchval(Q.next_lot_id)
        checked, asset_ids, columns = await _prepare(
            conn, at, policy, viewer.org_id, case_id, lot_id, data
        )
        reference = f"LOT-{at.year}-{lot_id:06d}"
        await conn.execute(Q.insert_lot, lot_id, case_id, viewer.org_id, reference, *columns)
        await _save_children(conn, lot_id, asset_ids, checked)
        await conn.execute(
            Q.insert_transition, lot_id, "create", "draft", "draft", 1, "", viewer.user_id, at
        )
        await audit.append(
            conn,
            at=at,
            chain_org_id=viewer.org_id,
            actor_user_id=viewer.user_id,
            actor_org_id=viewer.org_id,
            action="lot.create",
            object_kind="lot",
            object_id=lot_id,
            after={
                "reference": reference,
                "case_id": case_id,
                "assets": asset_ids,
                "terms": msgspec.to_builtins(checked),
            },
        )
        return await _load(conn, viewer.org_id, lot_id)


async def _prepare(
    conn: Conn,
    at: datetime,
    policy: terms.TermsPolicy,
    bank_org_id: int,
    case_id: int,
    lot_id: int,
    data: LotDraft,
) -> tuple[terms.Terms, list[int], tuple[Any, ...]]:
    """Check a draft and compute what a new or edited draft row holds, in the order the
    insert_lot and update_draft queries share after their own leading parameters."""
    valuation, asset_ids = await _basis(conn, bank_org_id, case_id, lot_id, data)
    checked = terms.validate(policy, data.terms, valuation_fen=valuation, publish_at=at)
    region, kinds, keys, doc = await _catalogue_fields(
        conn, bank_org_id, asset_ids, data.title, data.description
    )
    columns = (
        data.title.strip(),
        data.description,
        valuation,
        checked.start_price_fen,
        checked.deposit_fen,
        checked.increment_fen,
        msgspec.to_builtins(checked),
        checked.bidding_starts_at,
        checked.bidding_ends_at,
        region,
        kinds,
        keys,
        doc,
        at,
        data.auction_kind,
    )
    return checked, asset_ids, columns


async def _save_children(
    conn: Conn, lot_id: int, asset_ids: list[int], checked: terms.Terms
) -> None:
    """The lot's assets and pre-emptive holders, replaced as a whole."""
    await conn.execute(Q.clear_lot_assets, lot_id)
    await conn.execute(Q.set_lot_assets, lot_id, asset_ids)
    await conn.execute(Q.clear_holders, lot_id)
    for h in checked.preemptive_holders:
        await conn.execute(Q.insert_holder, lot_id, h.rank, h.name, h.credit_code)


async def update_draft(
    pool: asyncpg.Pool,
    at: datetime,
    policy: terms.TermsPolicy,
    viewer: Viewer,
    lot_id: int,
    data: LotUpdate,
) -> LotOut:
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(Q.lock_lot, lot_id, viewer.org_id)
        if row is None:
            raise NotFound("no such lot")
        if row["status"] != "draft":
            raise lifecycle.IllegalTransition(
                f"the lot is {row['status']}: only a draft's terms can be edited"
            )
        if row["version"] != data.version:
            raise Conflict(
                "拍品已被他人修改，请刷新后重新编辑 / "
                "the lot was changed by someone else; reload it and edit again",
                field="version",
                code="stale_version",
            )
        checked, asset_ids, columns = await _prepare(
            conn, at, policy, viewer.org_id, row["case_id"], lot_id, data
        )
        await conn.execute(Q.update_draft, lot_id, data.version, *columns)
        await _save_children(conn, lot_id, asset_ids, checked)
        await audit.append(
            conn,
            at=at,
            chain_org_id=viewer.org_id,
            actor_user_id=viewer.user_id,
            actor_org_id=viewer.org_id,
            action="lot.edit",
            object_kind="lot",
            object_id=lot_id,
            before={"terms": row["terms"], "title": row["title"]},
            after={"terms": msgspec.to_builtins(checked), "title": data.title},
        )
        return await _load(conn, viewer.org_id, lot_id)


async def _load(conn: Conn, bank_org_id: int, lot_id: int) -> LotOut:
    row = await conn.fetchrow(Q.bank_lot, lot_id, bank_org_id)
    if row is None:
        raise NotFound("no such lot")
    assets = [r["asset_id"] for r in await conn.fetch(Q.lot_asset_ids, lot_id)]
    return _out(row, assets)


async def get_lot(pool: asyncpg.Pool, bank_org_id: int, lot_id: int) -> LotOut:
    async with pool.acquire() as conn:
        return await _load(conn, bank_org_id, lot_id)


async def transitions(pool: asyncpg.Pool, lot_id: int) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        return [dict(r) for r in await conn.fetch(Q.lot_transitions, lot_id)]


# --- transitions -------------------------------------------------------------------------


async def _publish_blockers(
    conn: Conn, bank_org_id: int, row: asyncpg.Record, at: datetime
) -> tuple[str, ...]:
    """What must be in place before the public may see the lot (issue 3, item 3)."""
    case = await case_for_lot(conn, bank_org_id, row["case_id"])
    missing = [f"disclosure: {item}" for item in case.missing_items]
    if case.valuation_fen is None:
        missing.append("valuation")
    else:
        if case.valuation_valid_until is not None and case.valuation_valid_until < at.date():
            missing.append("a valuation still valid (the current one expired)")
        if case.objection_until is not None and case.objection_until >= at.date():
            missing.append(f"the valuation's objection window to pass ({case.objection_until})")
    return tuple(missing)


async def _transition(
    conn: Conn,
    at: datetime,
    policy: terms.TermsPolicy,
    row: asyncpg.Record,
    action: lifecycle.Action,
    *,
    actor_user_id: int | None,
    actor_org_id: int | None,
    new_terms: terms.Terms | None = None,
) -> None:
    before = _state(row)
    after = lifecycle.apply(policy, before, action)
    stored = msgspec.convert(row["terms"], terms.Terms) if new_terms is None else new_terms
    if after.round == 3 and before.round == 2:
        # The fixed-price sale runs at the second round's start; its window is the sale period.
        stored = msgspec.structs.replace(
            stored, bidding_starts_at=after.bidding_starts_at, bidding_ends_at=after.bidding_ends_at
        )
    name = type(action).__struct_config__.tag
    assert isinstance(name, str)
    if after.round != before.round:
        # Round 2 is an English auction again; round 3 is the fixed-price sale (变卖).
        await conn.execute(Q.new_round, row["id"], "fixed_price" if after.round == 3 else "english")
    await conn.execute(
        Q.save_state,
        row["id"],
        after.status,
        after.round,
        after.start_price_fen,
        after.announced_at,
        after.bidding_starts_at,
        after.bidding_ends_at,
        after.paused_from,
        after.paused_at,
        after.resume_by,
        after.reason,
        msgspec.to_builtins(stored),
        stored.deposit_fen,
        stored.increment_fen,
        at,
    )
    await conn.execute(
        Q.insert_transition,
        row["id"],
        name,
        before.status,
        after.status,
        after.round,
        after.reason,
        actor_user_id,
        at,
    )
    outcome = {
        "sold": "sold",
        "failed": "failed",
        "returned": "failed",
        "withdrawn": "withdrawn",
    }.get(after.status)
    await conn.execute(
        Q.upsert_round,
        row["id"],
        after.round,
        after.start_price_fen,
        after.announced_at,
        after.bidding_starts_at,
        after.bidding_ends_at,
        outcome,
        at if outcome else None,
    )
    if after.status == "withdrawn":
        # A withdrawn lot holds nobody's money: every confirmed deposit of the round goes
        # back (issue 4). Imported here: the auction engine builds on the lots area.
        from auctions.deposits import release_round_deposits

        await release_round_deposits(conn, at, row["id"], after.round)
    await events.lot_changed(events.within(conn, at), row["id"], before, after)
    await audit.append(
        conn,
        at=at,
        chain_org_id=row["bank_org_id"],
        actor_user_id=actor_user_id,
        actor_org_id=actor_org_id,
        action=f"lot.{name}",
        object_kind="lot",
        object_id=row["id"],
        before=msgspec.to_builtins(before),
        after=msgspec.to_builtins(after),
    )


async def act(
    pool: asyncpg.Pool,
    at: datetime,
    policy: terms.TermsPolicy,
    viewer: Viewer,
    lot_id: int,
    data: ActionInput,
) -> LotOut:
    """A bank's action on its lot; illegal ones answer 409 with the reason."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(Q.lock_lot, lot_id, viewer.org_id)
        if row is None:
            raise NotFound("no such lot")
        new_terms = None
        action: lifecycle.Action
        match data:
            case PublishInput():
                action = lifecycle.Publish(
                    at=at, missing=await _publish_blockers(conn, viewer.org_id, row, at)
                )
            case WithdrawInput(reason=reason):
                action = lifecycle.Withdraw(at=at, reason=reason)
            case PauseInput(reason=reason):
                action = lifecycle.Pause(at=at, reason=reason)
            case ResumeInput():
                action = lifecycle.Resume(at=at)
            case RelistInput(terms=t):
                if row["status"] != "failed" or row["round"] != 1:
                    raise lifecycle.IllegalTransition("only a failed first round is relisted, once")
                new_terms = terms.validate(
                    policy,
                    t,
                    valuation_fen=row["valuation_fen"],
                    publish_at=at,
                    round=2,
                    first_start_fen=row["first_start_fen"],
                )
                action = lifecycle.Relist(
                    at=at,
                    start_price_fen=new_terms.start_price_fen,
                    bidding_starts_at=new_terms.bidding_starts_at,
                    bidding_ends_at=new_terms.bidding_ends_at,
                )
            case FixedPriceInput(ends_at=ends_at):
                action = lifecycle.FixedPrice(at=at, ends_at=ends_at)
        await _transition(
            conn,
            at,
            policy,
            row,
            action,
            actor_user_id=viewer.user_id,
            actor_org_id=viewer.org_id,
            new_terms=new_terms,
        )
        return await _load(conn, viewer.org_id, lot_id)


async def close_round(
    conn: Conn, at: datetime, policy: terms.TermsPolicy, lot_id: int, *, sold: bool
) -> None:
    """The auction engine's close (issue 4) hands its outcome to the lifecycle here."""
    row = returned(await conn.fetchrow(Q.lock_lot_any_bank, lot_id))
    await _transition(
        conn,
        at,
        policy,
        row,
        lifecycle.Close(at=at, sold=sold),
        actor_user_id=None,
        actor_org_id=None,
    )


async def default_sale(conn: Conn, at: datetime, policy: terms.TermsPolicy, lot_id: int) -> None:
    """The closer's hand-back when a winner did not pay (悔拍, issue 4): the round failed."""
    row = returned(await conn.fetchrow(Q.lock_lot_any_bank, lot_id))
    await _transition(
        conn, at, policy, row, lifecycle.Default(at=at), actor_user_id=None, actor_org_id=None
    )


async def open_if_due(conn: Conn, at: datetime, policy: terms.TermsPolicy, lot_id: int) -> bool:
    """Open bidding now if the announced instant has passed (the bid writer's path: bids
    never wait for the worker). The caller holds or takes the lot row's lock."""
    row = returned(await conn.fetchrow(Q.lock_lot_any_bank, lot_id))
    if row["status"] != "announced" or row["bidding_starts_at"] > at:
        return False
    await _transition(
        conn,
        row["bidding_starts_at"],
        policy,
        row,
        lifecycle.OpenBidding(at=row["bidding_starts_at"]),
        actor_user_id=None,
        actor_org_id=None,
    )
    return True


# --- on time: the worker's transitions -----------------------------------------------------


async def open_due_lots(
    pool: asyncpg.Pool, at: datetime, policy: terms.TermsPolicy, batch: int = 200
) -> list[int]:
    """Open bidding on every announced lot whose opening instant has come (catches up after
    downtime: everything due by `at` is opened, whatever was missed)."""
    opened: list[int] = []
    while True:
        async with pool.acquire() as conn, conn.transaction():
            ids = [r["id"] for r in await conn.fetch(Q.due_to_open, at, batch)]
            for lot_id in ids:
                # Recorded at the announced instant, however late the worker came.
                await open_if_due(conn, at, policy, lot_id)
        opened += ids
        if len(ids) < batch:
            return opened


async def expire_pauses(
    pool: asyncpg.Pool, at: datetime, policy: terms.TermsPolicy, batch: int = 200
) -> list[int]:
    async with pool.acquire() as conn, conn.transaction():
        ids = [r["id"] for r in await conn.fetch(Q.due_pause_expiry, at, batch)]
        for lot_id in ids:
            row = returned(await conn.fetchrow(Q.lock_lot_any_bank, lot_id))
            await _transition(
                conn,
                at,
                policy,
                row,
                lifecycle.ExpirePause(at=at),
                actor_user_id=None,
                actor_org_id=None,
            )
    return ids
