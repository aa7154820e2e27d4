"""The whole API against its own OpenAPI document, fuzzed in-process with Schemathesis.

Every operation gets FUZZ_EXAMPLES generated requests (Hypothesis, derandomised so CI and a
laptop send the same ones), as a caller it lets in — a demo organisation of a kind its
permission names, with a token holding every scope of that kind — on the demo exchange's
data. Each answer must be no server error, and conform to the document: a documented
status, the documented media type (`application/problem+json` for errors) and a body that
validates against the documented schema.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import asyncpg
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from market.accounts.permissions import SCOPES_BY_KIND, permission_of
from market.app import create_app
from market.clock import FrozenClock
from market.demo import seed_demo
from market.settings import Settings
from tests.factories import make_token

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# The demo organisation whose token calls an operation, by the kinds its permission names.
CALLER_EMAIL = {
    "bank": "bank@ipx.demo",
    "buyer": "buyer@ipx.demo",
    "pool": "pool@ipx.demo",
    "operator": "operator@ipx.demo",
    "acquirer": "buyer@ipx.demo",
    "pledgor": "pledgor@ipx.demo",
}


async def _tokens(pool: asyncpg.Pool, clock: FrozenClock) -> dict[str, str]:
    tokens = {}
    for kind, email in CALLER_EMAIL.items():
        row = await pool.fetchrow(
            "SELECT u.id, o.kind FROM users u JOIN organisations o ON o.id = u.org_id "
            "WHERE u.email = $1",
            email,
        )
        assert row is not None, email
        tokens[kind] = await make_token(
            pool, clock.now(), row["id"], sorted(SCOPES_BY_KIND[row["kind"]])
        )
    return tokens


def _caller_kinds(app: Any) -> dict[str, str | None]:
    """operation id → the kind of organisation to call it as (None: anyone)."""
    kinds: dict[str, str | None] = {}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            permission = permission_of(handler)
            if handler.operation_id:
                kinds[str(handler.operation_id)] = (
                    None if permission is None else sorted(permission.kinds)[0]
                )
    return kinds


async def test_the_api_answers_as_its_openapi_document_says(
    settings: Settings, clock: FrozenClock, pool: asyncpg.Pool
) -> None:
    await seed_demo(settings, force=True)
    tokens = await _tokens(pool, clock)
    app = create_app(settings, clock)
    kinds = _caller_kinds(app)
    failures = await asyncio.to_thread(_fuzz, app, kinds, tokens)
    assert failures == [], "\n\n".join(failures)


def _fuzz(app: Any, kinds: dict[str, str | None], tokens: dict[str, str]) -> list[str]:
    """Runs in a thread of its own: Schemathesis drives the app on an event loop of its
    own, as a server would, while the test's loop waits."""
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app)
    failures: list[str] = []
    operations = 0
    with asgi.get_client(app) as client:
        for result in schema.get_all_operations():
            operation = result.ok()
            operations += 1
            kind = kinds.get(str(operation.definition.raw.get("operationId")))
            auth = {} if kind is None else {"Authorization": f"Bearer {tokens[kind]}"}
            failures.extend(_fuzz_one(client, operation, auth))
    assert operations >= 70, "the document lists fewer operations than the API has"
    return failures


def _fuzz_one(client: Any, operation: Any, headers: dict[str, str]) -> list[str]:
    """The first failure of one operation, if any."""

    @hypothesis_settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def check(case: Any) -> None:
        case.call_and_validate(session=client, headers=headers, checks=CHECKS)

    try:
        check()
    except (Exception, BaseExceptionGroup) as exc:  # each operation's first failure
        return [f"{operation.label}: {type(exc).__name__}: {str(exc)[:600]}"]
    return []


@pytest.fixture(autouse=True)
def _quiet_schemathesis(monkeypatch: pytest.MonkeyPatch) -> None:
    # Schemathesis reads its own config file from the working directory; none here.
    monkeypatch.delenv("SCHEMATHESIS_CONFIG", raising=False)
