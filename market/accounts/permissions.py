"""Who may do what: one table, and the guard every route declares (docs/permissions.md).

A permission names the kinds of organisation that may act, whether the organisation must
be approved, the roles inside it, and the API token scope a program needs. Every route
declares one with `guards=[allow(...)]`, on its controller or itself; the few routes anyone
may call are listed in PUBLIC by operation id. tests/test_permissions.py walks the route
table and fails for a route that does neither.

The guard authenticates (the session cookie for pages, the bearer token for /api/),
checks the permission, and leaves the caller in the request's state, where the `me` and
`caller` dependencies find it. Whether an object belongs to the caller's organisation is
the service's question (another's answers 404), asked with the organisation the guard
established.

Pending, rejected and suspended organisations: a permission with `approved=False` lets
their users in (their own account, their inbox); every other permission requires an
approved organisation. This is the one place that decides it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, get_args

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from market.accounts.models import ApiCaller, OrgKind, Role, Viewer
from market.errors import Forbidden, LoginRequired

ALL_KINDS: frozenset[OrgKind] = frozenset(get_args(OrgKind))
ALL_ROLES: frozenset[Role] = frozenset(get_args(Role))
BIDDERS: frozenset[OrgKind] = frozenset({"buyer", "acquirer"})
# Who may offer a licence (or a sale and licence back) on a lot that takes offers: the
# bidders, and the pledgor itself (反向许可), which may never bid (docs/rules.md §Licence
# offers and decision).
OFFERORS: frozenset[OrgKind] = BIDDERS | {"pledgor"}
# Who takes a licence: the same firms, the pledgor included (反向许可).
LICENSEES: frozenset[OrgKind] = OFFERORS
# Who changes things inside an organisation; read_only users see, change nothing.
WRITERS: frozenset[Role] = frozenset({"admin", "officer"})
ADMINS: frozenset[Role] = frozenset({"admin"})


@dataclass(frozen=True)
class Permission:
    name: str
    kinds: frozenset[OrgKind]
    scope: str | None  # the token scope an API call needs; None: pages only
    roles: frozenset[Role] = ALL_ROLES
    approved: bool = True  # the organisation must be approved
    # The operator acts on every organisation's objects by design; tenancy does not apply.
    exchange_wide: bool = False
    description: str = field(default="", compare=False)


def _p(
    name: str,
    kinds: set[OrgKind] | frozenset[OrgKind],
    scope: str | None,
    *,
    roles: set[Role] | frozenset[Role] = ALL_ROLES,
    **kw: Any,
) -> Permission:
    return Permission(name=name, kinds=frozenset(kinds), scope=scope, roles=frozenset(roles), **kw)


# fmt: off
OWN_ACCOUNT = _p("own_account", ALL_KINDS, "account:read", approved=False,
                 description="one's own organisation, account, inbox and preferences")
MANAGE_TOKENS = _p("manage_tokens", ALL_KINDS, "account:write", roles=ADMINS,
                   description="create and revoke the organisation's API tokens")
OWN_DOCUMENTS = _p("own_documents", ALL_KINDS, "account:write", roles=ADMINS, approved=False,
                   description="upload the documents the organisation's approval rests on")
INVITE_USERS = _p("invite_users", ALL_KINDS, "account:write", roles=WRITERS,
                  description="invite colleagues, with a role no higher than one's own")
MANAGE_USERS = _p("manage_users", ALL_KINDS, "account:write", roles=ADMINS,
                  description="give and take roles, deactivate users, revoke invitations")
READ_WEBHOOKS = _p("read_webhooks", ALL_KINDS, "account:read", roles=ADMINS,
                   description="the organisation's webhook endpoints")
MANAGE_WEBHOOKS = _p("manage_webhooks", ALL_KINDS, "account:write", roles=ADMINS,
                     description="add, test and remove webhook endpoints")
READ_INTERESTS = _p("read_interests", BIDDERS, "account:read",
                    description="a buyer's saved interests")
MANAGE_INTERESTS = _p("manage_interests", BIDDERS, "bids:write", roles=WRITERS,
                      description="save and remove interests")
BID = _p("bid", BIDDERS, "bids:write", roles=WRITERS,
         description="register for lots, bid, see one's registrations")
READ_ACTIVITY = _p("read_activity", BIDDERS, "account:read",
                   description="a bidder's overview: registrations and deposits, standing in "
                               "each round, lots won and what is left to pay, transfers, "
                               "refunds and documents")
MAKE_OFFERS = _p("make_offers", OFFERORS, "offers:write", roles=WRITERS,
                 description="register for lots taking licence offers, make and withdraw "
                             "offers, see one's offers")
READ_OFFER_DECISIONS = _p("read_offer_decisions", {"bank", "pool"}, "offers:read",
                          description="the comparison of a lot's offers and the bank's "
                                      "decision (a pool: on loans whose loss it bore)")
READ_COLLATERAL = _p("read_collateral", {"bank"}, "collateral:read",
                     description="the bank's registry and disposal cases")
WRITE_COLLATERAL = _p("write_collateral", {"bank"}, "collateral:write", roles=WRITERS,
                      description="import collateral, open and change cases, upload documents")
MANAGE_LOTS = _p("manage_lots", {"bank"}, "lots:write", roles=WRITERS,
                 description="draft, publish, withdraw and relist the bank's lots")
READ_BANK_POOLS = _p("read_bank_pools", {"bank"}, "pools:read",
                     description="the bank's enrolments, claims and recoveries")
WRITE_BANK_POOLS = _p("write_bank_pools", {"bank"}, "pools:write", roles=WRITERS,
                      description="enrol loans, file claims, write off, record costs, close")
READ_POOL = _p("read_pool", {"pool"}, "pools:read",
               description="a pool's dashboard, claims, postings and rules")
WRITE_POOL = _p("write_pool", {"pool"}, "pools:write", roles=WRITERS,
                description="decide claims, add rule versions")
READ_RECONCILIATION = _p("read_reconciliation", {"pool", "bank"}, "pools:read",
                         description="statements, exceptions, payouts and exports")
WRITE_RECONCILIATION = _p("write_reconciliation", {"pool", "bank"}, "pools:write",
                          roles=WRITERS,
                          description="import statements, match or set aside lines")
READ_LICENCES = _p("read_licences", {"bank", "buyer", "acquirer", "pledgor"}, "licences:read",
                   description="the licence contracts the organisation is a party to, their "
                               "schedules and payments")
REPORT_ROYALTIES = _p("report_royalties", LICENSEES, "licences:write", roles=WRITERS,
                      description="a licensee reports its net sales, by form, API or CSV")
RECORD_LICENCE = _p("record_licence", {"bank", "buyer", "acquirer", "pledgor"},
                    "licences:write", roles=WRITERS,
                    description="record a contract's CNIPA recordal (the bank or the licensee)")
MANAGE_LICENCES = _p("manage_licences", {"bank"}, "licences:write", roles=WRITERS,
                     description="the bank audits royalties, terminates a contract in arrears "
                                 "and records the recordal's cancellation")
# Who pays the exchange's fee and is invoiced for it: the buyer (a premium), the bank (a
# commission) (docs/rules.md §Invoices).
READ_INVOICES = _p("read_invoices", BIDDERS | {"bank"}, "invoices:read",
                   description="the organisation's invoicing details and invoice requests")
MANAGE_INVOICE_DETAILS = _p("manage_invoice_details", BIDDERS | {"bank"}, "invoices:write",
                            roles=WRITERS,
                            description="set the invoicing details (开票信息) and request an "
                                        "invoice of a paid sale's fee")
OPERATE = _p("operate", {"operator"}, "operator:write", roles=WRITERS, exchange_wide=True,
             description="onboard and approve organisations and pools, confirm deposits "
                         "and payments, receipts")
READ_METRICS = _p("read_metrics", {"operator"}, "metrics:read", exchange_wide=True,
                  description="the exchange's operating metrics")
READ_OWN_CASES = _p("read_own_cases", {"pledgor"}, "pledgor:read",
                    description="a pledgor's own disposal cases, their outcome and its surplus")
SIGN_AS_PLEDGOR = _p("sign_as_pledgor", {"pledgor"}, "pledgor:write", roles=WRITERS,
                     description="consent to licensing, answer a licence back, declare and "
                                 "withdraw open licences")
TAKE_OPEN_LICENCE = _p("take_open_licence", BIDDERS, "bids:write", roles=WRITERS,
                       description="take a declared open licence by notice")
READ_SALE_DOCUMENTS = _p("read_sale_documents", {"bank", "buyer", "acquirer"}, "documents:read",
                         description="download the 成交确认书 and 交易凭证 of the sales the "
                                     "organisation is the bank or the buyer of")
READ_TRANSFERS = _p("read_transfers", {"bank", "buyer", "acquirer"}, "transfers:read",
                    description="the transfers of title of the sales the organisation is a "
                                "party to, held in escrow until the title has moved")
RELEASE_PLEDGE = _p("release_pledge", {"bank"}, "transfers:write", roles=WRITERS,
                    description="upload the release of the pledge registration of a sold lot")
RECORD_TRANSFER = _p("record_transfer", BIDDERS, "transfers:write", roles=WRITERS,
                     description="upload the recordal of the transfer of a bought lot")
MANAGE_SETTLEMENT_ACCOUNT = _p("manage_settlement_account", ALL_KINDS - {"operator"},
                               "account:write", roles=ADMINS,
                               description="set the organisation's settlement account "
                                           "(收款账户) for refunds and payouts")
READ_PAYMENTS = _p("read_payments", ALL_KINDS - {"operator"}, "account:read",
                   description="the refunds and payouts the exchange owes the organisation, "
                               "and their status")
PROPOSE_AGREEMENT = _p("propose_agreement", {"bank"}, "collateral:write", roles=WRITERS,
                      description="propose and withdraw the bank's acquisition of a case's "
                                  "assets at an agreed price (协议折价) or its pledge-to-equity")
READ_AGREEMENTS = _p("read_agreements", {"bank", "pool", "acquirer"}, "agreements:read",
                     description="the acquisitions and pledge-to-equity conversions the "
                                 "organisation proposed, takes, or bore the loss of")
OBJECT_TO_AGREEMENT = _p("object_to_agreement", {"pool"}, "pools:write", roles=WRITERS,
                         description="object, with a reason and within the window, to an "
                                     "acquisition or pledge-to-equity on a loan whose loss "
                                     "the pool bore")
TAKE_AGREEMENT = _p("take_agreement", {"acquirer"}, "agreements:write", roles=WRITERS,
                    description="accept or decline, by its deadline, a bank's proposal naming "
                                "the acquisition institution as the taker of a case's assets "
                                "at an agreed price")
MOVE_CLOCK = _p("move_clock", {"operator"}, "clock:write", roles=WRITERS, exchange_wide=True,
                description="move a sandbox exchange's clock forward (no such route in production)")
# fmt: on

PERMISSIONS: tuple[Permission, ...] = (
    OWN_ACCOUNT,
    MANAGE_TOKENS,
    OWN_DOCUMENTS,
    INVITE_USERS,
    MANAGE_USERS,
    READ_WEBHOOKS,
    MANAGE_WEBHOOKS,
    READ_INTERESTS,
    MANAGE_INTERESTS,
    BID,
    READ_ACTIVITY,
    MAKE_OFFERS,
    READ_OFFER_DECISIONS,
    READ_COLLATERAL,
    WRITE_COLLATERAL,
    MANAGE_LOTS,
    READ_BANK_POOLS,
    WRITE_BANK_POOLS,
    READ_POOL,
    WRITE_POOL,
    READ_RECONCILIATION,
    WRITE_RECONCILIATION,
    READ_LICENCES,
    REPORT_ROYALTIES,
    RECORD_LICENCE,
    MANAGE_LICENCES,
    READ_INVOICES,
    MANAGE_INVOICE_DETAILS,
    OPERATE,
    READ_METRICS,
    READ_OWN_CASES,
    SIGN_AS_PLEDGOR,
    TAKE_OPEN_LICENCE,
    READ_SALE_DOCUMENTS,
    READ_TRANSFERS,
    RELEASE_PLEDGE,
    RECORD_TRANSFER,
    MANAGE_SETTLEMENT_ACCOUNT,
    READ_PAYMENTS,
    PROPOSE_AGREEMENT,
    READ_AGREEMENTS,
    OBJECT_TO_AGREEMENT,
    TAKE_AGREEMENT,
    MOVE_CLOCK,
)

# Routes anyone may call, signed in or not, by operation id. Litestar's own routes (the
# OpenAPI document, static files) have none and are public by path.
PUBLIC: frozenset[str] = frozenset(
    {
        "healthz",
        "web_home",
        "web_login_form",
        "web_login",
        "web_logout",
        "web_set_language",
        "web_register_form",
        "web_register",
        "register_buyer",
        "search_lots",
        "get_public_lot",
        "download_public_lot_document",
        "web_catalogue",
        "web_catalogue_results",
        "web_lot",
        "web_lot_document",
        "web_lot_events",
        "web_inbox_count",
        "web_amount_echo",
        "web_invitation_form",
        "web_invitation_accept",
        "accept_invitation",
        "get_sandbox_clock",
        "get_current_agreement",
        "get_agreement",
        "web_agreement",
        "api_reference",
        "list_open_licences",
        "get_open_licence",
        "web_open_licences",
        "web_open_licence",
        "verify_document",
        "web_verify_form",
        "web_verify_document",
        "get_listing",
        "web_listing",
    }
)
PUBLIC_PATHS: tuple[str, ...] = ("/static/", "/schema")

# Which scopes a token of each kind of organisation may hold: those of its permissions.
SCOPES_BY_KIND: dict[OrgKind, frozenset[str]] = {
    kind: frozenset(p.scope for p in PERMISSIONS if p.scope and kind in p.kinds)
    for kind in ALL_KINDS
}
ALL_SCOPES: frozenset[str] = frozenset().union(*SCOPES_BY_KIND.values())


def refusal(
    permission: Permission, kind: OrgKind, status: str, role: Role | None
) -> Forbidden | None:
    """Why an organisation of `kind` and `status` (and a user of `role`; None for a token)
    may not act under `permission`, or None when it may."""
    if kind not in permission.kinds:
        return Forbidden("not_permitted", permission=permission.name)
    if permission.approved and status != "approved":
        return Forbidden("organisation_not_approved", status=status)
    if role is not None and role not in permission.roles:
        return Forbidden("role_not_permitted", permission=permission.name)
    return None


BY_NAME: dict[str, Permission] = {p.name: p for p in PERMISSIONS}


def may(viewer: Viewer | None, name: str) -> bool:
    """Whether a page's viewer may act under the permission `name` (the menu shows only
    what its reader may open)."""
    if viewer is None:
        return False
    return refusal(BY_NAME[name], viewer.org_kind, viewer.org_status, viewer.role) is None


# --- the guard ---------------------------------------------------------------------------

Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]


def allow(permission: Permission) -> Guard:
    """The guard a route declares: `guards=[allow(BID)]`."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        from market.accounts.subjects import api_caller, viewer

        if connection.scope["path"].startswith("/api/"):
            caller: ApiCaller = await api_caller(connection)
            if permission.scope is None or permission.scope not in caller.scopes:
                raise Forbidden("token_lacks_scope", scope=permission.scope or "")
            found = refusal(permission, caller.org_kind, caller.org_status, None)
        else:
            me: Viewer | None = await viewer(connection)
            if me is None:
                raise LoginRequired()
            found = refusal(permission, me.org_kind, me.org_status, me.role)
        if found is not None:
            raise found

    guard.permission = permission  # type: ignore[attr-defined]
    guard.__name__ = f"allow_{permission.name}"
    return guard


def permission_of(handler: BaseRouteHandler) -> Permission | None:
    """The permission a route declares (the test of the route table reads it)."""
    found = [g.permission for g in handler.resolve_guards() if hasattr(g, "permission")]
    if len(found) > 1:
        raise RuntimeError(f"{handler} declares {len(found)} permissions")
    return found[0] if found else None


def table() -> str:
    """The permission table as docs/permissions.md shows it (a test keeps them equal)."""
    lines = [
        "| permission | organisations | approved | roles | API scope | what |",
        "|---|---|---|---|---|---|",
    ]
    for p in PERMISSIONS:
        lines.append(
            f"| `{p.name}` | {', '.join(sorted(p.kinds))} | {'yes' if p.approved else 'no'} "
            f"| {', '.join(sorted(p.roles))} | {f'`{p.scope}`' if p.scope else 'pages only'} "
            f"| {p.description}{' (every organisation’s objects)' if p.exchange_wide else ''} |"
        )
    return "\n".join(lines) + "\n"
