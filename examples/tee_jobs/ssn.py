"""``ssn_check``: whether US Social Security numbers are well formed, as compact JSON verdicts.

Verdict per value (keys sorted, no spaces)::

    {"valid":true}
    {"reason":"area","valid":false}

``NNN-NN-NNNN`` or nine digits; ``reason`` (only when invalid) is the first
rule broken: ``format``, ``area`` (000, 666 or 900-999), ``group`` (00) or
``serial`` (0000). The number never appears in a verdict.
"""

from __future__ import annotations

import json
import re

_SSN = re.compile(r"(\d{3})-(\d{2})-(\d{4})|(\d{3})(\d{2})(\d{4})", re.ASCII)


def verdict(value: str) -> dict[str, object]:
    """The verdict for one value (see the module docstring)."""
    match = _SSN.fullmatch(value.strip())
    if match is None:
        return {"reason": "format", "valid": False}
    parts = [p for p in match.groups() if p is not None]
    area, group, serial = parts
    if area in {"000", "666"} or area.startswith("9"):
        return {"reason": "area", "valid": False}
    if group == "00":
        return {"reason": "group", "valid": False}
    if serial == "0000":
        return {"reason": "serial", "valid": False}
    return {"valid": True}


def ssn_check(values: list[str]) -> list[str]:
    """One compact JSON verdict per value."""
    return [json.dumps(verdict(v), sort_keys=True, separators=(",", ":")) for v in values]
