"""Every page that lists or changes something has an API operation that does the same.

PAGE_TO_API names, for every page route (the routes outside /api/) that shows a list or
an object of the organisation, or changes something, the API operation(s) a program calls
for the same. NO_API_NEEDED lists the few page routes that mean nothing to a program,
each with its reason. Read off the sandbox's route table (it has every route production
has, and the sandbox clock's), the test fails for a page route in neither, an entry that
names no such page or no such API operation, and a pairing across organisations: the
operation's permission is the page's, or one of the same kinds of organisation
(market/accounts/permissions.py).
"""

from __future__ import annotations

import msgspec
from litestar.handlers import HTTPRouteHandler

from market.accounts.permissions import ALL_KINDS, Permission, permission_of
from market.app import create_app
from market.settings import Settings
from tests.test_permissions import _routes

PAGE_TO_API: dict[str, str | tuple[str, ...]] = {
    "web_agreement": "get_agreement",
    # --- disposal by agreement ------------------------------------------------------------
    "web_case_agreed_disposals": "list_case_agreed_disposals",
    "web_propose_acquisition": "propose_acquisition",
    "web_propose_equity_conversion": "propose_equity_conversion",
    "web_withdraw_agreed_disposal": "withdraw_agreed_disposal",
    "web_agreed_disposals": "list_agreed_disposals",
    "web_object_to_agreed_disposal": "object_to_agreed_disposal",
    "web_answer_agreed_disposal": "answer_agreed_disposal",
    "web_operator_agreed_disposals": "list_operator_agreed_disposals",
    # --- accounts: one's own organisation, people, tokens -----------------------------
    "web_register": "register_buyer",
    "web_invitation_accept": "accept_invitation",
    "web_account": ("get_own_organisation", "list_own_users", "list_tokens"),
    "web_create_token": "create_token",
    "web_revoke_token": "revoke_token",
    "web_people": ("list_own_users", "list_own_invitations"),
    "web_invite_user": "invite_user",
    "web_revoke_invitation": "revoke_invitation",
    "web_set_user_role": "set_user_role",
    "web_deactivate_user": "deactivate_user",
    # --- the operator's onboarding -----------------------------------------------------
    "web_operator_orgs": "list_organisations",
    "web_operator_onboard": "onboard_organisation",
    "web_operator_org": "get_organisation",
    "web_operator_org_documents": "upload_organisation_documents",
    "web_operator_org_document": "get_organisation_document",
    "web_operator_decide": "decide_organisation",
    "web_operator_create_pool": "create_pool",
    # --- collateral ----------------------------------------------------------------------
    "web_collateral": (
        "list_collateral_loans",
        "list_collateral_assets",
        "list_collateral_imports",
    ),
    "web_collateral_upload": "import_collateral_csv",
    "web_collateral_asset_new": "get_collateral_loan",
    "web_collateral_asset_add": "add_collateral_asset",
    "web_collateral_import": "get_collateral_import",
    "web_collateral_import_progress": "get_collateral_import",
    "web_collateral_loan": "get_collateral_loan",
    "web_collateral_asset": ("get_collateral_asset", "list_collateral_asset_flags"),
    # --- cases ---------------------------------------------------------------------------
    "web_cases": "list_cases",
    "web_new_case": ("list_collateral_loans", "get_collateral_loan"),
    "web_open_case": "open_case",
    "web_case": ("get_case", "get_case_disclosure", "list_bank_lots", "get_case_paths"),
    "web_operator_case_paths": "get_operator_case_paths",
    "web_change_claim": "change_case_claim",
    "web_record_valuation": "record_case_valuation",
    "web_upload_document": "upload_case_document",
    "web_download_document": "download_case_document",
    "web_remove_document": "remove_case_document",
    # --- the bank's lots -----------------------------------------------------------------
    "web_new_lot": "get_case",
    "web_create_lot": "create_lot",
    "web_lot_wizard": ("get_case", "get_case_disclosure"),
    "web_lot_wizard_publish": ("create_lot", "lot_action"),
    "web_bank_lot": "get_bank_lot",
    "web_update_lot": "update_lot",
    "web_lot_action": "lot_action",
    # --- the public catalogue ------------------------------------------------------------
    "web_catalogue": "search_lots",
    "web_catalogue_results": "search_lots",
    "web_lot": "get_public_lot",
    "web_lot_document": "download_public_lot_document",
    # --- taking part: registration, bids, deposits, payments -----------------------------
    "web_register_for_lot": "register_for_lot",
    "web_place_bid": "place_bid",
    # --- a listing (挂牌): its page, the negotiated transfer, the extension ----------------
    "web_listing": "get_listing",
    "web_confirm_listing_transfer": "confirm_listing_transfer",
    "web_countersign_listing_transfer": "countersign_listing_transfer",
    "web_extend_listing": "extend_listing",
    "web_operator_listings": "list_operator_listings",
    "web_my_auctions": (
        "list_registrations",
        "list_own_bids",
        "list_own_sales",
        "list_payment_instructions",
    ),
    "web_my_activity": "get_own_activity",
    "web_operator_deposits": "list_awaiting_deposits",
    "web_operator_confirm_deposit": "confirm_deposit",
    "web_operator_payments": "list_payments_due",
    "web_operator_record_payment": "record_payment",
    # --- sale documents: the public verification, the parties' PDFs ----------------------
    "web_verify_form": "verify_document",
    "web_verify_document": "verify_document",
    "web_sale_documents": "list_sale_documents",
    "web_download_sale_document": "download_sale_document",
    # --- licence offers: the offeror's, and the bank's comparison and decision ------------
    "web_offer_form": "list_own_offers",
    "web_register_to_offer": "register_to_offer",
    "web_submit_offer": "submit_offer",
    "web_my_offers": "list_own_offers",
    "web_withdraw_offer": "withdraw_offer",
    "web_offer_decision": "get_offer_decision",
    "web_operator_offer_decision": "get_any_offer_decision",
    "web_decide_offers": "decide_offers",
    # --- licence contracts: each party's, and the operator's clearing account ----------
    # --- transfers of title: the bank's and the buyer's, the operator's escrow queue -----
    "web_transfers": "list_transfers",
    "web_transfer": "get_transfer",
    "web_transfer_notice_document": "get_transfer_notice_document",
    "web_upload_release": "upload_pledge_release",
    "web_upload_recordal": "upload_transfer_recordal",
    "web_operator_transfers": "list_escrow_transfers",
    "web_operator_transfer": "get_escrow_transfer",
    "web_operator_transfer_document": "get_escrow_notice_document",
    "web_operator_confirm_transfer": "confirm_transfer",
    "web_operator_reject_notice": "reject_transfer_notice",
    "web_operator_transfer_failure": "record_transfer_failure",
    "web_licences": "list_licence_contracts",
    "web_licence": "get_licence_contract",
    "web_licence_recordal_document": "get_licence_recordal_document",
    "web_licence_report": "report_royalty_sales",
    "web_licence_report_csv": "upload_royalty_report",
    "web_licence_recordal": "record_licence_recordal",
    "web_licence_adjust": "adjust_royalty",
    "web_licence_terminate": "terminate_licence_contract",
    "web_licence_cancellation": "record_recordal_cancellation",
    "web_operator_licences": "operator_list_licence_contracts",
    "web_operator_licence": "operator_get_licence_contract",
    "web_operator_clearing": "list_clearing_exceptions",
    "web_operator_clearing_import": "import_clearing_statement",
    "web_operator_record_royalty_payment": "record_royalty_payment",
    "web_operator_clearing_deposit": "match_clearing_line_to_deposit",
    "web_operator_clearing_set_aside": "set_aside_clearing_line",
    # --- notifications, webhooks, interests ----------------------------------------------
    "web_inbox": ("list_inbox", "list_notifications"),
    "web_inbox_count": "list_inbox",  # its `unread`
    "web_inbox_mark_read": "mark_inbox_read",
    "web_inbox_mark_all_read": "mark_inbox_all_read",
    "web_notification_preferences": "get_notification_preferences",
    "web_save_notification_preferences": "save_notification_preferences",
    "web_operator_notifications": "list_failed_deliveries",
    "web_operator_replay_notification": "replay_delivery",
    "web_operator_replay_all_notifications": "replay_failed_deliveries",
    "web_webhooks": "list_webhooks",
    "web_create_webhook": "create_webhook",
    "web_test_webhook": "test_webhook",
    "web_deactivate_webhook": "delete_webhook",
    "web_interests": "list_interests",
    "web_interest_create": "create_interest",
    "web_interest_delete": "delete_interest",
    # --- the bank's pools ----------------------------------------------------------------
    "web_bank_pools": (
        "bank_pool_loans",
        "bank_claim_preview",
        "list_bank_claims",
        "list_collateral_loans",
    ),
    "web_bank_pools_enrol": "bank_pool_enrol",
    "web_bank_pools_file_claim": "bank_file_claim",
    "web_bank_pools_write_off": "bank_write_off",
    "web_bank_pool_case": "bank_case_receipts",
    "web_bank_pool_case_cost": "bank_case_cost",
    "web_bank_pool_case_close": "bank_close_case",
    "web_operator_receipts": "operator_list_receipts",
    "web_operator_record_receipt": "operator_record_receipt",
    "web_operator_reverse_receipt": "operator_reverse_receipt",
    # --- the pool manager ----------------------------------------------------------------
    "web_pool_home": ("pool_list", "pool_dashboard", "pool_stream_overview"),
    "web_pool_dashboard": ("pool_dashboard", "pool_stream_overview"),
    "web_pool_streams": ("pool_streams", "pool_stream_overview"),
    "web_pool_postings": "pool_postings",
    "web_pool_enrolments": "pool_enrolments",
    "web_pool_claims": ("list_pool_claims", "pool_claims"),
    "web_pool_decide_claim": "pool_decide_claim",
    "web_pool_rules_home": ("pool_list", "pool_rules"),
    "web_pool_rules": "pool_rules",
    "web_pool_add_rule": "pool_add_rule",
    # --- reconciliation ------------------------------------------------------------------
    "web_reconciliation": (
        "list_statements",
        "list_statement_exceptions",
        "list_reconciliation_payouts",
        "list_shortfalls",
    ),
    "web_reconciliation_upload": "import_statement",
    "web_reconciliation_statement": ("get_statement", "list_shortfalls"),
    "web_reconciliation_match": "match_statement_line",
    "web_reconciliation_set_aside": "set_aside_statement_line",
    "web_reconciliation_settle_shortfall": "settle_shortfall",
    "web_reconciliation_write_off_shortfall": "write_off_shortfall",
    "web_reconciliation_export_bank": "export_bank_statement",
    "web_reconciliation_export_case": "export_case_statement",
    "web_reconciliation_export_pool": "export_pool_statement",
    # --- payments out: refunds and payouts owed, settlement accounts, payment files -----
    "web_payments": ("list_payments_owed", "get_settlement_account"),
    "web_set_settlement_account": "set_settlement_account",
    "web_operator_payments_out": ("list_payment_instructions_out", "list_payment_files"),
    "web_operator_export_payment_file": "export_payment_file",
    "web_operator_close_payment_period": "close_payment_period",
    "web_operator_payment_file": "download_payment_file",
    # --- the pledgor and open licences ---------------------------------------------------
    "web_pledgor_cases": "list_pledgor_cases",
    "web_pledgor_case": "get_pledgor_case",
    "web_pledgor_consent": "give_licensing_consent",
    "web_pledgor_propose_open_licence": "propose_open_licence",
    "web_pledgor_declare_open_licence": "declare_open_licence",
    "web_pledgor_withdraw_open_licence": "withdraw_open_licence",
    "web_pledgor_answer_licence_back": "answer_licence_back",
    "web_bank_consent_open_licence": "consent_open_licence",
    "web_open_licences": "list_open_licences",
    "web_open_licence": "get_open_licence",
    "web_take_open_licence": "take_open_licence",
    # --- invoices: the payer's details and requests, the operator's export and import ---
    "web_invoices": ("get_invoice_details", "list_invoice_requests"),
    "web_set_invoice_details": "set_invoice_details",
    "web_request_invoice": "request_invoice",
    "web_operator_invoices": ("list_all_invoice_requests", "list_invoice_exports"),
    "web_operator_invoice_export": "export_invoice_requests",
    "web_operator_invoice_export_file": "download_invoice_export",
    "web_operator_invoice_import": "import_issued_invoices",
    "web_operator_invoice_issue": "record_invoice_issued",
    # --- the sandbox's clock -------------------------------------------------------------
    "web_sandbox_clock": "get_sandbox_clock",
    "web_move_sandbox_clock": "advance_sandbox_clock",
}

NO_API_NEEDED: frozenset[str] = frozenset(
    {
        "healthz",  # the load balancer's probe, answered as JSON already; no page
        "web_home",  # the welcome page: links to the others, lists nothing
        "web_login_form",  # the sign-in form; a program holds a token instead
        "web_login",  # a browser session; the API authenticates by bearer token
        "web_logout",  # ends the browser session; a token is revoked with revoke_token
        "web_set_language",  # the pages' language cookie; the API reads Accept-Language
        "web_amount_echo",  # a typed amount said back; the API takes integer fen only
        "web_register_form",  # an empty form; its POST is register_buyer
        "web_invitation_form",  # an empty form for the link's token; accept_invitation
        "web_lot_events",  # the live page's server-sent events; get_public_lot reads the state
        "web_collateral_csv_template",  # a fixed file of column headers, no one's data
        "web_reconciliation_template",  # a fixed file of column headers, no one's data
    }
)

# Pairings whose permissions differ in the organisations they admit, and why.
ACROSS_KINDS: dict[tuple[str, str], str] = {
    # The sandbox's time is public over the API (anyone rehearsing reads it); the page is
    # the operator's because it carries the form that moves it.
    ("web_sandbox_clock", "get_sandbox_clock"): "a public read of the operator's clock",
}

CHANGES = {"POST", "PUT", "PATCH", "DELETE"}


def _kinds(permission: Permission | None) -> frozenset[str]:
    """The kinds of organisation a permission admits; a public route admits anyone."""
    return ALL_KINDS if permission is None else frozenset(permission.kinds)


def _table(
    settings: Settings,
) -> tuple[dict[str, set[str]], dict[str, set[str]], dict[str, HTTPRouteHandler]]:
    """(page operation → methods, API operation → methods, operation → handler)."""
    app = create_app(msgspec.structs.replace(settings, mode="sandbox"))
    pages: dict[str, set[str]] = {}
    apis: dict[str, set[str]] = {}
    handlers: dict[str, HTTPRouteHandler] = {}
    for method, path, handler in _routes(app):
        operation = str(handler.operation_id)
        (apis if path.startswith("/api/") else pages).setdefault(operation, set()).add(method)
        handlers[operation] = handler
    return pages, apis, handlers


def _named(entry: str | tuple[str, ...]) -> tuple[str, ...]:
    return (entry,) if isinstance(entry, str) else entry


def test_every_page_names_its_api_operation(settings: Settings) -> None:
    pages, apis, _ = _table(settings)
    problems = [
        f"{page}: both mapped and needing no API" for page in PAGE_TO_API.keys() & NO_API_NEEDED
    ]
    problems += [
        f"{page}: a page naming no API operation (PAGE_TO_API) nor exempt (NO_API_NEEDED)"
        for page in sorted(set(pages) - set(PAGE_TO_API) - NO_API_NEEDED)
    ]
    problems += [
        f"{page}: no such page route"
        for page in sorted((set(PAGE_TO_API) | NO_API_NEEDED) - set(pages))
    ]
    problems += [
        f"{page} → {api}: no such /api/ operation"
        for page, entry in PAGE_TO_API.items()
        for api in _named(entry)
        if api not in apis
    ]
    assert problems == [], "\n".join(problems)


def test_a_page_and_its_api_operation_do_the_same_kind_of_thing(settings: Settings) -> None:
    """A page that changes something names an operation that changes something; a page
    that only shows names operations that only read."""
    pages, apis, _ = _table(settings)
    wrong = []
    for page, entry in PAGE_TO_API.items():
        named = tuple(api for api in _named(entry) if api in apis)  # others: the test above
        if page not in pages or not named:
            continue
        if pages[page] & CHANGES:
            if not any(apis[api] & CHANGES for api in named):
                wrong.append(f"{page} changes something, {named} only read")
        else:
            writes = [api for api in named if apis[api] & CHANGES]
            if writes:
                wrong.append(f"{page} only shows, {writes} change something")
    assert wrong == [], "\n".join(wrong)


def test_a_page_and_its_api_operation_serve_the_same_organisations(settings: Settings) -> None:
    pages, apis, handlers = _table(settings)
    across = []
    excused = set()
    for page, entry in PAGE_TO_API.items():
        if page not in pages:
            continue  # no such page: the first test says so
        page_permission = permission_of(handlers[page])
        for api in _named(entry):
            if api not in apis:
                continue  # no such operation: the first test says so
            api_permission = permission_of(handlers[api])
            if api_permission == page_permission:
                continue
            if _kinds(api_permission) == _kinds(page_permission):
                continue
            if (page, api) in ACROSS_KINDS:
                excused.add((page, api))
                continue
            across.append(
                f"{page} ({page_permission and page_permission.name}) → "
                f"{api} ({api_permission and api_permission.name})"
            )
    assert across == [], "pairs across kinds of organisation:\n" + "\n".join(across)
    assert excused == set(ACROSS_KINDS), f"excused but no such pair: {set(ACROSS_KINDS) - excused}"
