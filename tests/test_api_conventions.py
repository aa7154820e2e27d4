"""What every API operation keeps to, read off the route table and the OpenAPI document:

1. 201 answers a creation only; an action on an existing object (an approval, a decision,
   a confirmation, a match…) answers 200, a removal 204; a read 200.
2. Every /api/ operation has a summary (words, not the handler's name), a description of
   more than one word, and an example of its request body where it has one.
"""

from __future__ import annotations

from typing import Any

from litestar.handlers import HTTPRouteHandler

from market.app import create_app
from market.settings import Settings

# The operations that create something (and answer 201 with it).
CREATIONS = {
    "submit_offer",
    "export_payment_file",
    "accept_invitation",
    "upload_own_documents",
    "invite_user",
    "create_pool",
    "onboard_organisation",
    "upload_organisation_documents",
    "register_buyer",
    "create_token",
    "import_collateral_csv",
    "add_collateral_asset",
    "open_case",
    "record_case_valuation",
    "upload_case_document",
    "create_lot",
    "register_for_lot",  # 200 with the registration when it existed already
    "place_bid",
    "create_webhook",
    "create_interest",
    "bank_pool_enrol",
    "bank_file_claim",
    "bank_case_cost",
    "operator_record_receipt",
    "pool_add_rule",
    "import_statement",
    "give_licensing_consent",
    "propose_open_licence",
    "take_open_licence",
    "report_royalty_sales",
    "upload_royalty_report",
    "adjust_royalty",
    "import_clearing_statement",
    "record_royalty_payment",
    "export_invoice_requests",
    "propose_acquisition",
    "propose_equity_conversion",
}


def _api_handlers(app: Any) -> list[tuple[str, str, HTTPRouteHandler]]:
    found = []
    for route in app.routes:
        if not route.path.startswith("/api/"):
            continue
        for handler in getattr(route, "route_handlers", ()):
            for method in sorted(handler.http_methods - {"OPTIONS", "HEAD"}):
                found.append((method, route.path, handler))
    return found


def test_201_answers_creations_only(settings: Settings) -> None:
    app = create_app(settings)
    wrong = []
    seen = set()
    for method, path, handler in _api_handlers(app):
        operation = str(handler.operation_id)
        seen.add(operation)
        status = handler.status_code
        if operation in CREATIONS:
            expected = {201}
        elif method == "DELETE":
            expected = {204}
        elif method == "GET":
            expected = {200}
        else:  # an action on something that exists: its new state, or nothing
            expected = {200, 204}
        if status not in expected:
            wrong.append(f"{method} {path} ({operation}) answers {status}, not {expected}")
    assert wrong == [], "\n".join(wrong)
    assert seen >= CREATIONS, f"no such operation: {sorted(CREATIONS - seen)}"


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:
        return _resolve(doc, doc["components"]["schemas"][ref.rsplit("/", 1)[1]])
    return schema


def _has_examples(doc: dict[str, Any], media: dict[str, Any]) -> bool:
    if media.get("example") is not None or media.get("examples"):
        return True
    schema = media.get("schema", {})
    return bool(schema.get("examples") or _resolve(doc, schema).get("examples"))


def test_every_api_operation_is_documented(settings: Settings) -> None:
    app = create_app(settings)
    doc = app.openapi_schema.to_schema()
    problems = []
    operations = 0
    for path, item in doc["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            operations += 1
            name = f"{method.upper()} {path} ({op.get('operationId')})"
            summary = op.get("summary") or ""
            if len(summary.split()) < 2:  # Litestar's default is the handler's name
                problems.append(f"{name}: summary {summary!r}")
            if len((op.get("description") or "").split()) < 2:
                problems.append(f"{name}: no description")
            body = op.get("requestBody")
            if body is not None:
                for media_type, media in body["content"].items():
                    if not _has_examples(doc, media):
                        problems.append(f"{name}: no example of its {media_type} body")
    assert operations >= 80
    assert problems == [], "\n".join(problems)


def test_a_form_field_that_is_no_text_is_a_malformed_request() -> None:
    from market.problems import as_app_error

    error = as_app_error(UnicodeDecodeError("utf-8", b"\xad", 0, 1, "invalid start byte"))
    assert (error.status, error.code) == (400, "malformed")


def test_the_examples_codes_are_real_codes(settings: Settings) -> None:
    """An example a bank copies must pass the exchange's own checks: a credit code's or an
    identity number's check character, an e-mail address."""
    from market import validators

    checks = {
        "credit_code": validators.credit_code,
        "id_number": validators.id_number,
        "email": validators.email,
        "admin_email": validators.email,
    }
    doc = create_app(settings).openapi_schema.to_schema()
    seen: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if key in checks and isinstance(inner, str):
                    checks[key](inner)  # raises on a code that would be refused
                    seen.append(key)
                walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    for item in doc["paths"].values():
        for op in item.values():
            if isinstance(op, dict) and "requestBody" in op:
                for media in op["requestBody"]["content"].values():
                    walk(media)
                    walk(_resolve(doc, media.get("schema", {})).get("examples"))
    assert {"credit_code", "id_number", "admin_email"} <= set(seen)
