"""Record crypto: round trip, and every tampering refused with one opaque error."""

from __future__ import annotations

import dataclasses
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kms_client.errors import Sealed
from kms_client.keyring import KeyState
from tests.vault.support import (
    design_inner_value,
    design_outer_body,
    fixed_keys,
    fixed_material,
)
from vault.api import RecordInfo
from vault.crypto import (
    DATA_KEY_BYTES,
    RecordRefused,
    convergent_secret,
    open_record,
    record_id,
    rewrap,
    seal,
)
from vault.record import RECORD_VERSION, decode_meta, encode_meta
from vault.store import StoredRecord

KEYS = fixed_keys()
SECRET = bytes(range(20))
RID = record_id(KEYS, 1, "tok_example")
INFO = RecordInfo("email", "opaque", "alice", "acme", 1_900_000_000, 1_900_003_600, RECORD_VERSION)


def sealed(value: str = "alice@example.com", secret: bytes | None = SECRET) -> StoredRecord:
    return seal(KEYS, os.urandom, rid=RID, info=INFO, value=value, secret=secret)


def refused(
    record: StoredRecord, *, secret: bytes | None = SECRET, field_class: str = "email"
) -> bool:
    try:
        open_record(KEYS, record, field_class=field_class, secret=secret)
    except RecordRefused:
        return True
    return False


@given(value=st.text(max_size=200), carried=st.booleans())
def test_round_trip(value: str, carried: bool) -> None:
    record = sealed(value, None if carried else SECRET)
    assert record.id == RID
    assert record.key_version == 1
    assert decode_meta(record.meta) == INFO
    assert record.expires == INFO.expires
    assert (
        open_record(KEYS, record, field_class="email", secret=None if carried else SECRET) == value
    )


def test_layers_follow_the_design_formulas() -> None:
    record = sealed("4111 1111 1111 1111", None)
    body = design_outer_body(fixed_material("tokenize", 1), record)
    data_key, inner = body[:DATA_KEY_BYTES], body[DATA_KEY_BYTES:]
    assert design_inner_value(data_key, "email", RID, inner) == "4111 1111 1111 1111"
    opaque = sealed("x")
    inner = design_outer_body(fixed_material("tokenize", 1), opaque)
    assert design_inner_value(SECRET, "email", RID, inner) == "x"


def test_record_id_is_the_index_hmac() -> None:
    import hashlib
    import hmac

    expected = hmac.new(fixed_material("index", 1), b"tok_example", hashlib.sha256).digest()
    assert expected == RID


def test_convergent_secret_frames_tenant_class_and_value() -> None:
    a = convergent_secret(KEYS, "ab", "c", "v")
    assert len(a) == 20
    assert a != convergent_secret(KEYS, "a", "bc", "v")  # length framing
    assert a != convergent_secret(KEYS, "ab", "cv", "")
    assert a == convergent_secret(KEYS, "ab", "c", "v")


@given(
    part=st.sampled_from(["outer", "meta", "id"]),
    carried=st.booleans(),
    index=st.integers(min_value=0),
    bit=st.integers(0, 7),
)
def test_any_flipped_bit_is_refused(part: str, carried: bool, index: int, bit: int) -> None:
    secret = None if carried else SECRET
    record = sealed("123-45-6789", secret)
    parts = {"outer": record.outer, "meta": record.meta, "id": record.id}
    data = bytearray(parts[part])
    data[index % len(data)] ^= 1 << bit
    parts[part] = bytes(data)
    flipped = StoredRecord(
        parts["id"], record.key_version, parts["outer"], parts["meta"], record.expires
    )
    assert refused(flipped, secret=secret)


@given(st.binary(min_size=32, max_size=32))
def test_a_record_moved_to_another_id_is_refused(other: bytes) -> None:
    record = sealed("v", None)
    if other != RID:
        assert refused(dataclasses.replace(record, id=other), secret=None)


@pytest.mark.parametrize(
    "edit",
    [
        {"owner": "mallory"},
        {"owner": None},
        {"tenant": "other"},
        {"expires": INFO.expires + 86_400},  # type: ignore[operator]
        {"expires": None},
        {"created": INFO.created + 1},
        {"field_class": "ssn"},
        {"format": "pan"},
    ],
)
@pytest.mark.parametrize("carried", [False, True])
def test_edited_metadata_is_refused(edit: dict[str, object], carried: bool) -> None:
    secret = None if carried else SECRET
    record = sealed("v", secret)
    edited = encode_meta(dataclasses.replace(INFO, **edit))  # type: ignore[arg-type]
    assert refused(dataclasses.replace(record, meta=edited), secret=secret)
    assert not refused(record, secret=secret)  # the twin: unedited opens


def test_wrong_secret_or_class_is_refused() -> None:
    record = sealed()
    assert refused(record, secret=bytes(20))
    assert refused(record, field_class="ssn")
    assert refused(record, secret=None)


def test_decryption_uses_exactly_the_named_version() -> None:
    keys2 = fixed_keys(tokenize=2)
    record = seal(keys2, os.urandom, rid=RID, info=INFO, value="v", secret=SECRET)
    assert record.key_version == 2
    assert open_record(keys2, record, field_class="email", secret=SECRET) == "v"
    with pytest.raises(RecordRefused):
        open_record(
            keys2, dataclasses.replace(record, key_version=1), field_class="email", secret=SECRET
        )
    with pytest.raises(RecordRefused):  # a version this keyring does not have
        open_record(KEYS, record, field_class="email", secret=SECRET)


@pytest.mark.parametrize("state", [KeyState.REVOKED, KeyState.DESTROYED])
def test_revoked_and_destroyed_versions_refuse(state: KeyState) -> None:
    record = sealed()
    keys = fixed_keys(tokenize=2, states={("tokenize", 1): state})
    with pytest.raises(RecordRefused):
        open_record(keys, record, field_class="email", secret=SECRET)
    decrypt_only = fixed_keys(tokenize=2, states={("tokenize", 1): KeyState.DECRYPT_ONLY})
    assert (
        open_record(decrypt_only, record, field_class="email", secret=SECRET) == "alice@example.com"
    )


@pytest.mark.parametrize("carried", [False, True])
def test_rewrap_moves_outer_to_the_primary_and_keeps_inner(carried: bool) -> None:
    secret = None if carried else SECRET
    old = sealed("v", secret)
    keys2 = fixed_keys(tokenize=2)
    new = rewrap(keys2, old, os.urandom)
    assert (new.id, new.meta, new.expires, new.key_version) == (old.id, old.meta, old.expires, 2)
    assert new.outer != old.outer
    assert design_outer_body(fixed_material("tokenize", 2), new) == design_outer_body(
        fixed_material("tokenize", 1), old
    )
    assert open_record(keys2, new, field_class="email", secret=secret) == "v"


def test_rewrap_refuses_records_it_cannot_open() -> None:
    keys = fixed_keys(tokenize=2, states={("tokenize", 1): KeyState.REVOKED})
    with pytest.raises(RecordRefused):
        rewrap(keys, sealed(), os.urandom)
    tampered = dataclasses.replace(sealed(), meta=encode_meta(dataclasses.replace(INFO, owner="x")))
    with pytest.raises(RecordRefused):
        rewrap(fixed_keys(tokenize=2), tampered, os.urandom)


def test_sealed_keyring_propagates() -> None:
    from kms_client.access import KeyAccess

    with pytest.raises(Sealed):
        open_record(KeyAccess(), sealed(), field_class="email", secret=SECRET)


def test_refusal_says_nothing() -> None:
    with pytest.raises(RecordRefused) as info:
        open_record(KEYS, sealed("secret-value"), field_class="email", secret=bytes(20))
    assert str(info.value) == "vault: record refused"
