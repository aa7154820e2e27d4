"""The pool manager's pages: the dashboard of a pool with its charts, the drill-down from
every figure to the ledger postings (or the loans, claims, payouts) behind it, the claims
to decide and the pool's rule versions.

Pool organisations only (a bank or a buyer: 403); another organisation's pool or claim is
404. Figures and their definitions: market/pools/dashboard.py. Deciding a claim and adding
a rule version are commands (concurrency: their docstrings in dashboard.py).
"""

from __future__ import annotations

import contextlib
import json
from datetime import datetime
from typing import Annotated, Any

import asyncpg
import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Redirect, Template

from market import i18n
from market.accounts.models import Viewer
from market.accounts.permissions import READ_POOL, WRITE_POOL, allow
from market.cases.services import china_today
from market.db import Conn
from market.deps import ActDep, ClockDep, MeDep, PoolDep
from market.errors import AppError, Invalid
from market.pools import charts, rule_form, rule_preview, services, streams
from market.pools import dashboard as dash
from market.pools.rule_form import RuleForm
from market.pools.rule_text import KNOWN_PARTIES, Words
from market.pools.rules import parse_rule
from market.web import Form, language, page

SERIES_COLOURS = ("#9b1c1c", "#1e6b3a", "#5b6575")
# `?pool=` (the handler's `pool` is the database pool)
PoolQuery = Annotated[int | None, QueryParameter(name="pool")]


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

    @get("/", operation_id="web_pool_home", guards=[allow(READ_POOL)])
    async def home(
        self, request: Request[Any, Any, State], pool: PoolDep, clock: ClockDep, me: MeDep
    ) -> Template:
        at = clock.now()
        async with pool.acquire() as conn:
            pools = await dash.pools_of(conn, me.org_id)
            if len(pools) == 1:
                return await self._dashboard(request, conn, me, pools[0], pools, at)
            summaries = [await dash.summary(conn, p) for p in pools]
        return page(
            request,
            "pools/pool_select.html",
            me,
            summaries=summaries,
            rate=_rate,
            say=Words(language(request, me)),
        )

    @get("/{pool_id:int}", operation_id="web_pool_dashboard", guards=[allow(READ_POOL)])
    async def show(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        me: MeDep,
        pool_id: FromPath[int],
    ) -> Template:
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
        stream_totals = (await streams.overview(conn, row, at)).totals
        lang = language(request, me)
        return page(
            request,
            "pools/pool_dashboard.html",
            me,
            d=d,
            pools=pools,
            stream_totals=stream_totals,
            charts=_charts(d, i18n.translator(lang)),
            colours=SERIES_COLOURS,
            rate=_rate,
            say=Words(lang, d.pool),
        )

    # --- drill-down ------------------------------------------------------------------------

    @get("/{pool_id:int}/postings", operation_id="web_pool_postings", guards=[allow(READ_POOL)])
    async def postings(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        pool_id: FromPath[int],
        figure: FromQuery[str] = "all",
        month: FromQuery[str | None] = None,
        bank: FromQuery[int | None] = None,
        kind: FromQuery[str | None] = None,
    ) -> Template:
        filt = dash.DrillFilter(month=month or None, bank_org_id=bank, kind=kind or None)
        async with pool.acquire() as conn:
            row = await services.own_pool(conn, me.org_id, pool_id)
            out = await dash.postings(conn, row, figure, filt)
            status = {"recoveries_received": "received", "recoveries_outstanding": "expected"}
            payouts = (
                await dash.payouts(conn, row, status[figure], filt) if figure in status else None
            )
            bank_name = await dash.bank_name(conn, row, bank) if bank is not None else None
        pool_out = dash.pool_out(row)
        return page(
            request,
            "pools/pool_postings.html",
            me,
            pool=pool_out,
            out=out,
            payouts=payouts,
            bank_name=bank_name,
            figures=list(dash.FIGURES),
            limit=dash.POSTINGS_LIMIT,
            say=Words(language(request, me), pool_out),
        )

    @get("/{pool_id:int}/enrolments", operation_id="web_pool_enrolments", guards=[allow(READ_POOL)])
    async def enrolments(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        pool_id: FromPath[int],
        bank: FromQuery[int | None] = None,
    ) -> Template:
        async with pool.acquire() as conn:
            row = await services.own_pool(conn, me.org_id, pool_id)
            rows = await dash.enrolments(conn, row, bank)
        pool_out = dash.pool_out(row)
        return page(
            request,
            "pools/pool_enrolments.html",
            me,
            pool=pool_out,
            rows=rows,
            total_fen=sum(r["enrolled_principal_fen"] for r in rows),
            say=Words(language(request, me), pool_out),
        )

    # --- claims ----------------------------------------------------------------------------

    @get("/claims", operation_id="web_pool_claims", guards=[allow(READ_POOL)])
    async def claims(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        me: MeDep,
        pool_id: PoolQuery = None,
        status: FromQuery[str | None] = None,
        bank: FromQuery[int | None] = None,
        decided: FromQuery[int | None] = None,
    ) -> Template:
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

    @post(
        "/claims/{claim_id:int}/decision",
        operation_id="web_pool_decide_claim",
        guards=[allow(WRITE_POOL)],
    )
    async def decide(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        act: ActDep,
        me: MeDep,
        claim_id: FromPath[int],
    ) -> Template | Redirect:
        form = await Form.read(request, me)
        data = {
            "claim_id": claim_id,
            "decision": form.text("decision"),
            "reason": form.values.get("reason", ""),
        }
        done = await form.submit(
            lambda: act(dash.decide_claim, msgspec.convert(data, dash.DecideClaim))
        )
        if done is not None:
            return Redirect(f"/pool/claims?decided={claim_id}#claim-{claim_id}", status_code=303)
        errors = {
            (field if field in ("decision", "reason") else "form"): text
            for field, text in form.errors.items()
        }
        return await _render_claims(
            request,
            pool,
            me,
            clock.now(),
            errors={claim_id: errors},
            values={claim_id: form.values},
            status_code=form.status,
        )

    # --- rules ------------------------------------------------------------------------------

    @get("/rules", operation_id="web_pool_rules_home", guards=[allow(READ_POOL)])
    async def rules_home(
        self, request: Request[Any, Any, State], pool: PoolDep, clock: ClockDep, me: MeDep
    ) -> Template:
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
            say=Words(language(request, me)),
        )

    @get("/{pool_id:int}/rules", operation_id="web_pool_rules", guards=[allow(READ_POOL)])
    async def rules(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        me: MeDep,
        pool_id: FromPath[int],
        saved: FromQuery[int | None] = None,
    ) -> Template:
        return await _render_rules(request, pool, me, clock.now(), pool_id, saved=saved)

    @post("/{pool_id:int}/rules", operation_id="web_pool_add_rule", guards=[allow(WRITE_POOL)])
    async def add_rule(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        act: ActDep,
        me: MeDep,
        pool_id: FromPath[int],
    ) -> Template | Redirect:
        """Save a new rule version, or (`action=preview`) show what the rule typed would
        pay on the sample loans, writing nothing. The rule comes from the form's fields,
        or from the advanced view's JSON (`rule`) when that is what was sent."""
        form = await Form.read(request, me)
        typed = RuleForm(form)
        as_json = "rule" in form.values
        raw = _rule_json(form) if as_json else typed.read()
        preview_only = form.text("action") == "preview"
        effective = form.date("effective_from", required=not preview_only)
        today = china_today(clock.now())
        if preview_only:
            previews = None
            if not form.errors:
                try:
                    previews = rule_preview.preview(parse_rule(raw), today)
                except Invalid as exc:
                    exc.field = f"rule.{exc.field}" if exc.field and exc.field != "rule" else "rule"
                    form.refuse(exc)
            return await _render_rules(
                request,
                pool,
                me,
                clock.now(),
                pool_id,
                values=form.values,
                errors=_rule_errors(form.errors, typed, as_json),
                previews=previews,
                status_code=200 if previews is not None else form.status,
            )
        data = {
            "pool_id": pool_id,
            "rule": raw,
            "effective_from": effective,
            "note": form.values.get("note", ""),
        }
        version = await form.submit(
            lambda: act(dash.add_rule_version, msgspec.convert(data, dash.AddRuleVersion))
        )
        if version is not None:
            return Redirect(f"/pool/{pool_id}/rules?saved={version.version}", status_code=303)
        return await _render_rules(
            request,
            pool,
            me,
            clock.now(),
            pool_id,
            values=form.values,
            errors=_rule_errors(form.errors, typed, as_json),
            status_code=form.status,
        )


def _rule_json(form: Form) -> dict[str, Any] | None:
    """The rule the manager typed, as a JSON object; what is wrong with it goes beside
    the field."""
    text = form.text("rule")
    if not text:
        form.fail("rule", "required")
        return None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        form.fail("rule", "rule_not_json", line=exc.lineno, column=exc.colno)
        return None
    except RecursionError:  # nested deeper than the parser goes
        form.fail("rule", "rule_too_deep")
        return None
    if not isinstance(raw, dict):
        form.fail("rule", "rule_not_object")
        return None
    return raw


def _rule_errors(errors: dict[str, str], typed: RuleForm, as_json: bool) -> dict[str, str]:
    """A refusal of a field inside the rule shows beside its input (`rule.shares[0].weight`
    → the first party's weight) — or, in the advanced view, beside the JSON, led by its
    path; the other fields keep theirs."""
    out: dict[str, str] = {}
    for field, text in errors.items():
        if field in ("effective_from", "note"):
            out.setdefault(field, text)
        elif as_json:
            shown = f"{field}: {text}" if field.startswith("rule.") else text
            out.setdefault("rule", shown)
        elif field.startswith("rule") or field == "form":
            out.setdefault(typed.field(field), text)
        else:
            out.setdefault(field, text)
    return out


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
        say=Words(language(request, me)),
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
    previews: list[rule_preview.SampleOut] | None = None,
    status_code: int = 200,
) -> Template:
    today = china_today(at)
    async with db.acquire() as conn:
        row = await services.own_pool(conn, me.org_id, pool_id)
        versions = await dash.rule_versions(conn, pool_id, today)
    current = next((v for v in versions if v.in_force), versions[0] if versions else None)
    if values is None:
        values = {
            **rule_form.values_of(parse_rule(current.rule) if current else None),
            "effective_from": today.isoformat(),
            "note": "",
        }
    current_json = json.dumps(current.rule, ensure_ascii=False, indent=2) if current else ""
    pool_out = dash.pool_out(row)
    return page(
        request,
        "pools/pool_rules.html",
        me,
        pool=pool_out,
        versions=versions,
        pretty=lambda rule: json.dumps(rule, ensure_ascii=False, indent=2),
        values=values,
        json_text=values.get("rule", current_json),
        share_rows=rule_form.rows(values, "share", rule_form.MIN_SHARE_ROWS),
        tier_rows=rule_form.rows(values, "tier", rule_form.MIN_TIER_ROWS),
        known_parties=KNOWN_PARTIES,
        previews=previews,
        errors=errors or {},
        saved=saved,
        status_code=status_code,
        say=Words(language(request, me), pool_out),
    )
