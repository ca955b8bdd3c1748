"""KeyView: usage counting and the GCM hard limit, newer-version detection, verifier order."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given
from hypothesis import strategies as st

from kms_client.config import MAX_NONCE_ENCRYPTIONS
from kms_client.errors import KeyStateError
from kms_client.keyring import KeyKind, Keyring
from kms_client.keyview import KeyView

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def _keyring() -> Keyring:
    ring = Keyring({}).with_purpose("mfa-secrets", KeyKind.AEAD, now=NOW)
    ring = ring.with_purpose("audit-checkpoint", KeyKind.SIGNING, now=NOW)
    ring, _ = ring.rotated("mfa-secrets", now=NOW)
    return ring


def test_usage_is_counted_taken_and_restored_when_not_persisted() -> None:
    view = KeyView(_keyring(), known_usage={})
    for _ in range(3):
        view.encrypt("mfa-secrets", b"x", context=b"")
    taken = view.take_usage()
    assert taken == {("mfa-secrets", 2): 3}
    assert view.take_usage() == {}
    view.record_totals({}, taken)  # the store write failed: keep counting locally
    assert view.known_usage() == {("mfa-secrets", 2): 3}
    view.record_totals({("mfa-secrets", 2): 10}, view.take_usage())
    assert view.known_usage() == {("mfa-secrets", 2): 10}


def test_encryption_refuses_past_the_gcm_limit() -> None:
    view = KeyView(_keyring(), known_usage={("mfa-secrets", 2): MAX_NONCE_ENCRYPTIONS - 1})
    view.encrypt("mfa-secrets", b"last one", context=b"")
    with pytest.raises(KeyStateError, match="is used up; rotate it"):
        view.encrypt("mfa-secrets", b"one too many", context=b"")


@pytest.mark.parametrize(("version", "newer"), [(1, False), (2, False), (3, True), (0, False)])
def test_newer_versions_are_recognised(version: int, newer: bool) -> None:
    view = KeyView(_keyring(), known_usage={})
    assert view.is_newer("mfa-secrets", version) is newer
    assert view.is_newer("unknown-purpose", version) is False


def test_verifiers_primary_first() -> None:
    ring, _ = _keyring().rotated("audit-checkpoint", now=NOW)
    view = KeyView(ring, known_usage={})
    assert [s.version for s in view.verifiers("audit-checkpoint")] == [2, 1]
    assert view.signer("audit-checkpoint").version == 2


def _material(ring: Keyring, purpose: str, version: int) -> bytes:
    material = ring.ring(purpose).keys[version - 1].material
    assert material is not None
    return material


@given(
    salt=st.binary(max_size=80),
    info=st.binary(max_size=80),
    version=st.sampled_from([1, 2]),
    length=st.sampled_from([16, 32, 33, 64, 100]),
)
def test_derive_key_is_hkdf_sha256_of_the_version_named(
    salt: bytes, info: bytes, version: int, length: int
) -> None:
    """The fast HKDF gives exactly what cryptography's HKDF gives (records stay readable)."""
    ring = _keyring()
    view = KeyView(ring, known_usage={})
    derived = view.derive_key("mfa-secrets", salt=salt, info=info, version=version, length=length)
    hkdf = HKDF(algorithm=SHA256(), length=length, salt=salt, info=info)
    assert derived.key == hkdf.derive(_material(ring, "mfa-secrets", version))
    assert derived.version == version
    other = 3 - version
    assert view.derive_key("mfa-secrets", salt=salt, info=info, version=other).key != derived.key


@given(data=st.binary(max_size=200))
def test_hmac_is_hmac_sha256_of_the_primary(data: bytes) -> None:
    ring = Keyring({}).with_purpose("index", KeyKind.PRF, now=NOW)
    ring, _ = ring.rotated("index", now=NOW)
    view = KeyView(ring, known_usage={})
    got = view.hmac("index", data)
    assert got.version == 2
    assert got.digest == hmac.new(_material(ring, "index", 2), data, hashlib.sha256).digest()
    old = view.hmac("index", data, version=1)
    assert old.digest == hmac.new(_material(ring, "index", 1), data, hashlib.sha256).digest()
    assert old.digest != got.digest
