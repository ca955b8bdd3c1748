"""DPoP proofs (RFC 9449): every check with its allow twin, nonces, URL normalisation."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from proxy.auth import jose
from proxy.auth.claims import MemoryReplayGuard
from proxy.auth.dpop import DPoPError, DPoPNonceRequired, DPoPNonces, DPoPProof, DPoPVerifier
from proxy.auth.jose import EDDSA, ES256, LocalSigningKey, b64url_encode

NOW = 1_700_000_000.0
URL = "https://api.example.com/orders/7?page=2#top"
HTU = "https://api.example.com/orders/7"
ED_PRIVATE = Ed25519PrivateKey.generate()
ES_PRIVATE = ec.generate_private_key(ec.SECP256R1())
ED = LocalSigningKey.ed25519(ED_PRIVATE)
ES = LocalSigningKey.es256(ES_PRIVATE)
TOKEN = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
ATH = b64url_encode(hashlib.sha256(TOKEN.encode()).digest())


class Clock:
    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _jwk(key: LocalSigningKey) -> dict[str, str]:
    public = ED_PRIVATE.public_key() if key is ED else ES_PRIVATE.public_key()
    return jose.public_jwk(public)


def proof(
    key: LocalSigningKey = ED,
    *,
    header: Mapping[str, object] | None = None,
    jwk: Mapping[str, object] | None = None,
    **claims: object,
) -> str:
    head: dict[str, object] = {"typ": "dpop+jwt", "alg": key.algorithm, "jwk": jwk or _jwk(key)}
    head.update(header or {})
    body: dict[str, object] = {
        "jti": f"jti-{NOW}-{len(claims)}-0123456789",
        "htm": "POST",
        "htu": HTU,
        "iat": int(NOW),
    }
    body.update(claims)
    return jose.encode_compact(
        head, json.dumps({k: v for k, v in body.items() if v is not None}).encode(), key
    )


def _verifier(clock: Clock | None = None, **kw: object) -> DPoPVerifier:
    clock = clock or Clock()
    options: dict[str, object] = {"replay": MemoryReplayGuard(now=clock)}
    options.update(kw)
    return DPoPVerifier(**options)  # type: ignore[arg-type]


async def _check(verifier: DPoPVerifier, token: str, **kw: object) -> DPoPProof:
    options: dict[str, object] = {"method": "POST", "url": URL, "now": NOW}
    options.update(kw)
    return await verifier.verify(token, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", [ED, ES], ids=[EDDSA, ES256])
async def test_valid_proof_returns_the_thumbprint(key: LocalSigningKey) -> None:
    got = await _check(_verifier(), proof(key))
    assert got.jkt == jose.jwk_thumbprint(_jwk(key))
    assert got.iat == int(NOW)
    assert got.nonce is None


async def test_replayed_jti_is_refused() -> None:
    verifier = _verifier()
    token = proof()
    await _check(verifier, token)
    with pytest.raises(DPoPError) as info:
        await _check(verifier, token)
    assert info.value.reason == "jti replayed"
    assert info.value.code == "invalid_dpop_proof"
    # the same jti under another key is a different proof; a new jti under this key too
    same_jti_other_key = await _check(verifier, proof(ES))
    new_jti = await _check(verifier, proof(ED, jti="another-jti-0123456"))
    assert (
        same_jti_other_key.jti == jose.json_object(jose.b64url_decode(token.split(".")[1]))["jti"]
    )
    assert same_jti_other_key.jkt != new_jti.jkt


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", URL),
        ("post", URL),
        ("POST", "https://api.example.com/orders/8"),
        ("POST", "https://api.example.com/orders/7/"),
        ("POST", "http://api.example.com/orders/7"),
        ("POST", "https://evil.example.com/orders/7"),
        ("POST", "https://api.example.com:8443/orders/7"),
        ("POST", "https://api.example.com/Orders/7"),
    ],
)
async def test_wrong_htm_or_htu_is_refused(method: str, url: str) -> None:
    with pytest.raises(DPoPError, match="invalid proof") as info:
        await _check(_verifier(), proof(), method=method, url=url)
    assert info.value.reason in {"htm mismatch", "htu mismatch"}


@pytest.mark.parametrize(
    ("htu", "url"),
    [
        (HTU, "https://API.Example.COM/orders/7"),
        (HTU, "HTTPS://api.example.com:443/orders/7?x=1"),
        ("https://api.example.com:443/orders/7", URL),
        ("https://api.example.com/orders/%37", URL),
        ("https://api.example.com/a%2fb", "https://api.example.com/a%2Fb"),
        ("http://api.example.com", "http://api.example.com:80/"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x?y"),
        ("https://api.example.com/orders/7#frag", URL),
    ],
)
async def test_htu_is_compared_after_normalisation(htu: str, url: str) -> None:
    assert await _check(_verifier(), proof(htu=htu), url=url)


@pytest.mark.parametrize(
    "htu",
    [
        "/orders/7",
        "ftp://api.example.com/orders/7",
        "https://user@api.example.com/orders/7",
        7,
        None,
    ],
)
async def test_htu_must_be_an_absolute_http_url(htu: object) -> None:
    with pytest.raises(DPoPError):
        await _check(_verifier(), proof(htu=htu))


@pytest.mark.parametrize(
    ("iat", "ok"),
    [
        (NOW - 60, True),
        (NOW - 61, False),
        (NOW + 5, True),
        (NOW + 6, False),
        ("now", False),
        (None, False),
    ],
)
async def test_iat_window(iat: object, ok: bool) -> None:
    token = proof(iat=iat)
    if ok:
        assert await _check(_verifier(), token)
    else:
        with pytest.raises(DPoPError):
            await _check(_verifier(), token)


async def test_ath_binds_the_access_token() -> None:
    assert await _check(_verifier(), proof(ath=ATH), access_token=TOKEN)
    for token in (
        proof(),
        proof(ath=ATH[:-1] + "A"),
        proof(ath=b64url_encode(hashlib.sha256(b"other").digest())),
    ):
        with pytest.raises(DPoPError) as info:
            await _check(_verifier(), token, access_token=TOKEN)
        assert info.value.reason == "ath mismatch"


@pytest.mark.parametrize(
    "extra",
    [{"d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}, {"k": "c2VjcmV0"}, {"p": "AAAA"}],
    ids=["d", "k", "p"],
)
async def test_private_jwk_is_refused(extra: dict[str, str]) -> None:
    with pytest.raises(DPoPError):
        await _check(_verifier(), proof(jwk={**_jwk(ED), **extra}))


async def test_jwk_must_match_alg_and_signer() -> None:
    assert await _check(_verifier(), proof(jwk={**_jwk(ED), "alg": "EdDSA"}))
    for token in (
        proof(ED, jwk={**_jwk(ED), "alg": "ES256"}),
        proof(ES, header={"alg": "ES256"}, jwk=_jwk(ED)),
        proof(ED, jwk=_jwk(ES)),
    ):
        with pytest.raises(DPoPError):
            await _check(_verifier(), token)


@pytest.mark.parametrize(
    "header",
    [
        {"typ": "JWT"},
        {"typ": None},
        {"alg": "HS256"},
        {"alg": "none"},
        {"jwk": None},
        {"jku": "https://e"},
    ],
    ids=["typ-jwt", "typ-missing", "hs256", "none", "jwk-missing", "jku"],
)
async def test_header_rules(header: dict[str, object]) -> None:
    head = {"typ": "dpop+jwt", "alg": "EdDSA", "jwk": _jwk(ED), **header}
    head = {k: v for k, v in head.items() if v is not None}
    body = json.dumps({"jti": "j" * 20, "htm": "POST", "htu": HTU, "iat": int(NOW)}).encode()
    signing_input = f"{b64url_encode(json.dumps(head).encode())}.{b64url_encode(body)}"
    token = f"{signing_input}.{b64url_encode(ED.sign(signing_input.encode()))}"
    with pytest.raises(DPoPError):
        await _check(_verifier(), token)


async def test_algorithms_can_be_narrowed() -> None:
    only_es = _verifier(algorithms=frozenset({ES256}))
    assert await _check(only_es, proof(ES))
    with pytest.raises(DPoPError):
        await _check(only_es, proof(ED))


@pytest.mark.parametrize("jti", ["short", "", 5, None, "x" * 257])
async def test_jti_must_be_a_long_enough_string(jti: object) -> None:
    with pytest.raises(DPoPError):
        await _check(_verifier(), proof(jti=jti))


async def test_tampered_proof_is_refused() -> None:
    head, body, sig = proof().split(".")
    claims = jose.json_object(jose.b64url_decode(body))
    claims["htu"] = "https://api.example.com/admin"
    with pytest.raises(DPoPError):
        await _check(
            _verifier(),
            f"{head}.{b64url_encode(json.dumps(claims).encode())}.{sig}",
            url=claims["htu"],
        )


# -- server nonces --------------------------------------------------------------

SECRET_A = b"a" * 32
SECRET_B = b"b" * 32


def _nonces(clock: Clock, secrets: list[bytes] | None = None) -> DPoPNonces:
    held = secrets or [SECRET_A]
    return DPoPNonces(lambda: held, clock, lifetime=300)


def test_nonce_issue_and_check() -> None:
    clock = Clock()
    nonces = _nonces(clock)
    nonce = nonces.issue()
    assert nonces.check(nonce)
    clock.t += 300
    assert nonces.check(nonce)
    clock.t += 1
    assert not nonces.check(nonce)


def test_nonce_survives_rotation_and_dies_when_its_secret_goes() -> None:
    clock = Clock()
    secrets = [SECRET_A]
    nonces = _nonces(clock, secrets)
    old = nonces.issue()
    secrets.insert(0, SECRET_B)
    new = nonces.issue()
    assert old != new
    assert nonces.check(old)
    assert nonces.check(new)
    secrets.pop()
    assert not nonces.check(old)
    assert nonces.check(new)


@pytest.mark.parametrize("bad", ["", "AAAA", "x" * 200, "not base64!", "A" * 34])
def test_forged_nonces_fail(bad: str) -> None:
    assert not _nonces(Clock()).check(bad)


def test_nonce_from_the_future_or_another_server_fails() -> None:
    clock = Clock()
    future = _nonces(Clock(NOW + 60)).issue()
    other = DPoPNonces(lambda: [SECRET_B], clock).issue()
    assert not _nonces(clock).check(future)
    assert not _nonces(clock).check(other)


def test_nonce_secrets_are_validated() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        DPoPNonces(lambda: [b"short"], Clock()).issue()
    with pytest.raises(ValueError, match="32 bytes"):
        DPoPNonces(lambda: [], Clock()).issue()


async def test_required_nonce_flow() -> None:
    clock = Clock()
    nonces = _nonces(clock)
    verifier = _verifier(clock, nonces=nonces)
    with pytest.raises(DPoPNonceRequired) as info:
        await _check(verifier, proof(), require_nonce=True)
    assert info.value.code == "use_dpop_nonce"
    nonce = nonces.issue()
    got = await _check(
        verifier, proof(nonce=nonce, jti="second-proof-0123456789"), require_nonce=True
    )
    assert got.nonce == nonce


@pytest.mark.parametrize("bad", ["forged-nonce", 17])
async def test_bad_nonce_is_refused_even_when_not_required(bad: object) -> None:
    clock = Clock()
    verifier = _verifier(clock, nonces=_nonces(clock))
    with pytest.raises(DPoPError):
        await _check(verifier, proof(nonce=bad))


async def test_stale_nonce_asks_for_a_new_one() -> None:
    clock = Clock(NOW - 400)
    stale = _nonces(clock).issue()
    clock.t = NOW
    with pytest.raises(DPoPNonceRequired):
        await _check(
            _verifier(clock, nonces=_nonces(clock)), proof(nonce=stale), require_nonce=True
        )


async def test_replay_is_only_recorded_for_otherwise_valid_proofs() -> None:
    verifier = _verifier()
    token = proof()
    with pytest.raises(DPoPError):
        await _check(verifier, token, method="GET")
    assert await _check(verifier, token)


def test_verifier_bounds() -> None:
    guard = MemoryReplayGuard(now=Clock())
    with pytest.raises(ValueError, match="algorithms"):
        DPoPVerifier(replay=guard, algorithms=frozenset({"HS256"}))
    with pytest.raises(ValueError, match="window"):
        DPoPVerifier(replay=guard, max_age=3600)
