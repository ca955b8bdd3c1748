"""hkdf_sha256: RFC 5869's SHA-256 test cases, and byte-identity with cryptography's HKDF."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given
from hypothesis import strategies as st

from kms_client.hkdf import MAX_LENGTH, hkdf_sha256

# RFC 5869 appendix A.1-A.3 (the SHA-256 cases): ikm, salt (None: not provided), info, L, OKM.
RFC5869 = [
    (
        bytes([0x0B] * 22),
        bytes(range(0x00, 0x0D)),
        bytes(range(0xF0, 0xFA)),
        42,
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
    ),
    (
        bytes(range(0x00, 0x50)),
        bytes(range(0x60, 0xB0)),
        bytes(range(0xB0, 0x100)),
        82,
        "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
        "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
        "cc30c58179ec3e87c14c01d5c1f3434f1d87",
    ),
    (
        bytes([0x0B] * 22),
        None,
        b"",
        42,
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
    ),
]


def reference(ikm: bytes, salt: bytes | None, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=SHA256(), length=length, salt=salt, info=info).derive(ikm)


@pytest.mark.parametrize(("ikm", "salt", "info", "length", "okm"), RFC5869, ids=["A1", "A2", "A3"])
def test_rfc5869_vectors(
    ikm: bytes, salt: bytes | None, info: bytes, length: int, okm: str
) -> None:
    assert hkdf_sha256(ikm, salt=salt, info=info, length=length).hex() == okm
    assert reference(ikm, salt, info, length).hex() == okm  # the vectors are copied right


@pytest.mark.parametrize(("ikm", "salt", "info", "length", "okm"), RFC5869, ids=["A1", "A2", "A3"])
def test_rfc5869_vectors_shortened_to_one_block(
    ikm: bytes, salt: bytes | None, info: bytes, length: int, okm: str
) -> None:
    """HKDF output is a prefix of any longer output: the 32-byte path gives the first block."""
    assert hkdf_sha256(ikm, salt=salt, info=info).hex() == okm[:64]


@given(
    ikm=st.binary(max_size=100),
    salt=st.none() | st.binary(max_size=100),  # longer than the 64-byte HMAC block too
    info=st.binary(max_size=100),
    length=st.integers(1, 32)
    | st.integers(33, 300)
    | st.sampled_from([MAX_LENGTH - 1, MAX_LENGTH]),
)
def test_same_bytes_as_cryptography(
    ikm: bytes, salt: bytes | None, info: bytes, length: int
) -> None:
    assert hkdf_sha256(ikm, salt=salt, info=info, length=length) == reference(
        ikm, salt, info, length
    )


@given(ikm=st.binary(min_size=32, max_size=32), info=st.binary(max_size=40))
def test_no_salt_is_the_empty_salt(ikm: bytes, info: bytes) -> None:
    assert hkdf_sha256(ikm, salt=None, info=info) == hkdf_sha256(ikm, salt=b"", info=info)


def test_different_inputs_give_different_keys() -> None:
    base = hkdf_sha256(b"k" * 32, salt=b"s", info=b"i")
    assert len(base) == 32
    assert hkdf_sha256(b"K" * 32, salt=b"s", info=b"i") != base
    assert hkdf_sha256(b"k" * 32, salt=b"t", info=b"i") != base
    assert hkdf_sha256(b"k" * 32, salt=b"s", info=b"j") != base


@pytest.mark.parametrize("length", [0, -1, MAX_LENGTH + 1])
def test_lengths_outside_rfc5869_are_refused(length: int) -> None:
    with pytest.raises(ValueError, match="hkdf: length must be 1 to 8160 bytes"):
        hkdf_sha256(b"k", salt=None, info=b"", length=length)
