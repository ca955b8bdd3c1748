"""The AES-GCM flow sealer: round trip, every tamper refused, expiry, foreign keys and contexts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.auth.jose import b64url_decode, b64url_encode
from proxy.oidc import AesGcmFlowSealer, FlowSealer, FlowSealError

KEY = bytes(range(32))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_round_trip_and_protocol() -> None:
    sealer: FlowSealer = AesGcmFlowSealer(KEY)
    sealed = sealer.seal(b"flow state")
    assert sealed.startswith("v1.")
    assert b"flow state" not in b64url_decode(sealed[3:])
    assert sealer.open(sealed) == b"flow state"


def test_each_seal_differs() -> None:
    sealer = AesGcmFlowSealer(KEY)
    assert sealer.seal(b"x") != sealer.seal(b"x")


@given(data=st.binary(max_size=512), index=st.integers(min_value=0), bit=st.integers(0, 7))
def test_any_flipped_bit_is_refused(data: bytes, index: int, bit: int) -> None:
    sealer = AesGcmFlowSealer(KEY)
    raw = bytearray(b64url_decode(sealer.seal(data)[3:]))
    raw[index % len(raw)] ^= 1 << bit
    with pytest.raises(FlowSealError):
        sealer.open("v1." + b64url_encode(bytes(raw)))


def test_expiry_with_injected_clock() -> None:
    clock = Clock()
    sealer = AesGcmFlowSealer(KEY, ttl=600, clock=clock)
    sealed = sealer.seal(b"x")
    clock.now += 599
    assert sealer.open(sealed) == b"x"
    clock.now += 1
    with pytest.raises(FlowSealError) as info:
        sealer.open(sealed)
    assert info.value.reason == "sealed: expired"


def test_other_key_or_context_refused() -> None:
    sealed = AesGcmFlowSealer(KEY).seal(b"x")
    with pytest.raises(FlowSealError):
        AesGcmFlowSealer(bytes(32)).open(sealed)
    with pytest.raises(FlowSealError):
        AesGcmFlowSealer(KEY, context=b"tokengate/other/v1").open(sealed)


@pytest.mark.parametrize(
    "value", ["", "v1.", "v1.AAAA", "v2." + "A" * 60, "v1.A=A", "v1.+/+/", "v1." + "A" * 4000, 5]
)
def test_malformed_refused(value: object) -> None:
    with pytest.raises(FlowSealError):
        AesGcmFlowSealer(KEY).open(value)  # type: ignore[arg-type]


def test_error_is_opaque() -> None:
    with pytest.raises(FlowSealError) as info:
        AesGcmFlowSealer(KEY).open("v1.AAAA")
    assert str(info.value) == "oidc: login state not valid"
    assert info.value.status == 401


@pytest.mark.parametrize("key", [b"", bytes(16), bytes(31), bytes(33), "k" * 32])
def test_key_must_be_32_bytes(key: object) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        AesGcmFlowSealer(key)  # type: ignore[arg-type]


def test_generated_keys_are_fresh() -> None:
    assert AesGcmFlowSealer.generate_key() != AesGcmFlowSealer.generate_key()
    assert len(AesGcmFlowSealer.generate_key()) == 32


def test_oversized_state_refused_at_seal() -> None:
    with pytest.raises(ValueError, match="too large"):
        AesGcmFlowSealer(KEY).seal(b"x" * 4000)
