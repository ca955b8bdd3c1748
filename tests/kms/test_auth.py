"""kms.auth: bearer credentials checked against digests, with fixed 401/403 JSON answers."""

from __future__ import annotations

import json

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from kms.auth import (
    CREDENTIALS,
    Caller,
    Credential,
    CredentialTable,
    authenticate,
    credential_digest,
    new_credential,
    parse_bearer,
    require_role,
)

SECRET = new_credential()
OTHER = new_credential()
TABLE = CredentialTable(
    [
        Credential("gw-1", frozenset({"gateway"}), credential_digest(SECRET)),
        Credential("ops", frozenset({"admin", "gateway"}), credential_digest(OTHER)),
    ]
)


def request(*headers: tuple[str, str], table: CredentialTable | None = TABLE) -> web.Request:
    app = web.Application()
    if table is not None:
        app[CREDENTIALS] = table
    return make_mocked_request("GET", "/", headers=list(headers), app=app)


def test_new_credentials_are_distinct_and_well_formed() -> None:
    assert SECRET != OTHER
    assert parse_bearer([f"Bearer {SECRET}"]) == SECRET
    assert len(credential_digest(SECRET)) == 64


def test_lookup_finds_the_one_match() -> None:
    assert TABLE.lookup(SECRET) == Caller("gw-1", frozenset({"gateway"}))
    assert TABLE.lookup(OTHER) == Caller("ops", frozenset({"admin", "gateway"}))
    assert TABLE.lookup(new_credential()) is None
    assert len(TABLE) == 2


async def test_authenticate_accepts_a_known_credential_in_any_scheme_case() -> None:
    caller = await authenticate(request(("Authorization", f"bearer  {SECRET}")))
    assert caller.id == "gw-1"


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [("Authorization", f"Basic {SECRET}")],
        [("Authorization", SECRET)],
        [("Authorization", f"Bearer {SECRET}x")],
        [("Authorization", f"Bearer {new_credential()}")],
        [("Authorization", f"Bearer {SECRET}"), ("Authorization", f"Bearer {SECRET}")],
        [("Authorization", "Bearer tgk_" + "A" * 52)],
    ],
    ids=["none", "basic", "no-scheme", "longer", "unknown", "twice", "uppercase"],
)
async def test_authenticate_refuses_with_a_fixed_401(headers: list[tuple[str, str]]) -> None:
    with pytest.raises(web.HTTPUnauthorized) as info:
        await authenticate(request(*headers))
    body = json.loads(info.value.text or "")
    assert body["error"] == "unauthorized"
    assert SECRET not in (info.value.text or "")
    assert info.value.headers["WWW-Authenticate"] == "Bearer"


async def test_an_app_without_a_table_refuses_everyone() -> None:
    with pytest.raises(web.HTTPUnauthorized):
        await authenticate(request(("Authorization", f"Bearer {SECRET}"), table=None))


def test_require_role() -> None:
    require_role(Caller("ops", frozenset({"admin"})), "admin")
    with pytest.raises(web.HTTPForbidden) as info:
        require_role(Caller("gw", frozenset({"gateway"})), "admin")
    assert json.loads(info.value.text or "")["error"] == "forbidden"
