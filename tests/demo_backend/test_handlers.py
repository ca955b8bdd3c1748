"""The demo app's routes over a real socket: login, sessions, the users API, ownership."""

from __future__ import annotations

import pytest
from demo_backend.app import DEFAULT_SESSION_TTL
from demo_backend.sessions import COOKIE_NAME, SessionSigner

from tests.demo_backend.support import Client, Clock, MakeClient, login, record_body


async def test_healthz_needs_no_session(client: Client) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("username", "roles"), [("alice", ["user"]), ("bob", ["user"]), ("carol", ["support"])]
)
async def test_login_with_seeded_account(client: Client, username: str, roles: list[str]) -> None:
    resp = await client.post("/login", json={"username": username, "password": username})
    assert resp.status == 200
    assert await resp.json() == {"username": username, "roles": roles}
    morsel = resp.cookies[COOKIE_NAME]
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Lax"
    assert morsel["path"] == "/"
    assert not morsel["secure"]
    assert resp.headers["Cache-Control"] == "no-store"


async def test_secure_cookie_option_marks_cookie_secure(make_client: MakeClient) -> None:
    client = await make_client(cookie_secure=True)
    resp = await client.post("/login", json={"username": "alice", "password": "alice"})
    assert resp.status == 200
    assert resp.cookies[COOKIE_NAME]["secure"] is True


@pytest.mark.parametrize(
    ("username", "password"),
    [("alice", "bob"), ("alice", "ALICE"), ("mallory", "mallory"), ("Alice", "alice")],
)
async def test_login_refused(client: Client, username: str, password: str) -> None:
    resp = await client.post("/login", json={"username": username, "password": password})
    assert resp.status == 401
    # Unknown user and wrong password look the same.
    assert await resp.json() == {
        "error": "invalid_credentials",
        "message": "invalid username or password",
    }
    assert COOKIE_NAME not in resp.cookies


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/me"),
        ("GET", "/api/users"),
        ("GET", "/api/users/1"),
        ("POST", "/api/users"),
        ("PUT", "/api/users/1"),
    ],
)
@pytest.mark.parametrize("cookie", [None, "garbage", "abc.def", "forged-by-other-secret"])
async def test_api_needs_a_valid_session(
    client: Client, method: str, path: str, cookie: str | None
) -> None:
    headers = {}
    if cookie == "forged-by-other-secret":
        cookie = SessionSigner(b"\x01" * 32).mint().cookie
    if cookie is not None:
        headers["Cookie"] = f"{COOKIE_NAME}={cookie}"
    resp = await client.request(method, path, json=record_body(), headers=headers)
    assert resp.status == 401
    assert await resp.json() == {"error": "unauthorized", "message": "login required"}


async def test_api_with_valid_session_answers(client: Client) -> None:
    resp = await client.get("/api/me", headers=await login(client, "carol"))
    assert resp.status == 200
    assert await resp.json() == {"username": "carol", "roles": ["support"]}


async def test_logout_ends_the_session_server_side(client: Client) -> None:
    alice = await login(client, "alice")
    resp = await client.post("/logout", headers=alice)
    assert resp.status == 204
    assert resp.cookies[COOKIE_NAME].value == ""
    # Replaying the old cookie no longer works: the session is gone, not just the cookie.
    assert (await client.get("/api/me", headers=alice)).status == 401


async def test_logout_of_one_session_keeps_others(client: Client) -> None:
    first = await login(client, "alice")
    second = await login(client, "alice")
    assert (await client.post("/logout", headers=first)).status == 204
    assert (await client.get("/api/me", headers=second)).status == 200


async def test_logout_without_session_is_harmless(client: Client) -> None:
    resp = await client.post("/logout")
    assert resp.status == 204


async def test_session_expires_after_ttl(client: Client, clock: Clock) -> None:
    alice = await login(client, "alice")
    clock.advance(DEFAULT_SESSION_TTL - 1)
    assert (await client.get("/api/me", headers=alice)).status == 200
    clock.advance(1)
    assert (await client.get("/api/me", headers=alice)).status == 401


async def test_create_read_list(client: Client, clock: Clock) -> None:
    alice = await login(client, "alice")
    resp = await client.post("/api/users", json=record_body(), headers=alice)
    assert resp.status == 201
    created = await resp.json()
    assert isinstance(created["id"], int)
    assert resp.headers["Location"] == f"/api/users/{created['id']}"
    assert created == {
        **record_body(),
        "id": created["id"],
        "owner": "alice",
        "created_at": "2027-01-15T08:00:00.000+00:00",
        "updated_at": "2027-01-15T08:00:00.000+00:00",
    }

    resp = await client.get(f"/api/users/{created['id']}", headers=alice)
    assert resp.status == 200
    assert await resp.json() == created

    clock.advance(1)
    second = await (
        await client.post("/api/users", json=record_body(name="Bo"), headers=alice)
    ).json()
    resp = await client.get("/api/users", headers=alice)
    assert resp.status == 200
    assert await resp.json() == {"users": [second, created]}  # newest first


async def test_every_logged_in_user_reads_every_record(client: Client) -> None:
    alice = await login(client, "alice")
    created = await (await client.post("/api/users", json=record_body(), headers=alice)).json()
    bob = await login(client, "bob")
    resp = await client.get(f"/api/users/{created['id']}", headers=bob)
    assert resp.status == 200
    assert await resp.json() == created
    listed = await (await client.get("/api/users", headers=bob)).json()
    assert listed == {"users": [created]}


async def test_values_are_stored_exactly_as_received(client: Client) -> None:
    alice = await login(client, "alice")
    odd = record_body(
        name="  Zoë  \u200b", ssn="tok_a7k3q2x9mzv4b6n8c1d5f0g2h4j6k8m0", card_number="4111 1111"
    )
    created = await (await client.post("/api/users", json=odd, headers=alice)).json()
    fetched = await (await client.get(f"/api/users/{created['id']}", headers=alice)).json()
    for field in ("name", "email", "ssn", "card_number"):
        assert fetched[field] == odd[field]


async def test_owner_updates_own_record(client: Client, clock: Clock) -> None:
    alice = await login(client, "alice")
    created = await (await client.post("/api/users", json=record_body(), headers=alice)).json()
    clock.advance(60)
    new = record_body(name="Ann Other", ssn="219-09-9999")
    resp = await client.put(f"/api/users/{created['id']}", json=new, headers=alice)
    assert resp.status == 200
    updated = await resp.json()
    assert updated == {
        **new,
        "id": created["id"],
        "owner": "alice",
        "created_at": created["created_at"],
        "updated_at": "2027-01-15T08:01:00.000+00:00",
    }
    assert await (await client.get(f"/api/users/{created['id']}", headers=alice)).json() == updated


async def test_other_user_cannot_update(client: Client) -> None:
    alice = await login(client, "alice")
    created = await (await client.post("/api/users", json=record_body(), headers=alice)).json()
    bob = await login(client, "bob")
    resp = await client.put(
        f"/api/users/{created['id']}", json=record_body(name="Hijacked"), headers=bob
    )
    assert resp.status == 403
    assert (await resp.json())["error"] == "forbidden"
    unchanged = await (await client.get(f"/api/users/{created['id']}", headers=alice)).json()
    assert unchanged == created


async def test_support_role_may_update_anyones_record(client: Client) -> None:
    alice = await login(client, "alice")
    created = await (await client.post("/api/users", json=record_body(), headers=alice)).json()
    carol = await login(client, "carol")
    resp = await client.put(
        f"/api/users/{created['id']}", json=record_body(email="fixed@example.com"), headers=carol
    )
    assert resp.status == 200
    updated = await resp.json()
    assert updated["email"] == "fixed@example.com"
    assert updated["owner"] == "alice"  # support edits, ownership stays


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/users/999"),
        ("PUT", "/api/users/999"),
        ("GET", "/api/users/abc"),
        ("GET", "/api/users/1234567890123456789"),
        ("GET", "/nowhere"),
    ],
)
async def test_not_found_is_json(client: Client, method: str, path: str) -> None:
    alice = await login(client, "alice")
    await client.post("/api/users", json=record_body(), headers=alice)
    resp = await client.request(method, path, json=record_body(), headers=alice)
    assert resp.status == 404
    assert await resp.json() == {"error": "not_found", "message": "not found"}


async def test_wrong_method_is_json(client: Client) -> None:
    resp = await client.delete("/api/users")
    assert resp.status == 405
    assert (await resp.json())["error"] == "method_not_allowed"


async def test_list_limit(client: Client) -> None:
    alice = await login(client, "alice")
    for i in range(3):
        await client.post("/api/users", json=record_body(name=f"n{i}"), headers=alice)
    resp = await client.get("/api/users", params={"limit": "2"}, headers=alice)
    assert resp.status == 200
    assert [r["name"] for r in (await resp.json())["users"]] == ["n2", "n1"]


@pytest.mark.parametrize("limit", ["0", "1001", "x", "-1", "1.5", "\u00b2", ""])
async def test_list_limit_out_of_range_is_refused(client: Client, limit: str) -> None:
    alice = await login(client, "alice")
    resp = await client.get("/api/users", params={"limit": limit}, headers=alice)
    assert resp.status == 400
    assert (await resp.json())["error"] == "invalid_query"
