"""The wrapped keyring: header binding (name, versions, KWK reference) and tamper cases."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from kms_client import envelope
from kms_client.envelope import Header
from kms_client.errors import KeyringError
from kms_client.keyring import KeyKind, Keyring

KWK = bytes(range(32))
RING = Keyring({}).with_purpose("tokenize", KeyKind.AEAD, now=datetime(2030, 1, 1, tzinfo=UTC))
HEADER = Header("default", 4, 2, b"kwk-ref")


def test_wrap_unwrap_roundtrip() -> None:
    blob = envelope.wrap(RING, HEADER, KWK)
    header = envelope.read_header(blob, name="default")
    assert header == HEADER
    assert envelope.unwrap(blob, header, KWK) == RING


def test_blob_does_not_contain_key_material() -> None:
    blob = envelope.wrap(RING, HEADER, KWK)
    material = RING.ring("tokenize").primary_key.material
    assert material is not None
    assert material.hex().encode() not in blob
    assert material not in blob


def test_other_keyring_name_is_refused_clearly() -> None:
    blob = envelope.wrap(RING, HEADER, KWK)
    with pytest.raises(KeyringError, match="belongs to keyring 'default', not 'prod'"):
        envelope.read_header(blob, name="prod")


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", "other"), ("keyring_version", 5), ("kwk_version", 3), ("kwk_reference", "b3RoZXI=")],
)
def test_relabelled_header_fails_integrity(field: str, value: object) -> None:
    doc = json.loads(envelope.wrap(RING, HEADER, KWK))
    doc[field] = value
    blob = json.dumps(doc).encode()
    header = envelope.read_header(blob, name=str(doc["name"]))
    with pytest.raises(KeyringError, match="failed its integrity check"):
        envelope.unwrap(blob, header, KWK)


def test_wrong_kwk_fails_integrity() -> None:
    blob = envelope.wrap(RING, HEADER, KWK)
    with pytest.raises(KeyringError, match="failed its integrity check"):
        envelope.unwrap(blob, HEADER, bytes(32))


@pytest.mark.parametrize("blob", [b"", b"[]", b"{}", b'{"format": "x"}', b"\xff"])
def test_garbage_is_not_a_wrapped_keyring(blob: bytes) -> None:
    with pytest.raises(KeyringError, match="not a tokengate wrapped keyring"):
        envelope.read_header(blob, name="default")
