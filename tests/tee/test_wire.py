"""tee.wire: strict base64url and canonical JSON."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tee.wire import b64d, b64e, canonical_json


@given(st.binary(max_size=200))
def test_b64_round_trip(data: bytes) -> None:
    text = b64e(data)
    assert "=" not in text
    assert b64d(text) == data


@pytest.mark.parametrize(
    "text",
    ["AA==", "A", "AB", "A+B/", "AA AA", "AAA\n", "Zh", 5, None, b"AAAA"],
    ids=[
        "padded",
        "one-char",
        "trailing-bits",
        "std-alphabet",
        "space",
        "newline",
        "trailing-bits-2",
        "int",
        "none",
        "bytes",
    ],
)
def test_b64_refuses_other_spellings(text: object) -> None:
    with pytest.raises(ValueError, match="base64url"):
        b64d(text)


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()
