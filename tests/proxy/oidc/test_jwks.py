"""JWKS parsing and the key cache: TTL, rate-limited refetch on unknown kid, single flight."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from proxy.auth.jose import b64url_encode, public_jwk
from proxy.oidc import IdTokenError, OidcUnavailable
from proxy.oidc.discovery import Discovery
from proxy.oidc.http import ProviderHttp
from proxy.oidc.jwks import JwksCache, ProviderKey, parse_jwks, select_key
from tests.proxy.oidc.docserver import DocServer

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
ED_KEY = Ed25519PrivateKey.generate()


def _uint(n: int) -> str:
    return b64url_encode(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def rsa_jwk(key: rsa.RSAPrivateKey = RSA_KEY, **extra: object) -> dict[str, object]:
    numbers = key.public_key().public_numbers()
    jwk: dict[str, object] = {"kty": "RSA", "n": _uint(numbers.n), "e": _uint(numbers.e)}
    jwk.update(extra)
    return {k: v for k, v in jwk.items() if v is not None}


def ec_jwk(**extra: object) -> dict[str, object]:
    return {**public_jwk(EC_KEY.public_key()), **extra}


def ed_jwk(**extra: object) -> dict[str, object]:
    return {**public_jwk(ED_KEY.public_key()), **extra}


# -- parsing ------------------------------------------------------------------------


def test_usable_keys_are_parsed() -> None:
    keys = parse_jwks(
        {
            "keys": [
                rsa_jwk(kid="r", use="sig", alg="RS256", x5c=["MIIB"]),
                ec_jwk(kid="e", key_ops=["verify"]),
                ed_jwk(kid="d", alg="EdDSA"),
            ]
        }
    )
    assert [(k.kid, k.kty, k.alg) for k in keys] == [
        ("r", "RSA", "RS256"),
        ("e", "EC", None),
        ("d", "OKP", "EdDSA"),
    ]


@pytest.mark.parametrize(
    "jwk",
    [
        rsa_jwk(kid="x", use="enc"),
        rsa_jwk(kid="x", key_ops=["encrypt"]),
        rsa_jwk(kid="x", key_ops="verify"),
        rsa_jwk(kid="x", d="AQAB"),  # a private key published by mistake
        ec_jwk(kid="x", d="AQAB"),
        {"kty": "oct", "k": "c2VjcmV0", "kid": "x"},  # a shared secret
        rsa_jwk(rsa.generate_private_key(public_exponent=65537, key_size=1024), kid="x"),
        rsa_jwk(kid="x", alg="HS256"),
        rsa_jwk(kid="x", alg="none"),
        rsa_jwk(kid="../x y"),
        rsa_jwk(kid=7),
        {**rsa_jwk(kid="x"), "n": "AA" + str(rsa_jwk()["n"])},  # non-minimal integer
        {**public_jwk(ec.generate_private_key(ec.SECP256R1()).public_key()), "crv": "P-384"},
        {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"},  # not on the curve
        {"kty": "OKP", "crv": "X25519", "x": ed_jwk()["x"]},
        "not a jwk",
    ],
)
def test_unusable_keys_are_skipped(jwk: object) -> None:
    assert parse_jwks({"keys": [jwk]}) == ()


@pytest.mark.parametrize("doc", [{}, {"keys": {}}, {"keys": "x"}])
def test_jwks_without_a_keys_array_refused(doc: dict[str, object]) -> None:
    with pytest.raises(IdTokenError):
        parse_jwks(doc)


def test_select_key_rules() -> None:
    keys = parse_jwks(
        {"keys": [rsa_jwk(kid="a"), rsa_jwk(RSA_2, kid="b"), ec_jwk(kid="a"), ed_jwk()]}
    )
    assert select_key(keys, "a", "RS256") == keys[0].key
    assert select_key(keys, "a", "ES256") == keys[2].key  # same kid, other key type
    assert select_key(keys, "b", "ES256") is None
    assert select_key(keys, None, "RS256") is None  # no kid and two RSA keys: ambiguous
    assert select_key(keys, None, "EdDSA") == keys[3].key  # no kid, one fitting key
    assert select_key(keys, "zzz", "RS256") is None


def test_duplicate_kid_matches_neither() -> None:
    keys = parse_jwks({"keys": [rsa_jwk(kid="a"), rsa_jwk(RSA_2, kid="a")]})
    assert select_key(keys, "a", "RS256") is None


def test_jwk_alg_binds_the_key() -> None:
    (key,) = parse_jwks({"keys": [rsa_jwk(kid="a", alg="PS256")]})
    assert isinstance(key, ProviderKey)
    assert key.fits("PS256")
    assert not key.fits("RS256")
    (ed,) = parse_jwks({"keys": [ed_jwk(kid="d", alg="EdDSA")]})
    assert ed.fits("Ed25519")
    assert not ed.fits("ES256")


# -- the cache ------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def cache(docserver: DocServer) -> AsyncIterator[tuple[JwksCache, DocServer, Clock]]:
    docserver.docs["/.well-known/openid-configuration"] = docserver.discovery()
    docserver.docs["/jwks"] = {"keys": [rsa_jwk(kid="k1")]}
    clock = Clock()
    http = ProviderHttp(connect_timeout=2, request_timeout=5)
    discovery = Discovery(docserver.url, http, ttl=3600, clock=clock)
    jwks = JwksCache(discovery, http, ttl=600, refetch_interval=30, clock=clock)
    yield jwks, docserver, clock
    await http.aclose()


async def test_keys_are_cached(cache: tuple[JwksCache, DocServer, Clock]) -> None:
    jwks, server, clock = cache
    for _ in range(5):
        await jwks.key("k1", "RS256")
        clock.now += 100
    assert server.hits["/jwks"] == 1


async def test_ttl_expiry_refetches(cache: tuple[JwksCache, DocServer, Clock]) -> None:
    jwks, server, clock = cache
    await jwks.key("k1", "RS256")
    server.docs["/jwks"] = {"keys": [rsa_jwk(RSA_2, kid="k2")]}
    clock.now += 599
    await jwks.key("k1", "RS256")
    assert server.hits["/jwks"] == 1
    clock.now += 1
    with pytest.raises(IdTokenError):
        await jwks.key("k1", "RS256")  # the provider dropped k1: it stops verifying
    assert server.hits["/jwks"] == 2


async def test_unknown_kid_refetch_is_rate_limited(
    cache: tuple[JwksCache, DocServer, Clock],
) -> None:
    jwks, server, clock = cache
    await jwks.key("k1", "RS256")
    server.docs["/jwks"] = {"keys": [rsa_jwk(kid="k1"), rsa_jwk(RSA_2, kid="k2")]}
    for _ in range(20):  # a flood of forged kids
        with pytest.raises(IdTokenError):
            await jwks.key("forged", "RS256")
    assert server.hits["/jwks"] == 1
    clock.now += 29
    with pytest.raises(IdTokenError):
        await jwks.key("k2", "RS256")
    clock.now += 1
    await jwks.key("k2", "RS256")  # rotation followed once the interval has passed
    assert server.hits["/jwks"] == 2


async def test_concurrent_lookups_share_one_fetch(
    cache: tuple[JwksCache, DocServer, Clock],
) -> None:
    jwks, server, _ = cache
    await asyncio.gather(*(jwks.key("k1", "RS256") for _ in range(20)))
    assert server.hits["/jwks"] == 1
    assert server.hits["/.well-known/openid-configuration"] == 1


@pytest.mark.parametrize("status", [500, 404, 302])
async def test_jwks_failure_fails_closed(
    cache: tuple[JwksCache, DocServer, Clock], status: int
) -> None:
    jwks, server, clock = cache
    await jwks.key("k1", "RS256")
    server.status["/jwks"] = status
    clock.now += 600
    with pytest.raises(OidcUnavailable) as info:
        await jwks.key("k1", "RS256")
    assert info.value.status == 503
    assert server.hits["/elsewhere"] == 0  # redirects are not followed


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"keys": [], "keys": []}', b"{" + b" " * (2 * 1024 * 1024) + b"}"],
)
async def test_malformed_jwks_fails_closed(
    cache: tuple[JwksCache, DocServer, Clock], body: bytes
) -> None:
    jwks, server, _ = cache
    server.raw["/jwks"] = body
    with pytest.raises(OidcUnavailable):
        await jwks.key("k1", "RS256")
