"""RFC 9421 signatures: the signature base, RFC vectors, and interop with http_message_signatures."""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    InvalidSignature,
    MappingKeyResolver,
    algorithms,
)
from multidict import CIMultiDict

from kms_client.rng import random_bytes
from kms_client.signing import KeySigner
from proxy.auth.jose import HmacKey, LocalSigningKey
from proxy.proof.digest import content_digest
from proxy.proof.message_signature import (
    RequestView,
    SignatureParams,
    UpstreamSigner,
    normalise_authority,
    sign,
    signature_base,
)
from proxy.proof.signature_verifier import MessageVerifier

# RFC 9421 appendix B.1.4 (test-key-ed25519) and B.2.6.
RFC_ED25519_PEM = b"""-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF
-----END PRIVATE KEY-----
"""
B26_BASE = (
    b'"date": Tue, 20 Apr 2021 02:07:55 GMT\n'
    b'"@method": POST\n'
    b'"@path": /foo\n'
    b'"@authority": example.com\n'
    b'"content-type": application/json\n'
    b'"content-length": 18\n'
    b'"@signature-params": ("date" "@method" "@path" "@authority" "content-type" "content-length")'
    b';created=1618884473;keyid="test-key-ed25519"'
)
B26_INPUT = 'sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"'
B26_SIGNATURE = "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:"
B2_HEADERS = [
    ("Host", "example.com"),
    ("Date", "Tue, 20 Apr 2021 02:07:55 GMT"),
    ("Content-Type", "application/json"),
    (
        "Content-Digest",
        "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:",
    ),
    ("Content-Length", "18"),
]
_LOADED = load_pem_private_key(RFC_ED25519_PEM, None)
assert isinstance(_LOADED, Ed25519PrivateKey)
RFC_PRIVATE: Ed25519PrivateKey = _LOADED
RFC_KEY = LocalSigningKey.ed25519(RFC_PRIVATE, kid="test-key-ed25519")
B26_PARAMS = SignatureParams(
    components=("date", "@method", "@path", "@authority", "content-type", "content-length"),
    created=1618884473,
    keyid="test-key-ed25519",
    alg=None,
)
PRIVATE = Ed25519PrivateKey.generate()
KEY = LocalSigningKey.ed25519(PRIVATE)
BODY = b'{"card": "tok_123"}'


def _b2_request(headers: list[tuple[str, str]] = B2_HEADERS) -> RequestView:
    return RequestView.build(
        method="POST", authority="example.com", target="/foo?param=Value&Pet=dog", headers=headers
    )


class LibMessage:
    """The request shape http_message_signatures reads: method, url, headers."""

    def __init__(self, method: str, url: str, headers: Mapping[str, str]) -> None:
        self.method = method
        self.url = url
        self.headers = dict(headers)


def _lib_verifier(keys: Mapping[str, object]) -> HTTPMessageVerifier:
    return HTTPMessageVerifier(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(public_keys=dict(keys), private_keys={}),  # type: ignore[arg-type]
    )


# -- RFC 9421 appendix B.2.6 ----------------------------------------------------


def test_rfc9421_b26_signature_base_and_signature() -> None:
    message = _b2_request()
    assert signature_base(message, B26_PARAMS) == B26_BASE
    signed = sign(message, B26_PARAMS, RFC_KEY, label="sig-b26")
    assert signed.signature_input == B26_INPUT
    assert signed.signature == B26_SIGNATURE  # Ed25519 is deterministic


def test_rfc9421_b26_verifies_with_our_verifier_and_a_tampered_twin_fails() -> None:
    verifier = MessageVerifier(
        keys={"test-key-ed25519": RFC_PRIVATE.public_key()},
        label="sig-b26",
        required=("@method", "@path", "@authority"),
        max_age=10**10,
    )
    headers = [*B2_HEADERS, ("Signature-Input", B26_INPUT), ("Signature", B26_SIGNATURE)]
    got = verifier.verify(_b2_request(headers), now=1618884473)
    assert got.keyid == "test-key-ed25519"
    assert got.created == 1618884473
    tampered = [(n, "19" if n == "Content-Length" else v) for n, v in headers]
    with pytest.raises(Exception, match="invalid request proof"):
        verifier.verify(_b2_request(tampered), now=1618884473)


# -- the signature base -----------------------------------------------------------


def test_field_values_are_trimmed_and_lines_combined() -> None:
    """RFC 9421 section 2.1's example fields."""
    message = RequestView.build(
        method="GET",
        authority="example.com",
        target="/",
        headers=[
            ("X-OWS-Header", "   Leading and trailing whitespace.   "),
            ("Cache-Control", "max-age=60"),
            ("Cache-Control", "   must-revalidate"),
            ("X-Empty-Header", ""),
        ],
    )
    params = SignatureParams(
        ("cache-control", "x-ows-header", "x-empty-header"), created=1, keyid="k", alg=None
    )
    assert signature_base(message, params).decode().splitlines()[:3] == [
        '"cache-control": max-age=60, must-revalidate',
        '"x-ows-header": Leading and trailing whitespace.',
        '"x-empty-header": ',
    ]


@pytest.mark.parametrize(
    ("target", "path", "query"),
    [
        ("/path?param=value&foo=bar&baz=bat%2Dman", "/path", "?param=value&foo=bar&baz=bat%2Dman"),
        ("/path?queryString", "/path", "?queryString"),
        ("/path?", "/path", "?"),
        ("/path", "/path", "?"),
        ("/a%20b/c", "/a%20b/c", "?"),
    ],
)
def test_path_and_query_components(target: str, path: str, query: str) -> None:
    message = RequestView.build(method="GET", authority="example.com", target=target, headers=[])
    assert message.component("@path") == path
    assert message.component("@query") == query


@pytest.mark.parametrize(
    ("authority", "scheme", "expected"),
    [
        ("Example.COM", "https", "example.com"),
        ("example.com:443", "https", "example.com"),
        ("example.com:80", "http", "example.com"),
        ("example.com:80", "https", "example.com:80"),
        ("example.com:8443", "https", "example.com:8443"),
        ("[::1]:443", "https", "[::1]"),
        ("[::1]:8080", "https", "[::1]:8080"),
    ],
)
def test_authority_is_normalised(authority: str, scheme: str, expected: str) -> None:
    assert normalise_authority(authority, scheme) == expected


@pytest.mark.parametrize("authority", ["user@example.com", "example.com/path", "", "exa mple.com"])
def test_bad_authority_is_refused(authority: str) -> None:
    with pytest.raises(ValueError, match="authority"):
        normalise_authority(authority)


def test_missing_unsignable_or_repeated_components_are_refused() -> None:
    message = RequestView.build(
        method="GET", authority="e.com", target="/", headers=[("X-Bin", "caf\u00e9"), ("X-Ok", "1")]
    )
    assert signature_base(message, SignatureParams(("x-ok",), created=1, keyid="k"))
    for components, error in (
        (("x-missing",), KeyError),
        (("@target-uri",), KeyError),
        (("X-Ok",), KeyError),
        (("x-bin",), ValueError),
        (("x-ok", "x-ok"), ValueError),
    ):
        with pytest.raises(error):
            signature_base(message, SignatureParams(components, created=1, keyid="k"))
    with pytest.raises(ValueError, match="origin form"):
        RequestView.build(method="GET", authority="e.com", target="http://e.com/", headers=[])


def test_sign_refuses_a_key_that_does_not_match() -> None:
    message = _b2_request()
    with pytest.raises(ValueError, match="keyid"):
        sign(message, B26_PARAMS, KEY)
    es = LocalSigningKey.hs256(
        __import__("proxy.auth.jose", fromlist=["HmacKey"]).HmacKey(b"k" * 32), "test-key-ed25519"
    )
    with pytest.raises(ValueError, match="Ed25519"):
        sign(message, B26_PARAMS, es)


# -- the upstream signer --------------------------------------------------------


def _forwarded(
    *, body: bytes | None = BODY, extra: list[tuple[str, str]] | None = None
) -> list[tuple[str, str]]:
    headers = [
        ("Host", "backend.internal:8080"),
        ("Tokengate-Identity", "eyJhbGciOiJFZERTQSJ9.e30.sig"),
        ("Content-Type", "application/json"),
    ]
    if body is not None:
        headers.append(("Content-Digest", content_digest(body)))
        headers.append(("Content-Length", str(len(body))))
    return headers + (extra or [])


def _view(
    headers: list[tuple[str, str]], *, method: str = "POST", target: str = "/api/pay?x=1"
) -> RequestView:
    return RequestView.build(
        method=method,
        authority="backend.internal:8080",
        target=target,
        headers=headers,
        scheme="http",
    )


def test_upstream_signature_buffered_covers_the_digest() -> None:
    now = time.time()
    signer = UpstreamSigner(signer=lambda: KEY, random_bytes=random_bytes)
    headers = _forwarded()
    signed = signer.sign(_view(headers), now=now, streamed=False)
    assert signed.signature_input.startswith(
        'tokengate=("@method" "@authority" "@path" "@query" "tokengate-identity" "content-digest");'
        f'created={int(now)};keyid="{KEY.kid}";alg="ed25519";nonce="'
    )
    assert signed.signature_input.endswith(';tag="tokengate"')
    view = _view(headers + list(signed.as_dict().items()))
    got = MessageVerifier(
        keys={KEY.kid: PRIVATE.public_key()},
        required=(
            "@method",
            "@authority",
            "@path",
            "@query",
            "tokengate-identity",
            "content-digest",
        ),
    ).verify(view, now=now, body=BODY, expect_tag="tokengate")
    assert got.nonce is not None
    assert len(base64.urlsafe_b64decode(got.nonce + "==")) == 16
    with pytest.raises(Exception, match="invalid request proof"):
        MessageVerifier(keys={KEY.kid: PRIVATE.public_key()}).verify(
            view, now=now, body=BODY + b" "
        )


def test_upstream_signature_streamed_covers_length_and_says_so() -> None:
    signer = UpstreamSigner(signer=lambda: KEY, random_bytes=random_bytes)
    headers = [h for h in _forwarded() if h[0] != "Content-Digest"]
    signed = signer.sign(_view(headers), now=1000, streamed=True)
    assert '"tokengate-identity" "content-length");' in signed.signature_input
    assert signed.signature_input.endswith(';tag="tokengate-stream"')
    no_length = signer.sign(_view(_forwarded(body=None), method="GET"), now=1000, streamed=True)
    assert '"tokengate-identity");' in no_length.signature_input


def test_buffered_signing_needs_the_digest_field() -> None:
    signer = UpstreamSigner(signer=lambda: KEY, random_bytes=random_bytes)
    with pytest.raises(ValueError, match="content-digest"):
        signer.sign(_view(_forwarded(body=None)), now=1000, streamed=False)
    with pytest.raises(KeyError):
        signer.sign(_view([("Content-Digest", content_digest(b""))]), now=1000, streamed=False)


def test_nonces_differ_and_rotation_is_picked_up() -> None:
    current = [KEY]
    signer = UpstreamSigner(signer=lambda: current[0], random_bytes=random_bytes)
    first = signer.sign(_view(_forwarded()), now=1000, streamed=False)
    assert first != signer.sign(_view(_forwarded()), now=1000, streamed=False)
    current[0] = LocalSigningKey.ed25519(Ed25519PrivateKey.generate())
    assert (
        f'keyid="{current[0].kid}"'
        in signer.sign(_view(_forwarded()), now=1000, streamed=False).signature_input
    )


def test_with_a_keyring_signer() -> None:
    key = KeySigner.from_seed("upstream-signing", 1, random_bytes(32))
    signed = UpstreamSigner(signer=lambda: key, random_bytes=random_bytes).sign(
        _view(_forwarded()), now=1000, streamed=False
    )
    view = _view(_forwarded() + list(signed.as_dict().items()))
    public = key.public_key()
    assert isinstance(public, Ed25519PublicKey)
    assert (
        MessageVerifier(keys={key.kid: public}).verify(view, now=1000, body=BODY).keyid == key.kid
    )


def _fixed_signer(key: LocalSigningKey | KeySigner = KEY) -> UpstreamSigner:
    """A signer whose nonce is fixed, so two signing paths can be compared byte for byte."""
    return UpstreamSigner(signer=lambda: key, random_bytes=lambda n: b"\x07" * n)


@pytest.mark.parametrize(
    ("headers", "target", "streamed"),
    [
        (_forwarded(), "/api/pay?x=1", False),
        ([h for h in _forwarded() if h[0] != "Content-Digest"], "/api/pay?x=1", True),
        (_forwarded(body=None), "/", True),
        (_forwarded(body=None), "/a%20b/c?", True),
        (
            [("TOKENGATE-IDENTITY", " a.b.c "), ("content-length", "5"), ("X-Other", "1")],
            "/p?q=%2B",
            True,
        ),
        ([*_forwarded(), ("Content-Digest", "sha-512=:AA==:")], "/two-digest-lines", False),
    ],
    ids=["buffered", "streamed-length", "streamed-bare", "empty-query", "case", "two-lines"],
)
def test_sign_headers_equals_signing_the_view(
    headers: list[tuple[str, str]], target: str, streamed: bool
) -> None:
    """The forwarder's path signs exactly what RequestView + the generic sign() would."""
    signer = _fixed_signer()
    fast = signer.sign_headers(
        method="POST",
        authority="Backend.Internal:80",
        target=target,
        headers=CIMultiDict(headers),
        now=1_700_000_000.7,
        streamed=streamed,
    )
    view = RequestView.build(
        method="POST",
        authority="Backend.Internal:80",
        target=target,
        headers=headers,
        scheme="http",
    )
    assert fast == signer.sign(view, now=1_700_000_000.7, streamed=streamed)
    components = ("@method", "@authority", "@path", "@query", "tokengate-identity")
    covered = ("content-length",) if "content-length" in view.fields else ()
    params = SignatureParams(
        components=(*components, *(covered if streamed else ("content-digest",))),
        created=1_700_000_000,
        keyid=KEY.kid,
        nonce="BwcHBwcHBwcHBwcHBwcHBw",
        tag="tokengate-stream" if streamed else "tokengate",
    )
    assert fast == sign(view, params, KEY)


def test_sign_headers_refuses_what_the_view_refuses() -> None:
    signer = _fixed_signer()
    good = CIMultiDict(_forwarded(body=None))

    def attempt(target: str = "/", headers: CIMultiDict[str] = good, streamed: bool = True) -> None:
        signer.sign_headers(
            method="GET",
            authority="backend.internal",
            target=target,
            headers=headers,
            now=1,
            streamed=streamed,
        )

    attempt()
    with pytest.raises(ValueError, match="origin form"):
        attempt("http://e.com/")
    with pytest.raises(ValueError, match="not signable"):
        attempt("/caf\u00e9")
    with pytest.raises(ValueError, match="not signable"):
        attempt(headers=CIMultiDict([*good.items(), ("Content-Length", "1\r\n")]))
    with pytest.raises(KeyError):
        attempt(headers=CIMultiDict([("Content-Length", "1")]))
    with pytest.raises(ValueError, match="content-digest"):
        attempt(streamed=False)
    hmac_key = LocalSigningKey.hs256(HmacKey(b"k" * 32), KEY.kid)
    with pytest.raises(ValueError, match="Ed25519"):
        _fixed_signer(hmac_key).sign_headers(
            method="GET", authority="b", target="/", headers=good, now=1, streamed=True
        )


# -- interoperability with http_message_signatures ---------------------------------


def _url(target: str = "/api/pay?x=1") -> str:
    return f"http://backend.internal:8080{target}"


def test_our_signature_verifies_with_http_message_signatures() -> None:
    headers = _forwarded()
    signed = UpstreamSigner(signer=lambda: KEY, random_bytes=random_bytes).sign(
        _view(headers), now=time.time(), streamed=False
    )
    message = LibMessage("POST", _url(), dict(headers) | signed.as_dict())
    results = _lib_verifier({KEY.kid: PRIVATE.public_key()}).verify(
        message,
        expect_tag="tokengate",
        require_components=(
            "@method",
            "@authority",
            "@path",
            "@query",
            "tokengate-identity",
            "content-digest",
        ),
        body=BODY,
    )
    assert [r.label for r in results] == ["tokengate"]
    assert results[0].parameters["keyid"] == KEY.kid
    assert results[0].parameters["alg"] == "ed25519"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda m: m.headers.__setitem__("Tokengate-Identity", "eyJhbGciOiJub25lIn0.e30."),
        lambda m: setattr(m, "method", "PUT"),
        lambda m: setattr(m, "url", _url("/api/pay?x=2")),
        lambda m: setattr(m, "url", _url("/api/refund?x=1")),
        lambda m: setattr(m, "url", "http://other.internal:8080/api/pay?x=1"),
        lambda m: m.headers.__setitem__("Content-Digest", content_digest(b"{}")),
    ],
    ids=["identity", "method", "query", "path", "authority", "digest"],
)
def test_http_message_signatures_refuses_a_tampered_request(tamper: object) -> None:
    headers = _forwarded()
    signed = UpstreamSigner(signer=lambda: KEY, random_bytes=random_bytes).sign(
        _view(headers), now=time.time(), streamed=False
    )
    message = LibMessage("POST", _url(), dict(headers) | signed.as_dict())
    assert callable(tamper)
    tamper(message)
    with pytest.raises(InvalidSignature):
        _lib_verifier({KEY.kid: PRIVATE.public_key()}).verify(message)


def test_http_message_signatures_refuses_a_changed_body() -> None:
    headers = _forwarded()
    signed = UpstreamSigner(signer=lambda: KEY, random_bytes=random_bytes).sign(
        _view(headers), now=time.time(), streamed=False
    )
    message = LibMessage("POST", _url(), dict(headers) | signed.as_dict())
    with pytest.raises(InvalidSignature):
        _lib_verifier({KEY.kid: PRIVATE.public_key()}).verify(
            message, body=b'{"card": "4111111111111111"}'
        )


def test_http_message_signatures_refuses_another_key() -> None:
    headers = _forwarded()
    other = LocalSigningKey.ed25519(Ed25519PrivateKey.generate(), kid=KEY.kid)
    signed = UpstreamSigner(signer=lambda: other, random_bytes=random_bytes).sign(
        _view(headers), now=time.time(), streamed=False
    )
    with pytest.raises(InvalidSignature):
        _lib_verifier({KEY.kid: PRIVATE.public_key()}).verify(
            LibMessage("POST", _url(), dict(headers) | signed.as_dict())
        )


def test_a_signature_made_by_http_message_signatures_verifies_with_ours() -> None:
    headers = [h for h in _forwarded() if h[0] != "Content-Digest"]
    message = LibMessage("POST", _url(), dict(headers))
    HTTPMessageSigner(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={"lib-key": PRIVATE}),
    ).sign(
        message,
        key_id="lib-key",
        label="tokengate",
        nonce="n-123",
        tag="tokengate",
        covered_component_ids=("@method", "@authority", "@path", "@query", "tokengate-identity"),
        body=BODY,  # the library adds its own Content-Digest and covers it
    )
    assert "content-digest" in message.headers["Signature-Input"]
    now = time.time()
    verifier = MessageVerifier(
        keys={"lib-key": PRIVATE.public_key()},
        required=(
            "@method",
            "@authority",
            "@path",
            "@query",
            "tokengate-identity",
            "content-digest",
        ),
    )
    got = verifier.verify(
        _view(list(message.headers.items())), now=now, body=BODY, expect_tag="tokengate"
    )
    assert (got.keyid, got.nonce, got.tag) == ("lib-key", "n-123", "tokengate")
    forged = {**message.headers, "Tokengate-Identity": "someone-else"}
    with pytest.raises(Exception, match="invalid request proof"):
        verifier.verify(_view(list(forged.items())), now=now)


@pytest.mark.parametrize(
    "params",
    [
        SignatureParams(components=("@method", "@path"), created=1, keyid="k"),
        SignatureParams(
            components=("@method", "@authority", "@path", "@query", "tokengate-identity"),
            created=1_700_000_000,
            keyid="abc-_DEF",
            nonce="n0nce",
            tag="tokengate-stream",
            expires=1_700_000_060,
        ),
        SignatureParams(components=(), created=5, keyid="k", alg=None),
    ],
)
def test_fast_serialization_equals_the_generic_one(params: SignatureParams) -> None:
    from proxy.proof.structured import serialize_member

    assert params.serialized() == serialize_member(params.inner_list())
