"""The pool manager's pages (issue 6 item 5): the dashboard of a pool with its charts, the
drill-down from every figure to the ledger postings (or the loans, claims, payouts) behind
it, the claims to decide and the pool's rule versions.

Pool organisations only (a bank or a buyer: 403); another organisation's pool or claim is
404. Figures and their definitions: market/pools/dashboard.py. Deciding a claim and adding
a rule version each run in one transaction (concurrency: see dashboard.decide).
"""

from __future__ import annotations

import contextlib
import json
from datetime import datetime
from typing import Annotated, Any

import asyncpg
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Redirect, Template

from market import i18n
from market.accounts.models import Viewer
from market.cases.services import china_today
from market.db import Conn
from market.deps import ClockDep, PoolDep, ViewerDep
from market.errors import AppError
from market.pools import charts, services
from market.pools import dashboard as dash
from market.web import REQUIRED, form_date, form_values, language, page, require_org

SERIES_COLOURS = ("#9b1c1c", "#1e6b3a", "#5b6575")
# `?pool=` (the handler's `pool` is the database pool)
PoolQuery = Annotated[int | None, QueryParameter(name="pool")]


def manager(viewer: Viewer | None) -> Viewer:
    return require_org(viewer, "pool", "only approved pool managers see pools")


def _charts(d: dash.Dashboard, _: Any) -> dict[str, charts.Chart]:
    base = f"/pool/{d.pool.id}/postings?figure="
    monthly = charts.bar_chart(
        [
            (
                m.month,
                [m.compensation_fen, m.recoveries_fen],
                [
                    f"{base}compensation_paid&month={m.month}",
                    f"{base}recoveries_received&month={m.month}",
                ],
            )
            for m in d.monthly
        ],
        short=7,
    )
    by_bank = charts.bar_chart(
        [
            (
                b.bank_name,
                [b.paid_fen, b.received_fen, b.outstanding_fen],
                [
                    f"{base}compensation_paid&bank={b.bank_org_id}",
                    f"{base}recoveries_received&bank={b.bank_org_id}",
                    f"{base}recoveries_outstanding&bank={b.bank_org_id}",
                ],
            )
            for b in d.by_bank
        ]
    )
    by_path = charts.bar_chart(
        [
            (
                _("pool.path." + p.kind),
                [p.received_fen, p.outstanding_fen],
                [
                    f"{base}recoveries_received&kind={p.kind}",
                    f"{base}recoveries_outstanding&kind={p.kind}",
                ],
            )
            for p in d.by_path
        ]
    )
    return {"monthly": monthly, "by_bank": by_bank, "by_path": by_path}


def _rate(bp: int | None) -> str:
    return "—" if bp is None else f"{bp / 100:.2f} %"


class PoolPages(Controller):
    path = "/pool"
    include_in_schema = False

    # --- dashboard ------------------------------------------------------------------------

    @get("/", operation_id="web_pool_home")
    async def home(
        self, request: Request[Any, Any, State], pool: PoolDep, clock: ClockDep, viewer: ViewerDep
    ) -> Template:
        me = manager(viewer)
        at = clock.now()
        async with pool.acquire() as conn:
            pools = await dash.pools_of(conn, me.org_id)
            if len(pools) == 1:
                return await self._dashboard(request, conn, me, pools[0], pools, at)
            summaries = [await dash.summary(conn, p) for p in pools]
        return page(request, "pools/pool_select.html", me, summaries=summaries, rate=_rate)

    @get("/{pool_id:int}", operation_id="web_pool_dashboard")
    async def show(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        viewer: ViewerDep,
        pool_id: FromPath[int],
    ) -> Template:
        me = manager(viewer)
        async with pool.acquire() as conn:
            row = await services.own_pool(conn, me.org_id, pool_id)
            pools = await dash.pools_of(conn, me.org_id)
            return await self._dashboard(request, conn, me, row, pools, clock.now())

    async def _dashboard(
        self,
        request: Request[Any, Any, State],
        conn: Conn,
        me: Viewer,
        row: asyncpg.Record,
        pools: list[asyncpg.Record],
        at: datetime,
    ) -> Template:
        d = await dash.dashboard(conn, row, at)
        _ = i18n.translator(language(request, me))
        return page(
            request,
            "pools/pool_dashboard.html",
            me,
            d=d,
            pools=pools,
            charts=_charts(d, _),
            colours=SERIES_COLOURS,
            rate=_rate,
        )

    # --- drill-down ------------------------------------------------------------------------

    @get("/{pool_id:int}/postings", operation_id="web_pool_postings")
    async def postings(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        viewer: ViewerDep,
        pool_id: FromPath[int],
        figure: FromQuery[str] = "all",
        month: FromQuery[str | None] = None,
        bank: FromQuery[int | None] = None,
        kind: FromQuery[str | None] = None,
    ) -> Template:
        me = manager(viewer)
        filt = dash.DrillFilter(month=month or None, bank_org_id=bank, kind=kind or None)
        async with pool.acquire() as conn:
            row = await services.own_pool(conn, me.org_id, pool_id)
            out = await dash.postings(conn, row, figure, filt)
            status = {"recoveries_received": "received", "recoveries_outstanding": "expected"}
            payouts = (
                await dash.payouts(conn, row, status[figure], filt) if figure in status else None
            )
            bank_name = await dash.bank_name(conn, row, bank) if bank is not None else None
        return page(
            request,
            "pools/pool_postings.html",
            me,
            pool=dash.pool_out(row),
            out=out,
            payouts=payouts,
            bank_name=bank_name,
            figures=list(dash.FIGURES),
            limit=dash.POSTINGS_LIMIT,
        )

    @get("/{pool_id:int}/enrolments", operation_id="web_pool_enrolments")
    async def enrolments(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        viewer: ViewerDep,
        pool_id: FromPath[int],
        bank: FromQuery[int | None] = None,
    ) -> Template:
        me = manager(viewer)
        async with pool.acquire() as conn:
            row = await services.own_pool(conn, me.org_id, pool_id)
            rows = await dash.enrolments(conn, row, bank)
        return page(
            request,
            "pools/pool_enrolments.html",
            me,
            pool=dash.pool_out(row),
            rows=rows,
            total_fen=sum(r["enrolled_principal_fen"] for r in rows),
        )

    # --- claims ----------------------------------------------------------------------------

    @get("/claims", operation_id="web_pool_claims")
    async def claims(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        viewer: ViewerDep,
        pool_id: PoolQuery = None,
        status: FromQuery[str | None] = None,
        bank: FromQuery[int | None] = None,
        decided: FromQuery[int | None] = None,
    ) -> Template:
        me = manager(viewer)
        return await _render_claims(
            request,
            pool,
            me,
            clock.now(),
            pool_id=pool_id,
            status=status or None,
            bank=bank,
            decided=decided,
        )

    @post("/claims/{claim_id:int}/decision", operation_id="web_pool_decide_claim")
    async def decide(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        viewer: ViewerDep,
        claim_id: FromPath[int],
    ) -> Template | Redirect:
        me = manager(viewer)
        values = await form_values(request)
        try:
            await dash.decide(
                pool,
                clock.now(),
                org_id=me.org_id,
                user_id=me.user_id,
                claim_id=claim_id,
                decision=values.get("decision", ""),
                reason=values.get("reason", ""),
            )
        except AppError as exc:
            if exc.status == 404:
                raise
            field = exc.field if exc.field in ("decision", "reason") else "form"
            return await _render_claims(
                request,
                pool,
                me,
                clock.now(),
                errors={claim_id: {field: exc.message}},
                values={claim_id: values},
                status_code=exc.status,
            )
        return Redirect(f"/pool/claims?decided={claim_id}#claim-{claim_id}", status_code=303)

    # --- rules ------------------------------------------------------------------------------

    @get("/rules", operation_id="web_pool_rules_home")
    async def rules_home(
        self, request: Request[Any, Any, State], pool: PoolDep, clock: ClockDep, viewer: ViewerDep
    ) -> Template:
        me = manager(viewer)
        async with pool.acquire() as conn:
            pools = await dash.pools_of(conn, me.org_id)
        if len(pools) == 1:
            return await _render_rules(request, pool, me, clock.now(), pools[0]["id"])
        return page(
            request,
            "pools/pool_select.html",
            me,
            summaries=None,
            pools=[dash.pool_out(p) for p in pools],
            suffix="/rules",
        )

    @get("/{pool_id:int}/rules", operation_id="web_pool_rules")
    async def rules(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        viewer: ViewerDep,
        pool_id: FromPath[int],
        saved: FromQuery[int | None] = None,
    ) -> Template:
        me = manager(viewer)
        return await _render_rules(request, pool, me, clock.now(), pool_id, saved=saved)

    @post("/{pool_id:int}/rules", operation_id="web_pool_add_rule")
    async def add_rule(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        viewer: ViewerDep,
        pool_id: FromPath[int],
    ) -> Template | Redirect:
        me = manager(viewer)
        values = await form_values(request)
        errors: dict[str, str] = {}
        status = 422
        raw: Any = None
        text = values.get("rule", "").strip()
        if not text:
            errors["rule"] = REQUIRED
        else:
            try:
                raw = json.loads(text)
            except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
                errors["rule"] = f"不是有效的 JSON / not valid JSON: {exc}"
        effective = form_date(values, errors, "effective_from")
        if not errors and not isinstance(raw, dict):
            errors["rule"] = "规则是一个 JSON 对象 / the rule is a JSON object {…}"
        if not errors:
            assert effective is not None and isinstance(raw, dict)
            try:
                version = await dash.add_version(
                    pool,
                    clock.now(),
                    org_id=me.org_id,
                    user_id=me.user_id,
                    pool_id=pool_id,
                    data=dash.NewRuleVersion(
                        rule=raw, effective_from=effective, note=values.get("note", "")
                    ),
                )
            except AppError as exc:
                if exc.status == 404:
                    raise
                field = exc.field or "rule"
                key = "rule" if field.startswith("rule") else field
                if key not in ("rule", "effective_from", "note"):
                    key = "rule"
                errors[key] = f"{field}: {exc.message}" if key == "rule" else exc.message
                status = exc.status
            else:
                return Redirect(f"/pool/{pool_id}/rules?saved={version.version}", status_code=303)
        return await _render_rules(
            request,
            pool,
            me,
            clock.now(),
            pool_id,
            values=values,
            errors=errors,
            status_code=status,
        )


# --- rendering ----------------------------------------------------------------------------


async def _render_claims(
    request: Request[Any, Any, Any],
    db: asyncpg.Pool,
    me: Viewer,
    at: datetime,
    *,
    pool_id: int | None = None,
    status: str | None = None,
    bank: int | None = None,
    decided: int | None = None,
    errors: dict[int, dict[str, str]] | None = None,
    values: dict[int, dict[str, str]] | None = None,
    status_code: int = 200,
) -> Template:
    async with db.acquire() as conn:
        if pool_id is not None:
            await services.own_pool(conn, me.org_id, pool_id)
        pools = await dash.pools_of(conn, me.org_id)
        rows = await dash.claims(conn, me.org_id, pool_id=pool_id, status=status, bank_org_id=bank)
        previews = {}
        for c in rows:
            if c.status == "filed":
                # should the loan have left the pool's reach, the filed figures stand
                with contextlib.suppress(AppError):
                    previews[c.id] = await dash.preview(conn, at, c)
    return page(
        request,
        "pools/pool_claims.html",
        me,
        pools=[dash.pool_out(p) for p in pools],
        pending=[c for c in rows if c.status == "filed"],
        history=[c for c in rows if c.status != "filed"],
        previews=previews,
        chosen_pool=pool_id,
        chosen_status=status,
        chosen_bank=bank,
        statuses=dash.CLAIM_STATUSES,
        decided=decided,
        errors=errors or {},
        values=values or {},
        status_code=status_code,
    )


async def _render_rules(
    request: Request[Any, Any, Any],
    db: asyncpg.Pool,
    me: Viewer,
    at: datetime,
    pool_id: int,
    *,
    saved: int | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    today = china_today(at)
    async with db.acquire() as conn:
        row = await services.own_pool(conn, me.org_id, pool_id)
        versions = await dash.rule_versions(conn, pool_id, today)
    current = next((v for v in versions if v.in_force), versions[0] if versions else None)
    if values is None:
        values = {
            "rule": json.dumps(current.rule, ensure_ascii=False, indent=2) if current else "",
            "effective_from": today.isoformat(),
            "note": "",
        }
    return page(
        request,
        "pools/pool_rules.html",
        me,
        pool=dash.pool_out(row),
        versions=versions,
        pretty=lambda rule: json.dumps(rule, ensure_ascii=False, indent=2),
        values=values,
        errors=errors or {},
        saved=saved,
        status_code=status_code,
    )
