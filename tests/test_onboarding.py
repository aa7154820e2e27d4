"""Onboarding through the API: the operator brings in a second bank and a pool, their
admins join by invitation and invite colleagues, roles change and users leave; bad input
is refused naming its field and writes nothing; races on one invitation or on the last
admin stay correct against real PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import re
from datetime import timedelta
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from market.accounts import people
from market.clock import FrozenClock
from market.settings import Settings
from market.validators import _id_check_char
from tests.factories import credit_code, make_org, make_token, sign_in

PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def _doc(kind: str) -> dict[str, str]:
    return {"kind": kind, "filename": f"{kind}.pdf", "content": base64.b64encode(PDF).decode()}


async def _link_token(pool: asyncpg.Pool, settings: Settings, invitation_id: int) -> str:
    """The token the invitation e-mail's link carries (people.invitation_link)."""
    async with pool.acquire() as conn:
        link = await people.invitation_link(conn, settings.secret_key, "http://x", invitation_id)
    return link.rsplit("/", 1)[1]


async def _count(pool: asyncpg.Pool, table: str) -> int:
    return int(await pool.fetchval(f"SELECT count(*) FROM {table}"))


async def _operator(pool: asyncpg.Pool, clock: FrozenClock) -> dict[str, str]:
    _, user, _ = await make_org(pool, clock.now(), kind="operator")
    token = await make_token(pool, clock.now(), user, ["operator:write"])
    return {"Authorization": f"Bearer {token}"}


async def _invited(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, email: str
) -> tuple[int, dict[str, str], int]:
    """A bank admin, their token's header, and their invitation of an officer to `email`."""
    _, admin, _ = await make_org(pool, clock.now(), kind="bank")
    token = await make_token(pool, clock.now(), admin, ["account:write"])
    auth = {"Authorization": f"Bearer {token}"}
    r = await client.post(
        "/api/v1/organisation/invitations", headers=auth, json={"email": email, "role": "officer"}
    )
    assert r.status_code == 201, r.text
    return admin, auth, int(r.json()["id"])


async def test_a_second_bank_and_a_pool_onboarded_entirely_through_the_api(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    op = await _operator(pool, clock)
    first_bank, _, _ = await make_org(pool, clock.now(), kind="bank")
    code = credit_code()
    r = await client.post(
        "/api/v1/operator/organisations",
        headers=op,
        json={
            "kind": "bank",
            "name": "招商银行深圳科技园支行",
            "credit_code": code,
            "admin_email": "Admin@CMB.test",
            "documents": [_doc("business_licence")],
        },
    )
    assert r.status_code == 201, r.text
    bank = r.json()
    bank_id = bank["organisation"]["id"]
    assert bank["organisation"]["status"] == "pending"
    assert bank["invitation"]["email"] == "admin@cmb.test"
    # Its invitation e-mail is owed, to the address, not to anybody's inbox.
    owed = await pool.fetchrow("SELECT * FROM outbox WHERE event = 'invitation'")
    assert owed["payload"]["email"] == "admin@cmb.test" and owed["recipient_user_id"] is None

    # Approval needs the authorisation letter too; the operator sees what is there.
    decide = f"/api/v1/operator/organisations/{bank_id}/decision"
    r = await client.post(decide, headers=op, json={"approve": True})
    assert r.status_code == 409 and r.json()["code"] == "documents_missing"
    assert "authorisation_letter" in r.json()["detail"] or "授权委托书" in r.json()["detail"]
    r = await client.post(
        f"/api/v1/operator/organisations/{bank_id}/documents",
        headers=op,
        json={"documents": [_doc("authorisation_letter")]},
    )
    assert r.status_code == 201
    detail = (await client.get(f"/api/v1/operator/organisations/{bank_id}", headers=op)).json()
    assert {d["kind"] for d in detail["documents"]} == {"business_licence", "authorisation_letter"}
    doc = detail["documents"][0]["id"]
    r = await client.get(f"/api/v1/operator/organisations/{bank_id}/documents/{doc}", headers=op)
    assert r.status_code == 200 and r.content == PDF
    r = await client.post(decide, headers=op, json={"approve": True})
    assert r.status_code == 200 and r.json()["status"] == "approved"

    # The admin joins with the link from the e-mail.
    token = await _link_token(pool, settings, bank["invitation"]["id"])
    r = await client.post(
        "/api/v1/invitations/accept",
        json={"token": token, "display_name": "何行长", "password": "a long password 1"},
    )
    assert r.status_code == 201, r.text
    admin = r.json()
    assert admin["org_id"] == bank_id and admin["role"] == "admin"
    # Used once.
    r = await client.post(
        "/api/v1/invitations/accept",
        json={"token": token, "display_name": "x", "password": "a long password 1"},
    )
    assert r.status_code == 409 and r.json()["field"] == "token"

    # The admin's system invites an officer and a read-only colleague.
    # Its first token is made on the account page by the person who signed in: a
    # credential starts from a person. Every later one is made over the API.
    assert (await sign_in(client, "admin@cmb.test", "a long password 1")).status_code == 302
    r = await client.post(
        "/account/tokens",
        data={
            "name": "core banking",
            "scopes": ["account:write", "account:read"],
            "_csrf_token": client.cookies["ipx_csrf"],
        },
    )
    first = re.search(r'data-testid="new-token">([^<]+)<', r.text)
    assert r.status_code == 201 and first is not None
    r = await client.post(
        "/api/v1/tokens",
        headers={"Authorization": f"Bearer {first.group(1)}"},
        json={"name": "people sync", "scopes": ["account:write", "account:read"]},
    )
    assert r.status_code == 201, r.text
    auth = {"Authorization": f"Bearer {r.json()['secret']}"}
    joined = {}
    for email, role in (("li@cmb.test", "officer"), ("zhao@cmb.test", "read_only")):
        r = await client.post(
            "/api/v1/organisation/invitations", headers=auth, json={"email": email, "role": role}
        )
        assert r.status_code == 201, r.text
        token = await _link_token(pool, settings, r.json()["id"])
        r = await client.post(
            "/api/v1/invitations/accept",
            json={"token": token, "display_name": email[:2], "password": "a long password 2"},
        )
        joined[role] = r.json()["user_id"]
    users = (await client.get("/api/v1/organisation/users", headers=auth)).json()
    assert sorted(u["role"] for u in users) == ["admin", "officer", "read_only"]
    # A role changes; a user leaves: no sign-in, tokens revoked.
    r = await client.put(
        f"/api/v1/organisation/users/{joined['read_only']}/role",
        headers=auth,
        json={"role": "officer"},
    )
    assert r.status_code == 200 and r.json()["role"] == "officer"
    r = await client.put(
        f"/api/v1/organisation/users/{joined['officer']}/role", headers=auth, json={"role": "admin"}
    )
    assert r.status_code == 200
    officer_token = await make_token(pool, clock.now(), joined["officer"], ["account:read"])
    r = await client.post(
        f"/api/v1/organisation/users/{joined['officer']}/deactivation", headers=auth
    )
    assert r.status_code == 200 and r.json()["disabled_at"]
    r = await client.get(
        "/api/v1/organisation", headers={"Authorization": f"Bearer {officer_token}"}
    )
    assert r.status_code == 401
    assert (await sign_in(client, "li@cmb.test", "a long password 2")).status_code != 302

    # A pool manager and its pool with its rules.
    r = await client.post(
        "/api/v1/operator/organisations",
        headers=op,
        json={
            "kind": "pool",
            "name": "佛山市知识产权质押融资风险补偿基金",
            "credit_code": credit_code(),
            "admin_email": "manager@fspool.test",
            "documents": [_doc("business_licence"), _doc("authorisation_letter")],
        },
    )
    pool_org = r.json()["organisation"]["id"]
    assert (
        await client.post(
            f"/api/v1/operator/organisations/{pool_org}/decision",
            headers=op,
            json={"approve": True},
        )
    ).status_code == 200
    r = await client.post(
        "/api/v1/operator/pools",
        headers=op,
        json={
            "org_id": pool_org,
            "code": "FS-IP",
            "name": "佛山知识产权风险补偿资金池",
            "capital_fen": 50_000_000_00,
            "rule": {"shares": [{"name": "fund", "weight": 50}, {"name": "bank", "weight": 50}]},
            "effective_from": "2026-01-01",
        },
    )
    assert r.status_code == 201, r.text
    # Every step is in the audit chains.
    actions = {
        r["action"]
        for r in await pool.fetch(
            "SELECT action FROM audit_log WHERE chain_org_id = ANY($1::bigint[])",
            [bank_id, pool_org],
        )
    }
    assert {
        "organisation.create",
        "organisation.document",
        "invitation.create",
        "organisation.approved",
        "invitation.accept",
        "user.create",
        "user.role",
        "user.deactivate",
    } <= actions
    # Two banks now: neither reads the other's organisation users.
    assert first_bank != bank_id


async def test_bad_input_is_refused_naming_its_field_and_writes_nothing(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    admin, auth, invitation = await _invited(client, pool, clock, "a@b.test")
    # A role the inviter does not hold: an officer may not invite an administrator.
    await pool.execute("UPDATE users SET role = 'officer' WHERE id = $1", admin)
    before = await _count(pool, "invitations")
    r = await client.post(
        "/api/v1/organisation/invitations",
        headers=auth,
        json={"email": "c@d.test", "role": "admin"},
    )
    assert r.status_code == 403 and r.json()["field"] == "role"
    assert await _count(pool, "invitations") == before

    # An expired invitation.
    token = await _link_token(pool, settings, invitation)
    users = await _count(pool, "users")
    late = FrozenClock(clock.now() + timedelta(days=7, seconds=1))
    from market.app import create_app

    async with AsyncTestClient(app=create_app(settings, late)) as later:
        r = await later.post(
            "/api/v1/invitations/accept",
            json={"token": token, "display_name": "迟到", "password": "a long password 3"},
        )
    assert r.status_code == 422 and r.json()["field"] == "token"
    assert r.json()["code"] == "invitation_expired"
    # A forged link.
    r = await client.post(
        "/api/v1/invitations/accept",
        json={"token": f"{invitation}.AAAA", "display_name": "x", "password": "a long password 3"},
    )
    assert r.status_code == 422 and r.json()["code"] == "invitation_invalid"
    assert await _count(pool, "users") == users

    # A resident identity number with a wrong check character.
    body = "11010519491231002"
    wrong = body + ("0" if _id_check_char(body) != "0" else "1")
    orgs = await _count(pool, "organisations")
    r = await client.post(
        "/api/v1/buyers",
        json={
            "name": "王小明",
            "party_type": "individual",
            "id_number": wrong,
            "email": "wang@person.test",
            "display_name": "王小明",
            "password": "a long password 4",
            "documents": [_doc("identity_document")],
        },
    )
    assert r.status_code == 422 and r.json()["field"] == "id_number"
    assert r.json()["code"] == "id_number_check_char"
    assert await _count(pool, "organisations") == orgs
    r = await client.post(
        "/api/v1/buyers",
        json={
            "name": "王小明",
            "party_type": "individual",
            "id_number": body + _id_check_char(body),
            "email": "wang@person.test",
            "display_name": "王小明",
            "password": "a long password 4",
            "documents": [_doc("identity_document")],
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["organisation"]["party_type"] == "individual"


async def test_one_invitation_accepted_at_once_by_many_makes_one_user(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    _, _, invitation = await _invited(client, pool, clock, "x@y.test")
    token = await _link_token(pool, settings, invitation)
    answers = await asyncio.gather(
        *(
            client.post(
                "/api/v1/invitations/accept",
                json={"token": token, "display_name": f"n{n}", "password": "a long password 5"},
            )
            for n in range(8)
        )
    )
    assert sorted(a.status_code for a in answers) == [201] + [409] * 7
    assert await pool.fetchval("SELECT count(*) FROM users WHERE email = 'x@y.test'") == 1


async def test_two_admins_demoting_each_other_at_once_leave_one(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    from tests.factories import act_as

    org, first, _ = await make_org(pool, clock.now(), kind="bank")
    second = await pool.fetchval(
        "INSERT INTO users (org_id, email, display_name, password_hash, role, created_at) "
        "VALUES ($1, 'second@bank.test', '二', 'x', 'admin', $2) RETURNING id",
        org,
        clock.now(),
    )
    acts = [await act_as(pool, clock.now(), u) for u in (first, second)]
    results = await asyncio.gather(
        acts[0](people.set_user_role, people.SetRole(user_id=second, role="officer")),
        acts[1](people.set_user_role, people.SetRole(user_id=first, role="officer")),
        return_exceptions=True,
    )
    admins = await pool.fetchval(
        "SELECT count(*) FROM users WHERE org_id = $1 AND role = 'admin'", org
    )
    assert admins == 1
    assert sum(isinstance(r, Exception) for r in results) == 1


async def test_the_invitation_and_the_decision_arrive_by_email_and_the_link_works(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    from market.notify import relay
    from tests.notify.delivery_scene import arq_pool, run_worker, smtp_server, with_smtp

    op = await _operator(pool, clock)
    r = await client.post(
        "/api/v1/operator/organisations",
        headers=op,
        json={
            "kind": "acquirer",
            "name": "北京知识产权运营管理有限公司",
            "credit_code": credit_code(),
            "admin_email": "boss@acquirer.test",
            "admin_language": "en",
            "documents": [_doc("business_licence"), _doc("authorisation_letter")],
        },
    )
    org_id = r.json()["organisation"]["id"]

    async def deliver(s: Settings) -> None:
        arq = await arq_pool(s)
        await relay.relay_once(pool, arq, clock.now())
        await run_worker(s, clock)
        await arq.aclose()

    with smtp_server() as (smtp, port):
        s = with_smtp(settings, port)
        await deliver(s)
        (invitation,) = smtp.to("boss@acquirer.test")
        # In the invitee's language, with the one link that works.
        assert invitation["Subject"] == "You are invited to join 北京知识产权运营管理有限公司"
        text = invitation.get_body(preferencelist=("plain",)).get_content()
        token = re.search(r"/invitations/(\S+)", text).group(1)  # type: ignore[union-attr]
        r = await client.post(
            "/api/v1/invitations/accept",
            json={"token": token, "display_name": "Zhao", "password": "a long password 9"},
        )
        assert r.status_code == 201, r.text
        r = await client.post(
            f"/api/v1/operator/organisations/{org_id}/decision",
            headers=op,
            json={"approve": False, "reason": "licence expired"},
        )
        assert r.status_code == 200
        await deliver(s)
        decided = smtp.to("boss@acquirer.test")[-1]
        assert decided["Subject"].endswith("was not approved")
        assert "licence expired" in decided.get_body(preferencelist=("plain",)).get_content()
    inbox = await pool.fetchval(
        "SELECT count(*) FROM inbox i JOIN users u ON u.id = i.user_id "
        "WHERE u.org_id = $1 AND i.event = 'organisation_decided'",
        org_id,
    )
    assert inbox == 1


async def test_the_first_operator_is_bootstrapped_once_from_the_command_line(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, settings: Settings
) -> None:
    import pytest

    from tests.servers import run_market

    code = credit_code()
    out = run_market(
        settings,
        "bootstrap-operator",
        "--name",
        "成都知识产权交易中心",
        "--credit-code",
        code,
        "--email",
        "admin@exchange.test",
    )
    token = re.search(r"/invitations/(\S+)", out).group(1)  # type: ignore[union-attr]
    r = await client.post(
        "/api/v1/invitations/accept",
        json={"token": token, "display_name": "王运营", "password": "a long password 10"},
    )
    assert r.status_code == 201 and r.json()["role"] == "admin"
    assert await pool.fetchval("SELECT status FROM organisations WHERE credit_code = $1", code) == (
        "approved"
    )
    with pytest.raises(RuntimeError, match="operator_exists"):
        run_market(
            settings,
            "bootstrap-operator",
            "--name",
            "另一家",
            "--credit-code",
            credit_code(),
            "--email",
            "x@exchange.test",
        )
    assert await pool.fetchval("SELECT count(*) FROM organisations") == 1


async def test_every_new_endpoint_refuses_a_wrong_value_naming_the_field(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    op = await _operator(pool, clock)
    _, admin, _ = await make_org(pool, clock.now(), kind="bank")
    auth = {
        "Authorization": f"Bearer {await make_token(pool, clock.now(), admin, ['account:write'])}"
    }
    onboard = {
        "kind": "bank",
        "name": "某银行",
        "credit_code": credit_code(),
        "admin_email": "a@bank.test",
    }
    cases = [
        (op, "/api/v1/operator/organisations", {**onboard, "kind": "casino"}, "kind"),
        (op, "/api/v1/operator/organisations", {**onboard, "credit_code": "91X"}, "credit_code"),
        (op, "/api/v1/operator/organisations", {**onboard, "admin_email": "nobody"}, "admin_email"),
        (
            op,
            "/api/v1/operator/organisations",
            {
                **onboard,
                "documents": [
                    {
                        "kind": "business_licence",
                        "filename": "a.exe",
                        "content": base64.b64encode(b"MZ\x90\x00").decode(),
                    }
                ],
            },
            "documents[0]",
        ),
        (auth, "/api/v1/organisation/invitations", {"email": "x@y.test", "role": "boss"}, "role"),
        (auth, "/api/v1/organisation/invitations", {"email": "x@", "role": "officer"}, "email"),
        (
            op,
            "/api/v1/operator/pools",
            {
                "org_id": 1,
                "code": "lower case",
                "name": "池",
                "rule": {"shares": []},
                "effective_from": "2026-01-01",
            },
            "code",
        ),
        (None, "/api/v1/invitations/accept", {"token": "1.x", "display_name": "x"}, "password"),
    ]
    tables = ("organisations", "invitations", "users", "pools", "organisation_documents")
    before = [await _count(pool, t) for t in tables]
    for headers, url, body, field in cases:
        r = await client.post(url, headers=headers or {}, json=body)
        assert 400 <= r.status_code < 500, (url, body, r.text)
        assert r.json()["field"] == field, (url, body, r.json())
    r = await client.put(
        f"/api/v1/organisation/users/{admin}/role", headers=auth, json={"role": "x"}
    )
    assert r.status_code == 400 and r.json()["field"] == "role"
    assert [await _count(pool, t) for t in tables] == before
