"""Our RFC 9421 verifier: every refusal next to the signature that passes."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kms_client.rng import random_bytes
from proxy.auth.jose import LocalSigningKey
from proxy.proof.digest import content_digest
from proxy.proof.errors import ProofError
from proxy.proof.message_signature import RequestView, SignatureParams, UpstreamSigner, sign
from proxy.proof.signature_verifier import MessageVerifier

PRIVATE = Ed25519PrivateKey.generate()
KEY = LocalSigningKey.ed25519(PRIVATE)
NOW = 1_700_000_000
BODY = b"amount=10"
BASE_HEADERS = [
    ("Host", "app:8000"),
    ("Tokengate-Identity", "eyJ.e30.sig"),
    ("Content-Digest", content_digest(BODY)),
]
ALL = ("@method", "@authority", "@path", "@query", "tokengate-identity", "content-digest")


def _view(
    headers: list[tuple[str, str]], method: str = "POST", target: str = "/pay?to=bob"
) -> RequestView:
    return RequestView.build(
        method=method, authority="app:8000", target=target, headers=headers, scheme="http"
    )


def _signed(key: LocalSigningKey = KEY, **params: object) -> list[tuple[str, str]]:
    options: dict[str, object] = {
        "components": ALL,
        "created": NOW,
        "keyid": key.kid,
        "nonce": "n1",
        "tag": "tokengate",
    }
    options.update(params)
    signed = sign(_view(BASE_HEADERS), SignatureParams(**options), key)  # type: ignore[arg-type]
    return BASE_HEADERS + list(signed.as_dict().items())


def _verifier(**kw: object) -> MessageVerifier:
    options: dict[str, object] = {"keys": {KEY.kid: PRIVATE.public_key()}, "required": ALL}
    options.update(kw)
    return MessageVerifier(**options)  # type: ignore[arg-type]


def _refused(view: RequestView, *, verifier: MessageVerifier | None = None, **kw: object) -> str:
    with pytest.raises(ProofError) as info:
        (verifier or _verifier()).verify(view, now=kw.pop("now", NOW), **kw)  # type: ignore[arg-type]
    assert str(info.value) == "proof: invalid request proof"
    return info.value.reason


def test_valid_signature_passes() -> None:
    got = _verifier().verify(_view(_signed()), now=NOW, body=BODY, expect_tag="tokengate")
    assert got.components == ALL
    assert (got.keyid, got.created, got.nonce, got.tag) == (KEY.kid, NOW, "n1", "tokengate")


def test_created_window() -> None:
    assert _verifier().verify(_view(_signed()), now=NOW + 60)
    assert _verifier().verify(_view(_signed()), now=NOW - 5)
    assert "window" in _refused(_view(_signed()), now=NOW + 61)
    assert "window" in _refused(_view(_signed()), now=NOW - 6)


def test_expires() -> None:
    assert _verifier().verify(_view(_signed(expires=NOW + 10)), now=NOW + 9)
    assert _refused(_view(_signed(expires=NOW + 10)), now=NOW + 10) == "signature: expired"


@pytest.mark.parametrize(
    ("view", "reason"),
    [
        (_view(_signed(), method="GET"), "signature: mismatch"),
        (_view(_signed(), target="/pay?to=mallory"), "signature: mismatch"),
        (_view(_signed(), target="/refund?to=bob"), "signature: mismatch"),
        (
            _view([(n, "x" if n == "Tokengate-Identity" else v) for n, v in _signed()]),
            "signature: mismatch",
        ),
        (
            _view([h for h in _signed() if h[0] != "Tokengate-Identity"]),
            "signature: covered component missing or unsignable",
        ),
        (_view(_signed(components=ALL[:-1])), "signature: a required component is not covered"),
        (_view(_signed(LocalSigningKey.ed25519(PRIVATE, kid="other"))), "signature: unknown keyid"),
        (
            _view(_signed(LocalSigningKey.ed25519(Ed25519PrivateKey.generate(), kid=KEY.kid))),
            "signature: mismatch",
        ),
        (_view(_signed()[:-1]), "signature: fields missing"),
        (_view([h for h in _signed() if h[0] != "Signature-Input"]), "signature: fields missing"),
    ],
    ids=[
        "method",
        "query",
        "path",
        "identity",
        "identity-missing",
        "not-required",
        "keyid",
        "other-key",
        "no-signature",
        "no-input",
    ],
)
def test_refusals(view: RequestView, reason: str) -> None:
    assert _refused(view) == reason


def _replace(headers: list[tuple[str, str]], name: str, value: str) -> list[tuple[str, str]]:
    return [(n, value if n == name else v) for n, v in headers]


@pytest.mark.parametrize(
    ("field", "edit", "reason"),
    [
        ("Signature", lambda v: v.replace("tokengate=", "other="), "signature: label missing"),
        (
            "Signature-Input",
            lambda v: v.replace('alg="ed25519"', 'alg="hmac-sha256"'),
            "signature: keyid or alg unacceptable",
        ),
        ("Signature-Input", lambda v: v + ";extra=1", "signature: unknown parameter"),
        (
            "Signature-Input",
            lambda v: v.replace(f"created={NOW}", f'created="{NOW}"'),
            "signature: created or expires is not an integer",
        ),
        (
            "Signature-Input",
            lambda v: v.replace('"@method"', '"@method";req'),
            "signature: unsupported component identifier",
        ),
        (
            "Signature-Input",
            lambda v: v.replace('"@method"', "@method"),
            "structured: unknown item type",
        ),
        ("Signature-Input", lambda v: v + ", " + v, "structured: duplicate dictionary key"),
        ("Signature", lambda v: v[:-3] + "A=:", "signature: not an ed25519 signature"),
        ("Signature", lambda v: v.replace(v[11:15], "AAAA"), "signature: mismatch"),
        ("Signature-Input", lambda v: v.replace('nonce="n1"', 'nonce="n2"'), "signature: mismatch"),
        (
            "Signature-Input",
            lambda v: v.replace('tag="tokengate"', 'tag="tokengate-stream"'),
            "signature: mismatch",
        ),
    ],
)
def test_header_tampering(field: str, edit: object, reason: str) -> None:
    headers = _signed()
    value = dict(headers)[field]
    assert callable(edit)
    assert _refused(_view(_replace(headers, field, edit(value)))) == reason


def test_body_must_match_the_covered_digest() -> None:
    assert _verifier().verify(_view(_signed()), now=NOW, body=BODY)
    assert _refused(_view(_signed()), body=b"amount=1000") == "digest: mismatch"
    uncovered = _signed(components=ALL[:-1])
    relaxed = _verifier(required=ALL[:-1])
    assert relaxed.verify(_view(uncovered), now=NOW)
    assert (
        _refused(_view(uncovered), verifier=relaxed, body=BODY)
        == "signature: body not covered by a content-digest"
    )


def test_expected_tag() -> None:
    assert _verifier().verify(_view(_signed()), now=NOW, expect_tag="tokengate")
    assert _refused(_view(_signed()), expect_tag="tokengate-stream") == "signature: unexpected tag"


def test_streamed_signature_from_the_upstream_signer() -> None:
    headers = [h for h in BASE_HEADERS if h[0] != "Content-Digest"] + [("Content-Length", "9")]
    signed = UpstreamSigner(signer=lambda: KEY, random_bytes=random_bytes).sign(
        _view(headers), now=NOW, streamed=True
    )
    view = _view(headers + list(signed.as_dict().items()))
    verifier = _verifier(required=(*ALL[:-1], "content-length"))
    assert verifier.verify(view, now=NOW, expect_tag="tokengate-stream").tag == "tokengate-stream"
    assert _refused(view, verifier=verifier, expect_tag="tokengate") == "signature: unexpected tag"
