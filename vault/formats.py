"""Shape-preserving tokens (numeric, pan, ssn): same length and separators as the value.

Rules (documented in docs/tokens.md; pinned by tests/vault/vectors/):
- A value fits its format when it is ASCII digits with separators:
  ``numeric`` 1-64 digits, ``pan`` 12-19 digits, both with optional single
  spaces or hyphens between digits (``[0-9]+([ -][0-9]+)*``); ``ssn`` exactly
  ``ddd-dd-dddd`` or ``ddddddddd``. The token keeps every separator in place.
- ``keep_first`` / ``keep_last`` digits are copied from the value; every other
  digit is random, except the markers below. At least
  :data:`MIN_RANDOM_DIGITS` digits must be random or the value does not fit.
- ``numeric``: when the value's first digit is not ``0`` and is not kept, the
  token's is not ``0`` either (integer columns keep their length).
- ``pan``: the last random digit is chosen so that the token fails the Luhn
  check (never a real card number), or passes it with ``luhn_valid: true``.
- ``ssn``: the token is never a valid-looking SSN: its area starts with ``9``
  (900-999 are never issued) when the first digit is not kept, otherwise its
  group is ``00`` (never issued); a class whose kept digits leave room for
  neither is refused at configuration.
- A token never equals its own value (redrawn), so a token cannot echo it.
- Random digits come from the injected RNG by rejection sampling (unbiased).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from vault.api import FormatKind, TokenFormat
from vault.errors import VaultConfigError

MIN_RANDOM_DIGITS = 4
SHAPED = frozenset({FormatKind.NUMERIC, FormatKind.PAN, FormatKind.SSN})

_DIGITS = "0123456789"
_GROUPED = re.compile(r"[0-9]+(?:[ -][0-9]+)*")
_SSN = re.compile(r"[0-9]{3}-[0-9]{2}-[0-9]{4}|[0-9]{9}")
_DIGIT_RANGE = {FormatKind.NUMERIC: (1, 64), FormatKind.PAN: (12, 19), FormatKind.SSN: (9, 9)}
_SSN_GROUP = (3, 4)  # digit indices of the group number
_DOUBLED = tuple(d * 2 - 9 if d > 4 else d * 2 for d in range(10))  # Luhn's doubled digits

type Rng = Callable[[int], bytes]


@dataclass(frozen=True, slots=True)
class _Layout:
    positions: tuple[int, ...]  # string index of every digit
    free: tuple[int, ...]  # digit indices that are neither kept nor markers
    markers: dict[int, str]  # digit index -> forced digit (ssn)


def check_shaped(fmt: TokenFormat) -> None:
    """Refuse a shape-preserving format that no value could fit (at configuration)."""
    if fmt.keep_first < 0 or fmt.keep_last < 0:
        raise VaultConfigError("vault: keep_first and keep_last cannot be negative")
    if fmt.luhn_valid and fmt.kind is not FormatKind.PAN:
        raise VaultConfigError("vault: luhn_valid applies to the pan format only")
    high = _DIGIT_RANGE[fmt.kind][1]
    markers = _ssn_markers(fmt, high) if fmt.kind is FormatKind.SSN else {}
    if markers is None:
        raise VaultConfigError("vault: ssn keeps too many digits to mark the token invalid")
    if high - fmt.keep_first - fmt.keep_last - len(markers) < MIN_RANDOM_DIGITS:
        raise VaultConfigError(
            f"vault: {fmt.kind.value} keeps too many digits: at least"
            f" {MIN_RANDOM_DIGITS} must be random"
        )


def fits(value: str, fmt: TokenFormat) -> bool:
    """True if ``value`` can get a shape-preserving token of ``fmt``."""
    return _layout(value, fmt) is not None


def looks_shaped(token: str, fmt: TokenFormat) -> bool:
    """True if ``token`` has the shape of ``fmt`` (detokenize: else it is malformed)."""
    return _shape(token, fmt) is not None


def shaped_token(value: str, fmt: TokenFormat, rng: Rng) -> str:
    """A random token in the shape of ``value``; ValueError if the value does not fit."""
    layout = _layout(value, fmt)
    if layout is None:
        raise ValueError("vault: value does not fit the format")
    source = [value[p] for p in layout.positions]
    while True:
        digits = _draw(layout, source, fmt, rng)
        if digits != source:
            break
    out = list(value)
    for p, d in zip(layout.positions, digits, strict=True):
        out[p] = d
    return "".join(out)


def luhn_ok(digits: Sequence[str]) -> bool:
    """The Luhn (mod 10) check of a digit string."""
    return _luhn_total(digits) % 10 == 0


def _draw(layout: _Layout, source: list[str], fmt: TokenFormat, rng: Rng) -> list[str]:
    digits = list(source)
    for i, d in layout.markers.items():
        digits[i] = d
    for i, d in zip(layout.free, _choices(rng, _DIGITS, len(layout.free)), strict=True):
        digits[i] = d
    if fmt.kind is FormatKind.NUMERIC and source[0] != "0" and 0 in layout.free:
        digits[0] = _choices(rng, _DIGITS[1:], 1)[0]
    if fmt.kind is FormatKind.PAN:
        last = layout.free[-1]
        digits[last] = _choices(rng, luhn_options(digits, last, fmt.luhn_valid), 1)[0]
    return digits


def luhn_options(digits: Sequence[str], index: int, valid: bool) -> str:
    """The digits, in order, that put at ``index`` make ``digits`` pass (``valid``) or fail Luhn.

    One pass over the other digits instead of a Luhn check per candidate: a
    ``0`` adds nothing doubled or not, so the sum with ``0`` there plus each
    candidate's own contribution decides.
    """
    trial = list(digits)
    trial[index] = "0"
    rest = _luhn_total(trial)
    contribution = _DOUBLED if (len(digits) - 1 - index) % 2 else range(10)
    return "".join(d for d in _DIGITS if ((rest + contribution[int(d)]) % 10 == 0) == valid)


def _luhn_total(digits: Sequence[str]) -> int:
    total = 0
    for i, c in enumerate(reversed(digits)):
        total += _DOUBLED[int(c)] if i % 2 else int(c)
    return total


def _layout(value: str, fmt: TokenFormat) -> _Layout | None:
    positions = _shape(value, fmt)
    if positions is None:
        return None
    n = len(positions)
    markers = _ssn_markers(fmt, n) if fmt.kind is FormatKind.SSN else {}
    if markers is None:
        return None
    middle = range(fmt.keep_first, n - fmt.keep_last)
    free = tuple(i for i in middle if i not in markers) if markers else tuple(middle)
    if len(free) < MIN_RANDOM_DIGITS:
        return None
    return _Layout(positions, free, markers)


def _shape(text: str, fmt: TokenFormat) -> tuple[int, ...] | None:
    pattern = _SSN if fmt.kind is FormatKind.SSN else _GROUPED
    if pattern.fullmatch(text) is None:
        return None
    separators = text.count(" ") + text.count("-")  # the pattern allows no other non-digit
    if separators:
        positions = tuple(i for i, c in enumerate(text) if c in _DIGITS)
    else:
        positions = tuple(range(len(text)))
    low, high = _DIGIT_RANGE[fmt.kind]
    return positions if low <= len(positions) <= high else None


def _ssn_markers(fmt: TokenFormat, n: int) -> dict[int, str] | None:
    if fmt.keep_first == 0:
        return {0: "9"}
    group_kept = fmt.keep_first > _SSN_GROUP[0] or fmt.keep_last > n - 1 - _SSN_GROUP[1]
    return None if group_kept else dict.fromkeys(_SSN_GROUP, "0")


def _choices(rng: Rng, options: Sequence[str], count: int) -> list[str]:
    """``count`` independent uniform picks from ``options`` by rejection sampling on bytes."""
    k = len(options)
    limit = 256 - 256 % k
    out: list[str] = []
    while len(out) < count:
        out += [options[b % k] for b in rng(count - len(out) + 4) if b < limit]
    return out[:count]
