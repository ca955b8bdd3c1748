"""Verification keys: RFC 7638/8037 vectors, PEM and JWKS loading, and their refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from audit.errors import AuditKeyError
from audit.keys import (
    b64url_decode,
    key_from_jwk,
    keys_from_jwks,
    load_jwks,
    load_public_pem,
    public_jwk,
    thumbprint,
)

# RFC 8037 appendix A.1-A.3
RFC_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC_KID = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def rfc_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(b64url_decode(RFC_D))


def test_thumbprint_matches_rfc_8037() -> None:
    assert thumbprint(rfc_key().public_key()) == RFC_KID
    assert public_jwk(rfc_key().public_key()) == {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": RFC_X,
        "kid": RFC_KID,
    }


def test_jwk_with_its_own_kid_or_none_is_accepted() -> None:
    assert (
        thumbprint(key_from_jwk({"kty": "OKP", "crv": "Ed25519", "x": RFC_X, "kid": RFC_KID}))
        == RFC_KID
    )
    assert thumbprint(key_from_jwk({"kty": "OKP", "crv": "Ed25519", "x": RFC_X})) == RFC_KID


@pytest.mark.parametrize(
    ("jwk", "message"),
    [
        (
            {"kty": "OKP", "crv": "Ed25519", "x": RFC_X, "kid": "other"},
            "not its rfc 7638 thumbprint",
        ),
        ({"kty": "OKP", "crv": "Ed25519", "x": RFC_X, "d": RFC_D}, "private key material"),
        ({"kty": "EC", "crv": "P-256", "x": RFC_X}, "not OKP/Ed25519"),
        ({"kty": "OKP", "crv": "X25519", "x": RFC_X}, "not OKP/Ed25519"),
        ({"kty": "OKP", "crv": "Ed25519", "x": RFC_X + "="}, "bad 'x'"),
        ({"kty": "OKP", "crv": "Ed25519", "x": RFC_X[:-2]}, "bad 'x'"),
        ({"kty": "OKP", "crv": "Ed25519"}, "bad 'x'"),
    ],
)
def test_bad_jwks_are_refused(jwk: dict[str, str], message: str) -> None:
    with pytest.raises(AuditKeyError, match=message):
        keys_from_jwks({"keys": [jwk]})
    assert RFC_D not in message


def test_jwks_file_with_several_keys(tmp_path: Path) -> None:
    other = Ed25519PrivateKey.generate().public_key()
    doc = {"keys": [public_jwk(rfc_key().public_key()), public_jwk(other)]}
    (tmp_path / "jwks.json").write_text(json.dumps(doc))
    assert set(load_jwks(tmp_path / "jwks.json")) == {RFC_KID, thumbprint(other)}


@pytest.mark.parametrize("content", ["not json", '{"keys": []}', '{"keys": "x"}', "[1]"])
def test_unusable_jwks_files_are_refused(tmp_path: Path, content: str) -> None:
    (tmp_path / "jwks.json").write_text(content)
    with pytest.raises(AuditKeyError):
        load_jwks(tmp_path / "jwks.json")


def test_pem_public_or_private_gives_the_same_key(tmp_path: Path) -> None:
    key = rfc_key()
    (tmp_path / "pub.pem").write_bytes(
        key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    (tmp_path / "priv.pem").write_bytes(
        key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    )
    assert set(load_public_pem(tmp_path / "pub.pem")) == {RFC_KID}
    assert set(load_public_pem(tmp_path / "priv.pem")) == {RFC_KID}


def test_non_ed25519_or_missing_pem_is_refused(tmp_path: Path) -> None:
    ec = generate_private_key(SECP256R1())
    (tmp_path / "ec.pem").write_bytes(
        ec.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    (tmp_path / "junk.pem").write_bytes(
        b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
    )
    with pytest.raises(AuditKeyError, match="not an ed25519 key"):
        load_public_pem(tmp_path / "ec.pem")
    with pytest.raises(AuditKeyError, match="not a usable pem key"):
        load_public_pem(tmp_path / "junk.pem")
    with pytest.raises(AuditKeyError, match="cannot read"):
        load_public_pem(tmp_path / "missing.pem")
    (tmp_path / "big.pem").write_bytes(b"x" * 70_000)
    with pytest.raises(AuditKeyError, match="too large"):
        load_public_pem(tmp_path / "big.pem")
