"""Request proofs: the app checks tokengate's signature and identity with independent code.

Requests are signed with the gateway's own ``proxy.proof`` code and a throwaway
key served from a real JWKS endpoint; the app verifies them with
``http_message_signatures`` and ``cryptography`` only.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from demo_backend.app import TokengateOptions
from demo_backend.jwks import JwksError
from demo_backend.request_proof import SeenNonces
from multidict import CIMultiDict

from proxy.auth import jose
from proxy.auth.jose import LocalSigningKey
from proxy.authn.exchange import Prover
from proxy.proof.digest import content_digest
from proxy.proof.identity import IdentityMinter
from proxy.proof.message_signature import RequestView, SignatureParams, UpstreamSigner, sign
from tests.demo_backend.proof_support import (
    ANONYMOUS,
    Gateway,
    JwksServer,
    jwk_of,
    new_key,
    user,
)
from tests.demo_backend.support import Client, Clock, MakeClient, login, record_body

REFUSED = {"error": "invalid_proof", "message": "request is not signed by tokengate"}


@pytest.fixture
def gateway_key() -> LocalSigningKey:
    return new_key()


@pytest.fixture
def jwks(gateway_key: LocalSigningKey) -> JwksServer:
    return JwksServer(keys=[jwk_of(gateway_key)])


@pytest.fixture
async def jwks_url(jwks: JwksServer) -> AsyncIterator[str]:
    server = TestServer(jwks.app())
    await server.start_server()
    yield str(server.make_url("/jwks.json"))
    await server.close()


@pytest.fixture
async def app(make_client: MakeClient, jwks_url: str) -> Client:
    return await make_client(tokengate=TokengateOptions(jwks_url=jwks_url))


@pytest.fixture
def gateway(app: Client, gateway_key: LocalSigningKey) -> Gateway:
    return Gateway(key=gateway_key, authority=f"{app.host}:{app.port}")


async def send(
    client: Client,
    method: str,
    target: str,
    headers: Mapping[str, str],
    body: bytes | None = None,
) -> aiohttp.ClientResponse:
    return await client.request(method, target, headers=dict(headers), data=body)


def json_body(**fields: object) -> bytes:
    return json.dumps(record_body(**fields)).encode()


JSON = {"Content-Type": "application/json"}


async def test_signed_request_is_served_as_the_identity_user(
    app: Client, gateway: Gateway, clock: Clock
) -> None:
    # dave has no account in the app: tokengate's word is what counts.
    who = user("dave", ("support",))
    resp = await send(
        app, "GET", "/api/me", gateway.headers("GET", "/api/me", now=clock(), who=who)
    )
    assert resp.status == 200
    assert await resp.json() == {"username": "dave", "roles": ["support"]}


async def test_unsigned_request_is_refused(app: Client) -> None:
    resp = await app.get("/api/me")
    assert resp.status == 401
    assert await resp.json() == REFUSED
    assert resp.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("method", "target"),
    [("GET", "/"), ("GET", "/static/app.js"), ("POST", "/logout"), ("GET", "/healthz?x=1")],
)
async def test_every_route_but_healthz_needs_a_proof(app: Client, method: str, target: str) -> None:
    resp = await app.request(method, target)
    assert resp.status == 401
    assert await resp.json() == REFUSED


async def test_healthz_needs_no_proof(app: Client) -> None:
    resp = await app.get("/healthz")
    assert resp.status == 200


@pytest.mark.parametrize(("method", "target"), [("GET", "/"), ("GET", "/static/app.js")])
async def test_signed_public_pages_are_served(
    app: Client, gateway: Gateway, clock: Clock, method: str, target: str
) -> None:
    headers = gateway.headers(method, target, now=clock(), who=ANONYMOUS)
    resp = await send(app, method, target, headers)
    assert resp.status == 200


async def test_identity_replaces_the_app_cookie(
    app: Client, gateway: Gateway, clock: Clock
) -> None:
    body = json.dumps({"username": "alice", "password": "alice"}).encode()
    headers = gateway.headers("POST", "/login", now=clock(), who=ANONYMOUS, body=body, extra=JSON)
    resp = await send(app, "POST", "/login", headers, body)
    assert resp.status == 200
    alice_cookie = {"Cookie": f"demo_session={resp.cookies['demo_session'].value}"}

    as_bob = gateway.headers("GET", "/api/me", now=clock(), who=user("bob"), extra=alice_cookie)
    resp = await send(app, "GET", "/api/me", as_bob)
    assert resp.status == 200
    assert (await resp.json())["username"] == "bob"


async def test_anonymous_identity_has_no_user_even_with_a_cookie(
    make_client: MakeClient, app: Client, gateway: Gateway, clock: Clock
) -> None:
    # A cookie from the app's own login, obtained without tokengate in front.
    plain = await make_client()
    cookie = await login(plain, "alice")
    headers = gateway.headers("GET", "/api/me", now=clock(), who=ANONYMOUS, extra=cookie)
    resp = await send(app, "GET", "/api/me", headers)
    assert resp.status == 401
    assert (await resp.json())["error"] == "unauthorized"


@pytest.mark.parametrize("streamed", [False, True], ids=["buffered", "streamed"])
async def test_signed_create_is_owned_by_the_identity_user(
    app: Client, gateway: Gateway, clock: Clock, streamed: bool
) -> None:
    body = json_body()
    headers = gateway.headers(
        "POST",
        "/api/users",
        now=clock(),
        who=user("erin"),
        body=body,
        streamed=streamed,
        extra=JSON,
    )
    resp = await send(app, "POST", "/api/users", headers, body)
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["owner"] == "erin"


async def test_support_role_from_identity_allows_updating_others_records(
    app: Client, gateway: Gateway, clock: Clock
) -> None:
    body = json_body()
    headers = gateway.headers(
        "POST", "/api/users", now=clock(), who=user("erin"), body=body, extra=JSON
    )
    created = await (await send(app, "POST", "/api/users", headers, body)).json()
    target = f"/api/users/{created['id']}"
    for who, status in ((user("frank"), 403), (user("frank", ("support",)), 200)):
        headers = gateway.headers("PUT", target, now=clock(), who=who, body=body, extra=JSON)
        resp = await send(app, "PUT", target, headers, body)
        assert resp.status == status


@pytest.mark.parametrize(
    ("signed", "sent"),
    [
        (("GET", "/api/users"), ("GET", "/api/users/1")),
        (("GET", "/api/users?limit=1"), ("GET", "/api/users?limit=2")),
        (("GET", "/api/users?limit=1"), ("GET", "/api/users")),
        (("GET", "/api/users"), ("GET", "/api/users?limit=5")),
        (("DELETE", "/api/me"), ("GET", "/api/me")),
        (("GET", "/api/me"), ("HEAD", "/api/me")),
    ],
    ids=["path", "query", "query-dropped", "query-added", "method", "method-head"],
)
async def test_tampered_target_or_method_is_refused(
    app: Client,
    gateway: Gateway,
    clock: Clock,
    signed: tuple[str, str],
    sent: tuple[str, str],
) -> None:
    headers = gateway.headers(*signed, now=clock())
    resp = await send(app, *sent, headers)
    assert resp.status == 401
    # Its allow twin: the same request sent as signed.
    headers = gateway.headers(*signed, now=clock())
    assert (await send(app, *signed, headers)).status in (200, 404, 405)


async def test_other_authority_is_refused(app: Client, gateway: Gateway, clock: Clock) -> None:
    other = Gateway(key=gateway.key, authority="other.example:8443")
    resp = await send(app, "GET", "/api/me", other.headers("GET", "/api/me", now=clock()))
    assert resp.status == 401


async def test_swapped_identity_is_refused(app: Client, gateway: Gateway, clock: Clock) -> None:
    headers = gateway.headers("GET", "/api/me", now=clock(), who=user("alice"))
    # A genuine identity token, but not the one the signature covers.
    headers["Tokengate-Identity"] = gateway.identity(user("carol", ("support",)), now=clock())
    resp = await send(app, "GET", "/api/me", headers)
    assert resp.status == 401


@pytest.mark.parametrize("fresh_digest", [False, True], ids=["same-digest", "new-digest"])
async def test_tampered_body_is_refused(
    app: Client, gateway: Gateway, clock: Clock, fresh_digest: bool
) -> None:
    body = json_body(name="Ann")
    headers = gateway.headers("POST", "/api/users", now=clock(), body=body, extra=JSON)
    forged = json_body(name="Mallory")
    sent = dict(headers)
    if fresh_digest:
        sent["Content-Digest"] = content_digest(forged)
    resp = await send(app, "POST", "/api/users", sent, forged)
    assert resp.status == 401
    # Its allow twin: the body the signature was made for.
    assert (await send(app, "POST", "/api/users", headers, body)).status == 201


@pytest.mark.parametrize(
    ("offset", "status"),
    [(-61, 401), (-60, 200), (0, 200), (5, 200), (6, 401), (-3600, 401)],
)
async def test_created_must_be_within_sixty_seconds(
    app: Client, gateway: Gateway, clock: Clock, offset: int, status: int
) -> None:
    identity = gateway.identity(user("alice"), now=clock())
    headers = gateway.headers(
        "GET", "/api/me", now=clock(), identity=identity, signed_at=clock() + offset
    )
    assert (await send(app, "GET", "/api/me", headers)).status == status


async def test_signature_by_a_key_not_in_the_jwks_is_refused(
    app: Client, gateway: Gateway, clock: Clock, jwks: JwksServer
) -> None:
    clock.advance(30)  # past the refetch rate limit, counted from the start-up fetch
    stranger = Gateway(key=new_key(), authority=gateway.authority)
    resp = await send(app, "GET", "/api/me", stranger.headers("GET", "/api/me", now=clock()))
    assert resp.status == 401
    assert jwks.fetches == 2  # the unknown kid made the app look once more


async def test_other_key_claiming_the_gateway_kid_is_refused(
    app: Client, gateway: Gateway, clock: Clock
) -> None:
    impostor = LocalSigningKey.ed25519(Ed25519PrivateKey.generate(), kid=gateway.key.kid)
    forger = Gateway(key=impostor, authority=gateway.authority, identity_key=gateway.key)
    resp = await send(app, "GET", "/api/me", forger.headers("GET", "/api/me", now=clock()))
    assert resp.status == 401


async def test_missing_identity_is_refused(app: Client, gateway: Gateway, clock: Clock) -> None:
    headers = gateway.headers("GET", "/api/me", now=clock())
    del headers["Tokengate-Identity"]
    assert (await send(app, "GET", "/api/me", headers)).status == 401


def _custom_signature(
    gateway: Gateway, *, components: tuple[str, ...], tag: str, now: float, extra: dict[str, str]
) -> dict[str, str]:
    headers = dict(extra)
    view = RequestView.build(
        method="GET",
        authority=gateway.authority,
        target="/api/me",
        headers=headers.items(),
        scheme="http",
    )
    params = SignatureParams(
        components=components, created=int(now), keyid=gateway.key.kid, nonce="n", tag=tag
    )
    headers.update(sign(view, params, gateway.key).as_dict())
    return headers


BASE = ("@method", "@authority", "@path", "@query")


@pytest.mark.parametrize(
    ("components", "tag", "status"),
    [
        ((*BASE, "tokengate-identity", "content-digest"), "tokengate", 200),
        ((*BASE, "content-digest"), "tokengate", 401),
        ((*BASE, "tokengate-identity"), "tokengate", 401),
        ((*BASE, "tokengate-identity"), "tokengate-stream", 200),
        ((*BASE, "tokengate-identity", "content-digest"), "other-app", 401),
        (("@method", "@path", "@query", "tokengate-identity", "content-digest"), "tokengate", 401),
    ],
    ids=[
        "complete",
        "identity-not-covered",
        "digest-not-covered",
        "stream-without-body",
        "wrong-tag",
        "authority-not-covered",
    ],
)
async def test_coverage_rules(
    app: Client,
    gateway: Gateway,
    clock: Clock,
    components: tuple[str, ...],
    tag: str,
    status: int,
) -> None:
    extra = {
        "Tokengate-Identity": gateway.identity(user("alice"), now=clock()),
        "Content-Digest": content_digest(b""),
    }
    headers = _custom_signature(gateway, components=components, tag=tag, now=clock(), extra=extra)
    assert (await send(app, "GET", "/api/me", headers)).status == status


async def test_streamed_body_without_covered_length_is_refused(
    app: Client, gateway: Gateway, clock: Clock
) -> None:
    body = json_body()

    async def chunks() -> AsyncIterator[bytes]:
        yield body

    # Signed as streamed with no length known: sent chunked, nothing bounds the body.
    headers = gateway.headers(
        "POST", "/api/users", now=clock(), body=None, streamed=True, extra=JSON
    )
    resp = await app.post("/api/users", headers=headers, data=chunks())
    assert resp.status == 401


async def test_two_signatures_are_refused(app: Client, gateway: Gateway, clock: Clock) -> None:
    headers = gateway.headers("GET", "/api/me", now=clock())
    headers["Signature-Input"] += ", " + headers["Signature-Input"].replace(
        "tokengate=", "extra=", 1
    )
    headers["Signature"] += ", " + headers["Signature"].replace("tokengate=", "extra=", 1)
    assert (await send(app, "GET", "/api/me", headers)).status == 401


async def test_signature_under_another_label_is_refused(
    app: Client, gateway: Gateway, clock: Clock
) -> None:
    headers = gateway.headers("GET", "/api/me", now=clock())
    for name in ("Signature-Input", "Signature"):
        headers[name] = headers[name].replace("tokengate=", "other=", 1)
    assert (await send(app, "GET", "/api/me", headers)).status == 401


@pytest.mark.parametrize(
    "problem", ["other-audience", "expired", "future", "unknown-key", "typ", "anonymous-with-roles"]
)
async def test_bad_identity_is_refused(
    app: Client, gateway: Gateway, clock: Clock, problem: str
) -> None:
    now = clock()
    if problem == "other-audience":
        identity = gateway.identity(user("alice"), now=now, audience="billing-app")
    elif problem == "expired":
        identity = gateway.identity(user("alice"), now=now - 66)
    elif problem == "future":
        identity = gateway.identity(user("alice"), now=now + 6)
    elif problem == "unknown-key":
        identity = gateway.identity(user("alice"), now=now, key=new_key())
    elif problem == "typ":
        identity = jose.sign(_identity_claims(now), gateway.key, typ="at+jwt")
    else:
        identity = jose.sign(
            _identity_claims(now, sub="", roles=["support"]),
            gateway.key,
            typ="tokengate-identity+jwt",
        )
    headers = gateway.headers("GET", "/api/me", now=now, identity=identity)
    assert (await send(app, "GET", "/api/me", headers)).status == 401


def _identity_claims(now: float, **changes: object) -> dict[str, object]:
    claims: dict[str, object] = {
        "iss": "tokengate",
        "aud": "demo-app",
        "sub": "alice",
        "roles": ["user"],
        "iat": int(now),
        "exp": int(now) + 60,
        "jti": "j",
    }
    claims.update(changes)
    return claims


@pytest.mark.parametrize("age", [0, 64])
async def test_identity_within_its_lifetime_and_skew_is_accepted(
    app: Client, gateway: Gateway, clock: Clock, age: int
) -> None:
    identity = gateway.identity(user("alice"), now=clock() - age)
    headers = gateway.headers("GET", "/api/me", now=clock(), identity=identity)
    assert (await send(app, "GET", "/api/me", headers)).status == 200


async def test_identity_with_custom_audience(
    make_client: MakeClient, jwks_url: str, gateway_key: LocalSigningKey, clock: Clock
) -> None:
    app = await make_client(
        tokengate=TokengateOptions(jwks_url=jwks_url, identity_audience="billing-app")
    )
    gateway = Gateway(key=gateway_key, authority=f"{app.host}:{app.port}")
    for audience, status in (("billing-app", 200), ("demo-app", 401)):
        identity = gateway.identity(user("alice"), now=clock(), audience=audience)
        headers = gateway.headers("GET", "/api/me", now=clock(), identity=identity)
        assert (await send(app, "GET", "/api/me", headers)).status == status


async def test_key_rotation_is_followed_and_refetch_is_rate_limited(
    app: Client, gateway: Gateway, clock: Clock, jwks: JwksServer
) -> None:
    assert jwks.fetches == 1  # at start-up
    second, third = new_key(), new_key()
    jwks.keys.append(jwk_of(second))
    rotated = Gateway(key=second, authority=gateway.authority)
    # Within 30 s of the start-up fetch, a new kid is not looked up.
    clock.advance(29)
    resp = await send(app, "GET", "/api/me", rotated.headers("GET", "/api/me", now=clock()))
    assert resp.status == 401
    assert jwks.fetches == 1

    clock.advance(1)
    resp = await send(app, "GET", "/api/me", rotated.headers("GET", "/api/me", now=clock()))
    assert resp.status == 200
    assert jwks.fetches == 2

    # Known keys need no fetch.
    resp = await send(app, "GET", "/api/me", gateway.headers("GET", "/api/me", now=clock()))
    assert resp.status == 200
    assert jwks.fetches == 2

    jwks.keys.append(jwk_of(third))
    rotated_again = Gateway(key=third, authority=gateway.authority)
    clock.advance(29)
    for _ in range(3):
        headers = rotated_again.headers("GET", "/api/me", now=clock())
        assert (await send(app, "GET", "/api/me", headers)).status == 401
    assert jwks.fetches == 2  # within 30 s of the last fetch: no new one

    clock.advance(1)
    headers = rotated_again.headers("GET", "/api/me", now=clock())
    assert (await send(app, "GET", "/api/me", headers)).status == 200
    assert jwks.fetches == 3


async def test_retired_key_is_dropped_on_refetch(
    app: Client, gateway: Gateway, clock: Clock, jwks: JwksServer
) -> None:
    clock.advance(30)
    successor = new_key()
    jwks.keys[:] = [jwk_of(successor)]
    rotated = Gateway(key=successor, authority=gateway.authority)
    headers = rotated.headers("GET", "/api/me", now=clock())
    assert (await send(app, "GET", "/api/me", headers)).status == 200
    headers = gateway.headers("GET", "/api/me", now=clock())
    assert (await send(app, "GET", "/api/me", headers)).status == 401


async def test_identity_by_a_newly_published_key_triggers_a_refetch(
    app: Client, gateway: Gateway, clock: Clock, jwks: JwksServer
) -> None:
    clock.advance(30)
    newer = new_key()
    jwks.keys.append(jwk_of(newer))
    mixed = Gateway(key=gateway.key, authority=gateway.authority, identity_key=newer)
    assert (
        await send(app, "GET", "/api/me", mixed.headers("GET", "/api/me", now=clock()))
    ).status == 200
    assert jwks.fetches == 2


async def test_failed_refetch_keeps_the_known_keys(
    app: Client, gateway: Gateway, clock: Clock, jwks: JwksServer
) -> None:
    clock.advance(30)
    jwks.status = 503
    stranger = Gateway(key=new_key(), authority=gateway.authority)
    assert (
        await send(app, "GET", "/api/me", stranger.headers("GET", "/api/me", now=clock()))
    ).status == 401
    assert jwks.fetches == 2
    assert (
        await send(app, "GET", "/api/me", gateway.headers("GET", "/api/me", now=clock()))
    ).status == 200


@pytest.mark.parametrize(
    ("status", "body"),
    [(503, None), (200, b'{"keys": []}'), (200, b"not json"), (404, None)],
)
async def test_app_does_not_start_without_the_jwks(
    make_client: MakeClient, jwks: JwksServer, jwks_url: str, status: int, body: bytes | None
) -> None:
    jwks.status, jwks.body = status, body
    with pytest.raises(JwksError):
        await make_client(tokengate=TokengateOptions(jwks_url=jwks_url))


@pytest.mark.parametrize("streamed", [False, True], ids=["buffered", "streamed"])
async def test_requests_proven_by_the_gateway_prover(
    app: Client, gateway: Gateway, clock: Clock, streamed: bool
) -> None:
    """The exact code the gateway forwards with (``proxy.authn.exchange.Prover``)."""
    prover = Prover(
        minter=IdentityMinter(signer=lambda: gateway.key, issuer="tokengate", random_bytes=_rand),
        signer=UpstreamSigner(signer=lambda: gateway.key, random_bytes=_rand),
    )
    body = json_body()
    headers = CIMultiDict(JSON)
    headers["Content-Length"] = str(len(body))
    prover.prove(
        headers,
        identity=user("gina"),
        audience="demo-app",
        method="POST",
        authority=gateway.authority,
        target="/api/users",
        body=None if streamed else body,
        now=clock(),
    )
    resp = await send(app, "POST", "/api/users", dict(headers), body)
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["owner"] == "gina"


def _rand(n: int) -> bytes:
    return os.urandom(n)


async def test_replayed_request_is_refused(app: Client, gateway: Gateway, clock: Clock) -> None:
    body = json_body()
    headers = gateway.headers("POST", "/api/users", now=clock(), body=body, extra=JSON)
    assert (await send(app, "POST", "/api/users", headers, body)).status == 201
    clock.advance(10)
    assert (await send(app, "POST", "/api/users", headers, body)).status == 401
    # Its allow twin: the same request, signed afresh by the gateway.
    headers = gateway.headers("POST", "/api/users", now=clock(), body=body, extra=JSON)
    assert (await send(app, "POST", "/api/users", headers, body)).status == 201


async def test_signature_without_a_nonce_is_refused(
    app: Client, gateway: Gateway, clock: Clock
) -> None:
    extra = {
        "Tokengate-Identity": gateway.identity(user("alice"), now=clock()),
        "Content-Digest": content_digest(b""),
    }
    headers = dict(extra)
    view = RequestView.build(
        method="GET",
        authority=gateway.authority,
        target="/api/me",
        headers=headers.items(),
        scheme="http",
    )
    components = (*BASE, "tokengate-identity", "content-digest")
    for nonce, status in ((None, 401), ("fresh-nonce", 200)):
        params = SignatureParams(
            components=components,
            created=int(clock()),
            keyid=gateway.key.kid,
            nonce=nonce,
            tag="tokengate",
        )
        signed = headers | sign(view, params, gateway.key).as_dict()
        assert (await send(app, "GET", "/api/me", signed)).status == status


def test_seen_nonces_expire_and_fail_closed_when_full() -> None:
    seen = SeenNonces(max_entries=2)
    assert seen.first_use("k", "a", until=100, now=0)
    assert not seen.first_use("k", "a", until=100, now=50)
    assert seen.first_use("k2", "a", until=100, now=50)  # another key, another nonce space
    assert not seen.first_use("k", "b", until=100, now=60)  # full of live entries
    assert seen.first_use("k", "a", until=200, now=100)  # expired entries make room
    assert seen.first_use("k", "b", until=200, now=100)
