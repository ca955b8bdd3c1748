"""The keyring ciphertext format: frozen known-answer vectors, tamper cases, properties."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from kms_client import aead
from kms_client.errors import DecryptionError

VECTORS = json.loads((Path(__file__).parent / "vectors" / "keyring_aead_v1.json").read_text())[
    "vectors"
]
KEY = AESGCM(bytes(range(32)))


@pytest.mark.parametrize("v", VECTORS, ids=[v["name"] for v in VECTORS])
def test_known_answer_vectors_decrypt(v: dict[str, object]) -> None:
    key = AESGCM(bytes.fromhex(str(v["key"])))
    ct = bytes.fromhex(str(v["ciphertext"]))
    plain = aead.decrypt(key, str(v["purpose"]), ct, context=bytes.fromhex(str(v["context"])))
    assert plain == bytes.fromhex(str(v["plaintext"]))
    assert aead.version_of(ct) == v["version"]


@pytest.mark.parametrize("v", VECTORS, ids=[v["name"] for v in VECTORS])
def test_known_answer_vectors_encrypt_identically(v: dict[str, object]) -> None:
    key = AESGCM(bytes.fromhex(str(v["key"])))
    version, purpose = int(str(v["version"])), str(v["purpose"])
    context, nonce = bytes.fromhex(str(v["context"])), bytes.fromhex(str(v["nonce"]))
    plain = bytes.fromhex(str(v["plaintext"]))
    out = aead.encrypt_with_nonce(key, version, purpose, plain, context=context, nonce=nonce)
    assert out.hex() == v["ciphertext"]


@pytest.mark.parametrize("v", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vectors_match_the_documented_layout(v: dict[str, object]) -> None:
    """Rebuild each vector from the layout in the module docstring with raw AES-GCM."""
    version, purpose = int(str(v["version"])), str(v["purpose"])
    context, nonce = bytes.fromhex(str(v["context"])), bytes.fromhex(str(v["nonce"]))
    prefix = struct.pack(">BI", 1, version)
    p = purpose.encode("utf-8")
    aad = prefix + struct.pack(">I", len(p)) + p + struct.pack(">I", len(context)) + context
    raw = AESGCM(bytes.fromhex(str(v["key"]))).encrypt(
        nonce, bytes.fromhex(str(v["plaintext"])), aad
    )
    assert (prefix + nonce + raw).hex() == v["ciphertext"]


def test_roundtrip_and_fresh_nonces() -> None:
    a = aead.encrypt(KEY, 3, "mfa-secrets", b"secret", context=b"c")
    b = aead.encrypt(KEY, 3, "mfa-secrets", b"secret", context=b"c")
    assert a != b
    assert len(a) == len(b"secret") + aead.OVERHEAD
    assert aead.decrypt(KEY, "mfa-secrets", a, context=b"c") == b"secret"


@pytest.mark.parametrize(
    ("purpose", "context", "mutate"),
    [
        ("other", b"c", None),  # wrong purpose
        ("mfa-secrets", b"d", None),  # wrong context
        (
            "mfa-secrets",
            b"c",
            lambda ct: ct[:1] + struct.pack(">I", 4) + ct[5:],
        ),  # relabelled version
        ("mfa-secrets", b"c", lambda ct: b"\x02" + ct[1:]),  # unknown format byte
        ("mfa-secrets", b"c", lambda ct: ct[: aead.OVERHEAD - 1]),  # truncated
        ("mfa-secrets", b"c", lambda ct: ct + b"\x00"),  # extended
        ("mfa-secrets", b"c", lambda ct: b""),  # empty
    ],
)
def test_every_tamper_fails_with_one_opaque_error(purpose, context, mutate) -> None:
    ct = aead.encrypt(KEY, 3, "mfa-secrets", b"secret", context=b"c")
    if mutate is not None:
        ct = mutate(ct)
    with pytest.raises(DecryptionError) as info:
        aead.decrypt(KEY, purpose, ct, context=context)
    assert str(info.value) == "kms: decryption failed"


def test_untampered_twin_decrypts() -> None:
    ct = aead.encrypt(KEY, 3, "mfa-secrets", b"secret", context=b"c")
    assert aead.decrypt(KEY, "mfa-secrets", ct, context=b"c") == b"secret"


@settings(max_examples=200, deadline=None)
@given(
    plaintext=st.binary(max_size=64),
    context=st.binary(max_size=16),
    bit=st.integers(min_value=0),
)
def test_any_flipped_bit_fails(plaintext: bytes, context: bytes, bit: int) -> None:
    ct = bytearray(aead.encrypt(KEY, 9, "tokenize", plaintext, context=context))
    position = bit % (len(ct) * 8)
    ct[position // 8] ^= 1 << (position % 8)
    with pytest.raises(DecryptionError):
        aead.decrypt(KEY, "tokenize", bytes(ct), context=context)


@pytest.mark.parametrize("version", [0, -1, 2**32])
def test_out_of_range_versions_are_refused(version: int) -> None:
    with pytest.raises(ValueError, match="version out of range"):
        aead.prefix(version)


def test_short_nonce_is_refused() -> None:
    with pytest.raises(ValueError, match="12 bytes"):
        aead.encrypt_with_nonce(KEY, 1, "p", b"x", context=b"", nonce=b"\x00" * 8)
