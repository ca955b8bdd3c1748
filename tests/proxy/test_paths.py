"""unsafe_target: its quick accept agrees with the full rules on every path."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.paths import unsafe_target


def reference(raw_target: str) -> str | None:
    """The rules written out plainly, without the quick accept."""
    path = raw_target.split("?", 1)[0]
    if not path.startswith("/"):
        return "request target must be in origin form"
    lowered = path.lower()
    if any(enc in lowered for enc in ("%2f", "%5c", "%00", "%2e")):
        return "encoded slash, backslash, dot or NUL in path"
    if "\\" in path or "\x00" in path:
        return "backslash or NUL in path"
    if any(segment in (".", "..") for segment in path.split("/")):
        return "dot segment in path"
    return None


@given(st.text(alphabet="/.%2fFeE5cC0a\\\x00?x", max_size=24))
def test_agrees_with_the_plain_rules(tail: str) -> None:
    for target in (tail, "/" + tail):
        assert unsafe_target(target) == reference(target)


@pytest.mark.parametrize(
    "target",
    ["/a/./b", "/a/..", "/..", "/a/%2E%2e/b", "/a%2Fb", "/a\\b", "/a\x00", "a/b", "/%00"],
)
def test_refused(target: str) -> None:
    assert unsafe_target(target) is not None


@pytest.mark.parametrize("target", ["/", "/a/b?x=/../", "/a/.well-known", "/a/b.c/..d", "/a%20b"])
def test_accepted(target: str) -> None:
    assert unsafe_target(target) is None
