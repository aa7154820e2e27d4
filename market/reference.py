"""The API reference: what the OpenAPI document says beyond Litestar's own (who may call
each operation, the webhooks), and the page `/api/reference` that renders the document for
a bank's IT team — server-side, no script, in the reader's language (docs/webhooks.md).

Each guarded API operation declares the bearer-token scheme with the scope it needs
(`security`) and the permission behind it (`x-permission`: docs/permissions.md); the page
reads only the document, so whatever the routes declare (summaries, descriptions,
examples) shows there as it does in /schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final
from weakref import WeakKeyDictionary

from litestar import Controller, Litestar, Request, get
from litestar.datastructures import State
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import Components, Operation, SecurityScheme
from litestar.response import Template

from market.accounts.permissions import Permission
from market.deps import ViewerDep
from market.web import page

SCHEME: Final = "token"
# The page's view of each app's document: the document does not change while it runs.
_VIEWS: WeakKeyDictionary[Litestar, dict[str, Any]] = WeakKeyDictionary()
METHODS: Final = ("get", "put", "post", "patch", "delete")


def components() -> Components:
    """The document's security scheme: an API token as a bearer token."""
    return Components(
        security_schemes={
            SCHEME: SecurityScheme(
                type="http",
                scheme="bearer",
                description=(
                    "An API token of the organisation (created on the account page), sent as "
                    "`Authorization: Bearer <token>`. Each operation names the scope it needs."
                ),
            )
        }
    )


@cache
def _operation_class(permission: Permission) -> type[Operation]:
    """Operation with `x-permission`: the permission's name, organisations and roles."""
    facts = {
        "name": permission.name,
        "organisations": sorted(permission.kinds),
        "roles": sorted(permission.roles),
        "approved": permission.approved,
    }

    @dataclass
    class PermittedOperation(Operation):
        x_permission: dict[str, Any] = field(
            default_factory=lambda: dict(facts), metadata={"alias": "x-permission"}
        )

    return PermittedOperation


def document(handler: HTTPRouteHandler, permission: Permission | None) -> None:
    """Declare on an API route who may call it (module docstring); a public one declares
    nothing."""
    if permission is None or permission.scope is None:
        return
    handler.security = [{SCHEME: [permission.scope]}]
    handler._resolved_security = [{SCHEME: [permission.scope]}]  # resolved once, from here
    handler.operation_class = _operation_class(permission)


# --- the page -------------------------------------------------------------------------------


def _ref_name(schema: Any) -> str | None:
    """The component's name of a schema, or of an array's items; else its type."""
    if not isinstance(schema, dict):
        return None
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if schema.get("type") == "array":
        inner = _ref_name(schema.get("items"))
        return f"{inner}[]" if inner else "array"
    if "title" in schema:
        return str(schema["title"])
    kind = schema.get("type")
    return str(kind) if kind else None


def _content_names(content: Any) -> list[tuple[str, str | None]]:
    """(media type, schema name) of a request body's or response's content."""
    if not isinstance(content, dict):
        return []
    return [(media, _ref_name(body.get("schema"))) for media, body in content.items()]


def _properties(schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(schema.get("required", ()))
    out = []
    for name, prop in (schema.get("properties") or {}).items():
        kinds = list(prop.get("anyOf", [prop]))
        type_names = []
        for kind in kinds:
            if "enum" in kind:
                type_names.append(" | ".join(str(v) for v in kind["enum"]))
            elif kind.get("type") == "array":
                type_names.append(f"{(kind.get('items') or {}).get('type', 'any')}[]")
            elif kind.get("type") == "object" and "title" in kind:
                type_names.append(str(kind["title"]))
            else:
                fmt = kind.get("format")
                type_names.append(f"{kind.get('type', 'any')}{f' ({fmt})' if fmt else ''}")
        out.append(
            {
                "name": name,
                "type": " | ".join(type_names),
                "required": name in required,
                "description": prop.get("description", ""),
            }
        )
    return out


def _operation(path: str, method: str, op: dict[str, Any]) -> dict[str, Any]:
    responses = op.get("responses") or {}
    ok: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for status, response in sorted(responses.items()):
        entry = {
            "status": status,
            "description": response.get("description", ""),
            "content": _content_names(response.get("content")),
        }
        (errors if str(status)[0] in "45" else ok).append(entry)
    scopes = [s for requirement in op.get("security") or [] for s in requirement.get(SCHEME, [])]
    return {
        "id": op.get("operationId", ""),
        "method": method.upper(),
        "path": path,
        "summary": op.get("summary", ""),
        "description": op.get("description", ""),
        "parameters": [
            {
                "name": p.get("name", ""),
                "in": p.get("in", ""),
                "required": bool(p.get("required")),
                "type": _ref_name(p.get("schema")) or "",
                "description": p.get("description", ""),
            }
            for p in op.get("parameters") or []
        ],
        "request": _content_names((op.get("requestBody") or {}).get("content")),
        "ok": ok,
        "errors": errors,
        "scopes": scopes,
        "permission": op.get("x-permission"),
        "deprecated": bool(op.get("deprecated")),
    }


def view(doc: dict[str, Any]) -> dict[str, Any]:
    """What the page shows of an OpenAPI document: the operations under /api/ grouped by
    tag (sorted by name), and the webhooks."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for path, item in (doc.get("paths") or {}).items():
        if not path.startswith("/api/"):
            continue
        for method in METHODS:
            op = item.get(method)
            if isinstance(op, dict):
                for tag in op.get("tags") or ["other"]:
                    groups.setdefault(tag, []).append(_operation(path, method, op))
    webhooks = []
    for event, item in (doc.get("webhooks") or {}).items():
        op = item.get("post") or {}
        body = ((op.get("requestBody") or {}).get("content") or {}).get("application/json", {})
        schema = body.get("schema") or {}
        payload = (schema.get("properties") or {}).get("payload") or {}
        webhooks.append(
            {
                "event": event,
                "summary": op.get("summary", ""),
                "description": op.get("description", ""),
                "schema": schema.get("title", ""),
                "fields": _properties(schema),
                "payload": payload.get("title", ""),
                "payload_fields": _properties(payload),
                "headers": [p.get("name", "") for p in op.get("parameters") or []],
            }
        )
    return {
        "title": (doc.get("info") or {}).get("title", ""),
        "version": (doc.get("info") or {}).get("version", ""),
        "openapi": doc.get("openapi", ""),
        "groups": sorted(groups.items()),
        "webhooks": webhooks,
    }


class ReferencePage(Controller):
    path = "/api/reference"
    include_in_schema = False

    @get("", operation_id="api_reference", cache=False)
    async def reference(self, request: Request[Any, Any, State], viewer: ViewerDep) -> Template:
        """The API reference, rendered from this app's OpenAPI document."""
        app = request.app
        if app not in _VIEWS:
            _VIEWS[app] = view(app.openapi_schema.to_schema())
        return page(request, "reference/api.html", viewer, ref=_VIEWS[app])
