"""Canonical record metadata: one encoding per metadata, strict decoding."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.api import RecordInfo
from vault.record import RECORD_VERSION, MetaError, decode_meta, encode_meta

INFO = RecordInfo("ssn", "opaque", "alice", "acme", 1_900_000_000, 1_900_000_060, RECORD_VERSION)

infos = st.builds(
    RecordInfo,
    field_class=st.text(min_size=1, max_size=20),
    format=st.sampled_from(["opaque", "uuid", "numeric", "pan", "ssn", "deterministic"]),
    owner=st.none() | st.text(max_size=40),
    tenant=st.text(max_size=20),
    created=st.integers(0, 2**40),
    expires=st.none() | st.integers(-(2**63), 2**63 - 1),
    record_version=st.just(RECORD_VERSION),
)


@given(infos)
def test_round_trip(info: RecordInfo) -> None:
    assert decode_meta(encode_meta(info)) == info


@given(infos, infos)
def test_distinct_metadata_has_distinct_bytes(a: RecordInfo, b: RecordInfo) -> None:
    assert (encode_meta(a) == encode_meta(b)) == (a == b)


def test_layout_is_version_then_sorted_length_framed_fields() -> None:
    meta = encode_meta(INFO)
    assert meta[0] == RECORD_VERSION == 1
    expected = (
        b"\x01"
        + b"\x05class\x01\x00\x00\x00\x03ssn"
        + b"\x07created\x02\x00\x00\x00\x08"
        + (1_900_000_000).to_bytes(8, "big")
        + b"\x07expires\x02\x00\x00\x00\x08"
        + (1_900_000_060).to_bytes(8, "big")
        + b"\x06format\x01\x00\x00\x00\x06opaque"
        + b"\x05owner\x01\x00\x00\x00\x05alice"
        + b"\x06tenant\x01\x00\x00\x00\x04acme"
    )
    assert meta == expected


def test_no_owner_and_empty_owner_differ() -> None:
    none = dataclasses.replace(INFO, owner=None, expires=None)
    empty = dataclasses.replace(INFO, owner="", expires=None)
    assert encode_meta(none) != encode_meta(empty)
    assert decode_meta(encode_meta(none)).owner is None
    assert decode_meta(encode_meta(empty)).owner == ""


@given(st.data())
def test_every_truncation_is_refused(data: st.DataObject) -> None:
    meta = encode_meta(INFO)
    cut = data.draw(st.integers(0, len(meta) - 1))
    with pytest.raises(MetaError):
        decode_meta(meta[:cut])


@pytest.mark.parametrize(
    ("meta", "why"),
    [
        (b"\x02" + encode_meta(INFO)[1:], "unknown version"),
        (encode_meta(INFO) + b"\x00", "trailing byte"),
        (encode_meta(INFO).replace(b"\x05owner", b"\x05ownex"), "unknown field"),
        (encode_meta(INFO).replace(b"\x05class\x01", b"\x05class\x02"), "text tagged as integer"),
        (encode_meta(INFO).replace(b"\x07created\x02", b"\x07created\x01"), "integer as text"),
        (
            encode_meta(INFO).replace(
                b"\x06tenant\x01\x00\x00\x00\x04acme", b"\x06tenant\x00\x00\x00\x00\x00"
            ),
            "null tenant",
        ),
        (encode_meta(INFO).replace(b"\x03ssn", b"\x03\xff\xfe\xfd"), "text not utf-8"),
    ],
)
def test_non_canonical_metadata_is_refused(meta: bytes, why: str) -> None:
    with pytest.raises(MetaError):
        decode_meta(meta)


def test_fields_out_of_order_are_refused() -> None:
    meta = encode_meta(INFO)
    owner = b"\x05owner\x01\x00\x00\x00\x05alice"
    fmt = b"\x06format\x01\x00\x00\x00\x06opaque"
    swapped = meta.replace(fmt + owner, owner + fmt)
    assert swapped != meta
    with pytest.raises(MetaError):
        decode_meta(swapped)


@pytest.mark.parametrize("version", [0, 256])
def test_encode_refuses_a_bad_record_version(version: int) -> None:
    with pytest.raises(MetaError):
        encode_meta(dataclasses.replace(INFO, record_version=version))


def test_encode_refuses_out_of_range_integers() -> None:
    with pytest.raises(MetaError):
        encode_meta(dataclasses.replace(INFO, expires=2**63))


@given(infos, st.data())
def test_whatever_decodes_is_the_one_canonical_encoding(
    info: RecordInfo, data: st.DataObject
) -> None:
    """Edited bytes either fail to decode or decode to metadata that encodes to exactly them."""
    meta = bytearray(encode_meta(info))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(meta)))
        edit = data.draw(st.sampled_from(["flip", "insert", "delete", "append"]))
        if edit == "append":
            meta += data.draw(st.binary(min_size=1, max_size=9))
        elif edit == "insert":
            meta[at:at] = data.draw(st.binary(min_size=1, max_size=9))
        elif at < len(meta):
            if edit == "delete":
                del meta[at]
            else:
                meta[at] ^= data.draw(st.integers(1, 255))
    try:
        decoded = decode_meta(bytes(meta))
    except MetaError:
        return
    assert encode_meta(decoded) == bytes(meta)
