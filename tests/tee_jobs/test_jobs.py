"""examples/tee_jobs: the demo bundle's verdicts, loaded the way the worker loads them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tee.bundle import load_bundle

BUNDLE = load_bundle(Path(__file__).resolve().parents[2] / "examples" / "tee_jobs")


def card(value: str) -> dict[str, object]:
    [out] = BUNDLE.jobs["card_check"]([value])
    assert out == json.dumps(json.loads(out), sort_keys=True, separators=(",", ":"))
    return dict(json.loads(out))


@pytest.mark.parametrize(
    ("number", "brand"),
    [
        ("4111111111111111", "visa"),
        ("4111 1111 1111 1111", "visa"),
        ("4111-1111-1111-1111", "visa"),
        ("5555555555554444", "mastercard"),
        ("2223003122003222", "mastercard"),
        ("378282246310005", "amex"),
        ("6011111111111117", "discover"),
        ("3530111333300000", "jcb"),
        ("30569309025904", "diners"),
        ("6200000000000005", "unionpay"),
    ],
    ids=lambda v: v.replace(" ", "_"),
)
def test_valid_cards(number: str, brand: str) -> None:
    digits = number.replace(" ", "").replace("-", "")
    assert card(number) == {
        "bin": digits[:6],
        "brand": brand,
        "length": len(digits),
        "luhn": True,
        "valid": True,
    }


@pytest.mark.parametrize(
    ("number", "luhn", "brand"),
    [
        ("4111111111111112", False, "visa"),  # Luhn fails
        ("41111111111111", False, "visa"),  # 14 digits: Visa does not issue it
        ("9111111111111111", None, "unknown"),
        ("378282246310005 ", True, "amex"),  # trailing space ignored; still valid
    ],
    ids=["luhn", "visa-length", "unknown-brand", "trailing-space"],
)
def test_other_cards(number: str, luhn: bool | None, brand: str) -> None:
    got = card(number)
    assert got["brand"] == brand
    if luhn is not None:
        assert got["luhn"] is luhn
    assert got["valid"] is (number.strip() == "378282246310005")


@pytest.mark.parametrize(
    "value",
    ["", "abc", "4111a11111111111", "12345678901", "1" * 20, "\uff14" + "\uff11" * 15],
    ids=["empty", "letters", "mixed", "too-short", "too-long", "fullwidth-digits"],
)
def test_not_card_numbers(value: str) -> None:
    assert card(value) == {"bin": None, "brand": None, "length": 0, "luhn": False, "valid": False}


def test_a_verdict_never_carries_the_number() -> None:
    out = BUNDLE.jobs["card_check"](["4111111111111111", "378282246310005"])
    assert len(out) == 2
    assert all("4111111111111111" not in o and "378282246310005" not in o for o in out)


@pytest.mark.parametrize(
    ("value", "verdict"),
    [
        ("123-45-6789", {"valid": True}),
        ("123456789", {"valid": True}),
        ("000-12-3456", {"reason": "area", "valid": False}),
        ("666-12-3456", {"reason": "area", "valid": False}),
        ("900-12-3456", {"reason": "area", "valid": False}),
        ("123-00-6789", {"reason": "group", "valid": False}),
        ("123-45-0000", {"reason": "serial", "valid": False}),
        ("123-456789", {"reason": "format", "valid": False}),
        ("12-345-6789", {"reason": "format", "valid": False}),
        ("", {"reason": "format", "valid": False}),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_ssn_check(value: str, verdict: dict[str, object]) -> None:
    [out] = BUNDLE.jobs["ssn_check"]([value])
    assert json.loads(out) == verdict
    assert out == json.dumps(verdict, sort_keys=True, separators=(",", ":"))
