"""``card_check``: Luhn, brand and BIN of payment card numbers, as compact JSON verdicts.

Verdict per value (keys sorted, no spaces)::

    {"bin":"411111","brand":"visa","length":16,"luhn":true,"valid":true}

- Spaces and dashes are ignored; anything else but digits, or fewer than 12 or
  more than 19 digits, is not a card number:
  ``{"bin":null,"brand":null,"length":0,"luhn":false,"valid":false}``.
- ``bin`` is the first six digits (the issuer prefix, not secret under PCI DSS).
- ``brand`` from the prefix: visa, mastercard, amex, discover, jcb, diners,
  unionpay, or "unknown".
- ``valid`` is true only when the Luhn check passes, the brand is known and the
  length is one that brand issues.

The full number never appears in a verdict.
"""

from __future__ import annotations

import json

# brand -> (prefix ranges as (low, high, digits of prefix), accepted lengths)
_BRANDS: tuple[tuple[str, tuple[tuple[int, int, int], ...], frozenset[int]], ...] = (
    ("amex", ((34, 34, 2), (37, 37, 2)), frozenset({15})),
    ("diners", ((300, 305, 3), (36, 36, 2), (38, 39, 2)), frozenset({14, 16, 19})),
    ("jcb", ((3528, 3589, 4),), frozenset({16, 17, 18, 19})),
    (
        "discover",
        ((6011, 6011, 4), (644, 649, 3), (65, 65, 2), (622126, 622925, 6)),
        frozenset({16, 17, 18, 19}),
    ),
    ("unionpay", ((62, 62, 2),), frozenset({16, 17, 18, 19})),
    ("mastercard", ((51, 55, 2), (2221, 2720, 4)), frozenset({16})),
    ("visa", ((4, 4, 1),), frozenset({13, 16, 19})),
)
_NOT_A_CARD = {"bin": None, "brand": None, "length": 0, "luhn": False, "valid": False}


def luhn(digits: str) -> bool:
    """Whether ``digits`` passes the Luhn (mod 10) check."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def brand(digits: str) -> tuple[str, frozenset[int]]:
    """The card brand for the number's prefix and the lengths it issues."""
    for name, ranges, lengths in _BRANDS:
        for low, high, size in ranges:
            if low <= int(digits[:size]) <= high:
                return name, lengths
    return "unknown", frozenset()


def verdict(value: str) -> dict[str, object]:
    """The verdict for one value (see the module docstring)."""
    digits = value.replace(" ", "").replace("-", "")
    if not (digits.isascii() and digits.isdigit()) or not 12 <= len(digits) <= 19:
        return dict(_NOT_A_CARD)
    name, lengths = brand(digits)
    passes = luhn(digits)
    return {
        "bin": digits[:6],
        "brand": name,
        "length": len(digits),
        "luhn": passes,
        "valid": passes and len(digits) in lengths,
    }


def card_check(values: list[str]) -> list[str]:
    """One compact JSON verdict per card number."""
    return [json.dumps(verdict(v), sort_keys=True, separators=(",", ":")) for v in values]
