"""Ed25519CheckpointSigner: RFC 8037 signature vector, key files, permissions, concurrent creation."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from audit import CheckpointSigner, Ed25519CheckpointSigner
from audit.errors import AuditKeyError
from audit.keys import b64url, thumbprint

from .test_keys import RFC_KID, RFC_X, rfc_key

RFC_SIGNING_INPUT = b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
RFC_SIGNATURE = (
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
)


def test_signs_the_rfc_8037_vector() -> None:
    signer: CheckpointSigner = Ed25519CheckpointSigner(rfc_key())
    assert signer.kid == RFC_KID
    assert b64url(signer.sign(RFC_SIGNING_INPUT)) == RFC_SIGNATURE
    assert signer.public_jwk() == {"kty": "OKP", "crv": "Ed25519", "x": RFC_X, "kid": RFC_KID}


def test_repr_names_the_kid_only() -> None:
    assert repr(Ed25519CheckpointSigner(rfc_key())) == f"Ed25519CheckpointSigner(kid='{RFC_KID}')"


def test_load_or_create_makes_a_private_key_file_then_reuses_it(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "audit-checkpoint.pem"
    first = Ed25519CheckpointSigner.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    again = Ed25519CheckpointSigner.load_or_create(path)
    assert again.kid == first.kid == thumbprint(first.public_key())
    assert Ed25519CheckpointSigner.load(path).kid == first.kid
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp files left


def test_concurrent_creators_end_with_one_key(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    kids: list[str] = []
    barrier = threading.Barrier(8)

    def create() -> None:
        barrier.wait()
        kids.append(Ed25519CheckpointSigner.load_or_create(path).kid)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(kids) == 8
    assert set(kids) == {Ed25519CheckpointSigner.load(path).kid}


def test_load_requires_an_existing_file(tmp_path: Path) -> None:
    with pytest.raises(AuditKeyError, match="does not exist"):
        Ed25519CheckpointSigner.load(tmp_path / "missing.pem")
    assert not (tmp_path / "missing.pem").exists()


@pytest.mark.parametrize(
    ("mode", "ok"),
    [(0o600, True), (0o400, True), (0o640, True), (0o604, False), (0o620, False), (0o666, False)],
)
def test_load_refuses_loose_permissions(tmp_path: Path, mode: int, ok: bool) -> None:
    path = tmp_path / "k.pem"
    Ed25519CheckpointSigner.load_or_create(path)
    path.chmod(mode)
    if ok:
        Ed25519CheckpointSigner.load(path)
    else:
        with pytest.raises(AuditKeyError, match="chmod 600"):
            Ed25519CheckpointSigner.load(path)


def test_load_refuses_other_key_types_and_junk(tmp_path: Path) -> None:
    ec = tmp_path / "ec.pem"
    ec.write_bytes(
        generate_private_key(SECP256R1()).private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        )
    )
    ec.chmod(0o600)
    with pytest.raises(AuditKeyError, match="not an ed25519 private key"):
        Ed25519CheckpointSigner.load(ec)
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"hello")
    junk.chmod(0o600)
    with pytest.raises(AuditKeyError, match="not an unencrypted pem key"):
        Ed25519CheckpointSigner.load(junk)
    with pytest.raises(AuditKeyError, match="not a regular file"):
        Ed25519CheckpointSigner.load(tmp_path)
