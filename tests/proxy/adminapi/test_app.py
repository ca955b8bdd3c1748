"""The admin API on a real port over real stores and the real audit log: who may do what."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from audit import AuditLog
from proxy.adminapi.app import add_admin_api
from proxy.adminapi.config import AdminApiConfig
from proxy.adminapi.keys import new_api_key
from proxy.adminapi.listing import sid_hash
from proxy.sessions.model import SessionGrant
from proxy.sessions.store import SessionStore
from tests.proxy.adminapi.conftest import ROLES, Api, events, key_config, new_session

V1 = "/.tokengate/admin/v1"
# operationId -> weakest role allowed
OPS = {
    "listUserSessions": "auditor",
    "getOpenApiDocument": "auditor",
    "revokeSession": "operator",
    "revokeListedSession": "operator",
    "revokeUserSessions": "operator",
    "revokeAllSessions": "admin",
}
RANK = {r: i for i, r in enumerate(ROLES)}


@dataclass
class Seeded:
    alice: list[str]
    bob: str


async def seed(api: Api) -> Seeded:
    t = api.clock.t - 10
    alice = [await new_session(api.store, "alice", now=t, amr=("pwd",)) for _ in range(2)]
    return Seeded(alice, await new_session(api.store, "bob", now=t))


async def live(api: Api, sid: str) -> bool:
    return await api.store.get(sid, now=api.clock.t + 1) is not None


async def request(api: Api, op: str, headers: dict[str, str], s: Seeded) -> ClientResponse:
    match op:
        case "listUserSessions":
            return await api.client.get(f"{V1}/users/alice/sessions", headers=headers)
        case "getOpenApiDocument":
            return await api.client.get("/.tokengate/admin/openapi.json", headers=headers)
        case "revokeSession":
            return await api.client.post(f"{V1}/sessions/{s.alice[0]}/revoke", headers=headers)
        case "revokeListedSession":
            path = f"{V1}/users/alice/sessions/{sid_hash(s.alice[1])}/revoke"
            return await api.client.post(path, headers=headers)
        case "revokeUserSessions":
            return await api.client.post(f"{V1}/users/alice/revoke", headers=headers)
        case "revokeAllSessions":
            body = {"confirm": "revoke-all", "reason": "incident 42"}
            return await api.client.post(f"{V1}/sessions/revoke-all", headers=headers, json=body)
    raise AssertionError(op)


async def assert_json_error(resp: ClientResponse, status: int, code: str) -> dict[str, object]:
    assert resp.status == status
    assert resp.content_type == "application/json"
    assert resp.headers["Cache-Control"] == "no-store"
    body = await resp.json()
    assert set(body) == {"error", "message", "request_id"}
    assert body["error"] == code
    assert body["request_id"] == resp.headers["X-Request-ID"]
    return dict(body)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("op", OPS)
async def test_role_table(api: Api, op: str, role: str) -> None:
    s = await seed(api)
    resp = await request(api, op, api.auth(role), s)
    if RANK[role] < RANK[OPS[op]]:
        body = await assert_json_error(resp, 403, "forbidden")
        assert f"needs the {OPS[op]} role" in str(body["message"])
        assert resp.headers["WWW-Authenticate"].endswith('error="insufficient_scope"')
        assert [await live(api, sid) for sid in [*s.alice, s.bob]] == [True, True, True]
        assert events(api.data_dir) == [
            (
                "admin.auth_failed",
                {
                    "reason": "insufficient_role",
                    "key_name": role,
                    "role": role,
                    "required_role": OPS[op],
                    "operation": op,
                    "peer": "127.0.0.1",
                    "request_id": resp.headers["X-Request-ID"],
                },
            )
        ]
        return
    assert resp.status == 200, await resp.text()
    assert resp.headers["Cache-Control"] == "no-store"
    body = await resp.json()
    expected_live = {
        "listUserSessions": [True, True, True],
        "getOpenApiDocument": [True, True, True],
        "revokeSession": [False, True, True],
        "revokeListedSession": [True, False, True],
        "revokeUserSessions": [False, False, True],
        "revokeAllSessions": [False, False, False],
    }[op]
    assert [await live(api, sid) for sid in [*s.alice, s.bob]] == expected_live
    if op == "listUserSessions":
        assert body["count"] == 2
    if op == "getOpenApiDocument":
        assert body["openapi"] == "3.1.0"
    assert all(f.get("actor") == f"apikey:{role}" for _, f in events(api.data_dir))


@pytest.mark.parametrize("op", OPS)
async def test_missing_key_is_401_with_bearer_challenge(api: Api, op: str) -> None:
    s = await seed(api)
    resp = await request(api, op, {}, s)
    await assert_json_error(resp, 401, "unauthorized")
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="tokengate-admin"'
    assert [await live(api, sid) for sid in [*s.alice, s.bob]] == [True, True, True]
    [(event, fields)] = events(api.data_dir)
    assert event == "admin.auth_failed"
    assert fields["reason"] == "missing"
    assert "key_name" not in fields
    assert fields["operation"] == op


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("Bearer {unknown}", "unknown_key"),
        ("Basic {admin}", "malformed"),
        ("Bearer {admin} {admin}", "malformed"),
        ("Bearer {admin}x", "malformed"),
        ("{admin}", "malformed"),
        ("Bearer", "malformed"),
    ],
)
async def test_bad_keys_are_401_invalid_token(api: Api, header: str, reason: str) -> None:
    s = await seed(api)
    unknown = new_api_key()
    value = header.format(unknown=unknown, admin=api.keys["admin"])
    resp = await request(api, "revokeAllSessions", {"Authorization": value}, s)
    await assert_json_error(resp, 401, "unauthorized")
    assert (
        resp.headers["WWW-Authenticate"] == 'Bearer realm="tokengate-admin", error="invalid_token"'
    )
    assert await live(api, s.bob)
    [(_, fields)] = events(api.data_dir)
    assert fields["reason"] == reason
    assert "key_name" not in fields
    logged = b"".join(p.read_bytes() for p in (api.data_dir / "audit").iterdir())
    assert unknown.encode() not in logged
    assert api.keys["admin"].encode() not in logged


async def test_two_authorization_headers_are_refused(api: Api) -> None:
    s = await seed(api)
    headers = [("Authorization", f"Bearer {api.keys['admin']}")] * 2
    resp = await api.client.post(f"{V1}/sessions/{s.alice[0]}/revoke", headers=headers)
    await assert_json_error(resp, 401, "unauthorized")
    assert await live(api, s.alice[0])


async def test_request_id_is_kept_and_audited(api: Api) -> None:
    s = await seed(api)
    headers = {**api.auth("operator"), "X-Request-ID": "ticket-1234"}
    resp = await api.client.post(
        f"{V1}/sessions/{s.alice[0]}/revoke", headers=headers, json={"reason": "lost laptop"}
    )
    assert resp.status == 200
    assert resp.headers["X-Request-ID"] == "ticket-1234"
    assert await resp.json() == {"sid_hash": sid_hash(s.alice[0]), "revoked": True}
    requested = {
        "actor": "apikey:operator",
        "role": "operator",
        "request_id": "ticket-1234",
        "sid_hash": sid_hash(s.alice[0]),
        "reason": "lost laptop",
    }
    assert events(api.data_dir) == [
        ("admin.session_revoke", {**requested, "result": "requested"}),
        ("admin.session_revoke", {**requested, "result": "ok", "revoked": True}),
    ]
    assert (
        s.alice[0]
        not in (api.data_dir / "audit")
        .joinpath(next(p.name for p in (api.data_dir / "audit").iterdir()))
        .read_text()
    )


async def test_unknown_session_answers_revoked_false(api: Api) -> None:
    s = await seed(api)
    other = s.alice[0][:-1] + ("A" if s.alice[0][-1] != "A" else "B")
    resp = await api.client.post(f"{V1}/sessions/{other}/revoke", headers=api.auth("operator"))
    assert (await resp.json())["revoked"] is False
    hashed = sid_hash(other)
    resp = await api.client.post(
        f"{V1}/users/bob/sessions/{sid_hash(s.alice[0])}/revoke", headers=api.auth("operator")
    )
    assert (await resp.json())["revoked"] is False  # alice's session is not bob's
    assert await live(api, s.alice[0])
    outcomes = [f.get("revoked") for e, f in events(api.data_dir) if f["result"] == "ok"]
    assert outcomes == [False, False]
    assert events(api.data_dir)[0][1]["sid_hash"] == hashed


async def test_listing_shows_facts_never_secrets(api: Api) -> None:
    t = api.clock.t - 10
    grant = SessionGrant(
        sub="alice@example.com/x", roles=("staff",), amr=("pwd", "otp"), acr="mfa",
        tenant="acme", cnf_jkt="A" * 43,
    )  # fmt: skip
    created = await api.store.create(grant, now=t)
    resp = await api.client.get(
        f"{V1}/users/{quote('alice@example.com/x', safe='')}/sessions", headers=api.auth("auditor")
    )
    assert resp.status == 200, await resp.text()
    text = await resp.text()
    body = await resp.json()
    assert body["sub"] == "alice@example.com/x"
    assert body["count"] == 1
    [view] = body["sessions"]
    assert view["sid_hash"] == sid_hash(created.session.sid)
    assert view["roles"] == ["staff"]
    assert view["amr"] == ["pwd", "otp"]
    assert view["acr"] == "mfa"
    assert view["tenant"] == "acme"
    assert view["dpop_bound"] is True
    assert view["mfa"] is False
    assert view["created"].endswith("Z")
    for secret in (created.session.sid, created.refresh_token, created.session.family_id, "A" * 43):
        assert secret not in text
    [(event, fields)] = events(api.data_dir)
    assert event == "admin.sessions_list"
    assert fields["count"] == 1
    assert fields["sub"] == "alice@example.com/x"


async def test_revoke_user_counts_and_spares_others(api: Api) -> None:
    s = await seed(api)
    resp = await api.client.post(f"{V1}/users/alice/revoke", headers=api.auth("operator"))
    assert await resp.json() == {"sub": "alice", "revoked": 2}
    assert [await live(api, sid) for sid in [*s.alice, s.bob]] == [False, False, True]
    resp = await api.client.get(f"{V1}/users/alice/sessions", headers=api.auth("auditor"))
    assert (await resp.json())["count"] == 0
    done = [f for e, f in events(api.data_dir) if e == "admin.user_revoke" and f["result"] == "ok"]
    assert done[0]["count"] == 2
    assert done[0]["sub"] == "alice"


async def test_revoke_all_spares_sessions_created_after(api: Api) -> None:
    s = await seed(api)
    resp = await api.client.post(
        f"{V1}/sessions/revoke-all", headers=api.auth("admin"), json={"confirm": "revoke-all"}
    )
    assert resp.status == 200
    assert (await resp.json())["revoked_before"].endswith("Z")
    later = await new_session(api.store, "alice", now=api.clock.t + 5)
    assert [await live(api, sid) for sid in [*s.alice, s.bob]] == [False, False, False]
    assert await api.store.get(later, now=api.clock.t + 6) is not None
    assert [f["result"] for e, f in events(api.data_dir)] == ["requested", "ok"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "body field 'confirm' is required"),
        ({"json": {}}, "body field 'confirm' is required"),
        ({"json": {"confirm": "yes"}}, 'must be "revoke-all"'),
        ({"json": {"confirm": "revoke-all", "force": True}}, "unknown field"),
    ],
)
async def test_revoke_all_needs_confirmation(
    api: Api, kwargs: dict[str, object], message: str
) -> None:
    s = await seed(api)
    resp = await api.client.post(f"{V1}/sessions/revoke-all", headers=api.auth("admin"), **kwargs)  # type: ignore[arg-type]
    body = await assert_json_error(resp, 400, "bad_request")
    assert message in str(body["message"])
    assert await live(api, s.bob)
    assert events(api.data_dir) == []


async def test_closed_audit_log_refuses_every_act(api: Api) -> None:
    s = await seed(api)
    await api.audit.close()
    for op in OPS:
        resp = await request(api, op, api.auth("admin"), s)
        if op == "getOpenApiDocument":
            assert resp.status == 200  # reading the document is not an act
            continue
        body = await assert_json_error(resp, 503, "audit_unavailable")
        assert "not performed" in str(body["message"])
    assert [await live(api, sid) for sid in [*s.alice, s.bob]] == [True, True, True]


async def test_refusal_stands_when_it_cannot_be_audited(api: Api) -> None:
    s = await seed(api)
    await api.audit.close()
    resp = await request(api, "revokeAllSessions", api.auth("operator"), s)
    await assert_json_error(resp, 403, "forbidden")
    resp = await request(api, "revokeAllSessions", {}, s)
    await assert_json_error(resp, 401, "unauthorized")


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", f"{V1}/sessions/revoke-all", 405, "method_not_allowed"),
        ("DELETE", f"{V1}/users/alice/sessions", 405, "method_not_allowed"),
        ("GET", f"{V1}/nothing", 404, "not_found"),
        ("GET", "/.tokengate/admin/openapi.yaml", 404, "not_found"),
    ],
)
async def test_unknown_routes_and_methods_answer_json(
    api: Api, method: str, path: str, status: int, code: str
) -> None:
    resp = await api.client.request(method, path, headers=api.auth("admin"))
    await assert_json_error(resp, status, code)
    if status == 405:
        assert "POST" in resp.headers["Allow"] or "GET" in resp.headers["Allow"]


async def test_paths_outside_the_prefix_are_left_alone(api: Api) -> None:
    resp = await api.client.get("/elsewhere")
    assert resp.status == 404
    assert resp.content_type != "application/json"


async def test_reloaded_config_applies_on_the_next_request(
    store: SessionStore, audit_log: AuditLog
) -> None:
    kept, dropped = new_api_key(), new_api_key()
    holder = [key_config({"admin": kept, "operator": dropped})]
    app = web.Application()
    add_admin_api(app, config=lambda: holder[-1], store=store, auditor=audit_log)
    path = f"{V1}/users/alice/sessions"
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        for key in (kept, dropped):
            resp = await client.get(path, headers={"Authorization": f"Bearer {key}"})
            assert resp.status == 200
        holder.append(key_config({"admin": kept}))  # a reload removed the operator's key
        resp = await client.get(path, headers={"Authorization": f"Bearer {dropped}"})
        await assert_json_error(resp, 401, "unauthorized")
        resp = await client.get(path, headers={"Authorization": f"Bearer {kept}"})
        assert resp.status == 200
        holder.append(AdminApiConfig(enabled=False, keys=holder[-1].keys))
        resp = await client.get(path, headers={"Authorization": f"Bearer {kept}"})
        await assert_json_error(resp, 404, "not_found")
