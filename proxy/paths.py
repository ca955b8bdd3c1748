"""Refusing request targets that a backend could read differently from the gateway.

Routes match the decoded path while the raw target is forwarded. Both agree
only if the raw target has no dot segments, no encoded slash, backslash or
NUL, and is in origin form. Anything else is a 400: path confusion between a
proxy and its backend is a classic way around route rules.
"""

from __future__ import annotations

_FORBIDDEN_ENCODED = ("%2f", "%5c", "%00", "%2e")


def unsafe_target(raw_target: str) -> str | None:
    """Why the raw request target is refused, or None when it is safe."""
    path = raw_target.split("?", 1)[0]
    if not path.startswith("/"):
        return "request target must be in origin form"
    if "%" not in path and "\\" not in path and "\x00" not in path and "/." not in path:
        # Every refusal below needs one of these: an escape, a backslash, a NUL,
        # or a segment that starts with a dot. Most paths have none.
        return None
    lowered = path.lower()
    if any(enc in lowered for enc in _FORBIDDEN_ENCODED):
        return "encoded slash, backslash, dot or NUL in path"
    if "\\" in path or "\x00" in path:
        return "backslash or NUL in path"
    for segment in path.split("/"):
        if segment in (".", ".."):
            return "dot segment in path"
    return None
