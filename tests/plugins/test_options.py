"""Shared option parsing: durations, error messages without values, the text of scalars."""

from __future__ import annotations

import re

import pytest

from plugins.base import Scalar
from plugins.options import StrictOptions, as_text, parse_duration, parse_options


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (0, 0.0),
        (90, 90.0),
        (1.5, 1.5),
        ("250ms", 0.25),
        ("30s", 30.0),
        ("15m", 900.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        (" 5 ", 5.0),
        ("1.5m", 90.0),
    ],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "soon", "5 minutes", "-5s", "5w", True, None, [5], -1])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


class _Secretive(StrictOptions):
    replacement: int


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"replacement": "s3cr3t-v4lue"},
            "redact: option 'replacement': Input should be a valid integer",
        ),
        ({"replacement": 1, "s3cr3t-k3y": 2}, "redact: option 's3cr3t-k3y': Extra inputs"),
        ({}, "redact: option 'replacement': Field required"),
        ({"replacement": "x", "y": 1}, "(+1 more)"),
    ],
)
def test_errors_name_the_option_never_the_value(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        parse_options(_Secretive, options, "redact")
    assert message in str(caught.value)
    assert "s3cr3t-v4lue" not in str(caught.value)
    assert caught.value.__cause__ is None  # pydantic's error (with the input) is not chained


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("abc", "abc"),
        ("", ""),
        (42, "42"),
        (-7, "-7"),
        (0, "0"),
        (1.5, None),
        (True, None),
        (None, None),
    ],
)
def test_as_text(value: Scalar, text: str | None) -> None:
    assert as_text(value) == text
