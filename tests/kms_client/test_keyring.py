"""The keyring model: states, primaries, lifecycle rules, and its strict codec."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from kms_client import keyring_codec
from kms_client.errors import KeyringError, KeyStateError
from kms_client.keyring import (
    P256_ORDER,
    KeyKind,
    Keyring,
    KeyState,
    KeyVersion,
    PurposeRing,
    RetiredKwk,
    SigningAlgorithm,
)

NOW = datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)


def _ring() -> Keyring:
    return Keyring({}).with_purpose("mfa-secrets", KeyKind.AEAD, now=NOW)


def test_new_purpose_has_active_primary_version_1() -> None:
    ring = _ring().ring("mfa-secrets")
    assert ring.primary == 1
    assert ring.primary_key.state is KeyState.ACTIVE
    assert ring.primary_key.created_at == NOW.replace(microsecond=0)


def test_fresh_keys_are_random_and_32_bytes() -> None:
    a = _ring().ring("mfa-secrets").primary_key.material
    b = _ring().ring("mfa-secrets").primary_key.material
    assert a is not None
    assert len(a) == 32
    assert a != b


def test_rotation_adds_primary_and_demotes_old() -> None:
    keyring, v = _ring().rotated("mfa-secrets", now=NOW + timedelta(days=1))
    ring = keyring.ring("mfa-secrets")
    assert v == 2
    assert ring.primary == 2
    assert [k.state for k in ring.keys] == [KeyState.DECRYPT_ONLY, KeyState.ACTIVE]


def test_revoke_and_destroy_old_versions() -> None:
    keyring, _ = _ring().rotated("mfa-secrets", now=NOW)
    keyring = keyring.revoked("mfa-secrets", 1, now=NOW)
    assert keyring.ring("mfa-secrets").get(1).state is KeyState.REVOKED  # type: ignore[union-attr]
    keyring = keyring.destroyed("mfa-secrets", 1, now=NOW)
    gone = keyring.ring("mfa-secrets").get(1)
    assert gone is not None
    assert gone.state is KeyState.DESTROYED
    assert gone.material is None


@pytest.mark.parametrize(
    ("action", "version", "message"),
    [
        ("revoke", 2, "is the primary; rotate first"),
        ("destroy", 2, "is the primary; rotate first"),
        ("revoke", 9, "has no version 9"),
        ("destroy", 9, "has no version 9"),
    ],
)
def test_forbidden_transitions(action: str, version: int, message: str) -> None:
    keyring, _ = _ring().rotated("mfa-secrets", now=NOW)
    change = keyring.revoked if action == "revoke" else keyring.destroyed
    with pytest.raises(KeyStateError, match=message):
        change("mfa-secrets", version, now=NOW)


def test_double_revoke_and_double_destroy_are_refused() -> None:
    keyring, _ = _ring().rotated("mfa-secrets", now=NOW)
    revoked = keyring.revoked("mfa-secrets", 1, now=NOW)
    with pytest.raises(KeyStateError, match="already revoked"):
        revoked.revoked("mfa-secrets", 1, now=NOW)
    destroyed = revoked.destroyed("mfa-secrets", 1, now=NOW)
    with pytest.raises(KeyStateError, match="already destroyed"):
        destroyed.destroyed("mfa-secrets", 1, now=NOW)


def test_unknown_and_duplicate_purposes() -> None:
    with pytest.raises(KeyStateError, match="unknown purpose 'nope'"):
        _ring().rotated("nope", now=NOW)
    with pytest.raises(KeyStateError, match="already exists"):
        _ring().with_purpose("mfa-secrets", KeyKind.AEAD, now=NOW)


def test_key_invariants_are_checked() -> None:
    with pytest.raises(ValueError, match="only destroyed keys lack material"):
        KeyVersion(1, KeyState.ACTIVE, NOW, NOW, None)
    with pytest.raises(ValueError, match="32 bytes"):
        KeyVersion(1, KeyState.ACTIVE, NOW, NOW, b"short")


def test_codec_roundtrip_is_exact_and_canonical() -> None:
    keyring, _ = _ring().with_purpose("index", KeyKind.PRF, now=NOW).rotated("index", now=NOW)
    keyring = keyring.with_retired_kwks((RetiredKwk(3, b"ref"),))
    data = keyring_codec.encode(keyring)
    assert keyring_codec.decode(data) == keyring
    assert keyring_codec.encode(keyring_codec.decode(data)) == data


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(format="tokengate-keyring/9"),
        lambda d: d.update(extra=1),
        lambda d: d["purposes"]["mfa-secrets"].update(primary=7),
        lambda d: d["purposes"]["mfa-secrets"]["keys"][0].update(state="weird"),
        lambda d: d["purposes"]["mfa-secrets"]["keys"][0].update(material="!!notbase64"),
        lambda d: d["purposes"]["mfa-secrets"]["keys"][0].update(version=True),
        lambda d: d["purposes"]["mfa-secrets"].update(kind="rsa"),
    ],
)
def test_codec_refuses_malformed_content(mutate) -> None:
    doc = json.loads(keyring_codec.encode(_ring()))
    mutate(doc)
    with pytest.raises(KeyringError) as info:
        keyring_codec.decode(json.dumps(doc).encode())
    assert "material" not in str(info.value)


def test_codec_accepts_the_unmodified_twin() -> None:
    doc = json.loads(keyring_codec.encode(_ring()))
    assert keyring_codec.decode(json.dumps(doc).encode()).ring("mfa-secrets").primary == 1


# ---- signing algorithms ----


def _signing(algorithm: SigningAlgorithm | None = None) -> Keyring:
    return Keyring({}).with_purpose(
        "session-signing", KeyKind.SIGNING, now=NOW, algorithm=algorithm
    )


def test_signing_purposes_default_to_eddsa_and_rotation_keeps_the_algorithm() -> None:
    keyring, _ = _signing().rotated("session-signing", now=NOW)
    assert [k.algorithm for k in keyring.ring("session-signing").keys] == [
        SigningAlgorithm.EDDSA,
        SigningAlgorithm.EDDSA,
    ]
    es, _ = _signing(SigningAlgorithm.ES256).rotated("session-signing", now=NOW)
    assert es.ring("session-signing").algorithm is SigningAlgorithm.ES256


def test_rotation_switches_algorithm_only_when_told_and_keeps_old_keys() -> None:
    keyring, v = _signing().rotated("session-signing", now=NOW, algorithm=SigningAlgorithm.ES256)
    ring = keyring.ring("session-signing")
    assert (v, ring.algorithm) == (2, SigningAlgorithm.ES256)
    assert ring.get(1).algorithm is SigningAlgorithm.EDDSA  # type: ignore[union-attr]
    assert ring.get(1).state is KeyState.DECRYPT_ONLY  # type: ignore[union-attr]


def test_es256_material_is_always_a_valid_p256_scalar() -> None:
    for _ in range(50):
        material = _signing(SigningAlgorithm.ES256).ring("session-signing").primary_key.material
        assert material is not None
        assert 0 < int.from_bytes(material, "big") < P256_ORDER


@pytest.mark.parametrize("material", [bytes(32), P256_ORDER.to_bytes(32, "big"), b"\xff" * 32])
def test_es256_key_outside_the_group_order_is_refused(material: bytes) -> None:
    with pytest.raises(ValueError, match="not a P-256 scalar"):
        KeyVersion(1, KeyState.ACTIVE, NOW, NOW, material, SigningAlgorithm.ES256)


def test_es256_key_inside_the_group_order_is_accepted() -> None:
    material = (P256_ORDER - 1).to_bytes(32, "big")
    assert KeyVersion(1, KeyState.ACTIVE, NOW, NOW, material, SigningAlgorithm.ES256).material


def test_only_signing_purposes_take_an_algorithm() -> None:
    with pytest.raises(KeyStateError, match="holds aead keys"):
        Keyring({}).with_purpose("t", KeyKind.AEAD, now=NOW, algorithm=SigningAlgorithm.ES256)
    with pytest.raises(KeyStateError, match="holds aead keys"):
        _ring().rotated("mfa-secrets", now=NOW, algorithm=SigningAlgorithm.EDDSA)
    key = _ring().ring("mfa-secrets").primary_key
    with pytest.raises(ValueError, match="name an algorithm"):
        PurposeRing(
            "mfa-secrets", KeyKind.AEAD, 1, (replace(key, algorithm=SigningAlgorithm.EDDSA),)
        )
    signing = _signing().ring("session-signing")
    with pytest.raises(ValueError, match="name an algorithm"):
        PurposeRing("s", KeyKind.SIGNING, 1, (replace(signing.primary_key, algorithm=None),))
