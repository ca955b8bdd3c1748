"""Reading helpers: header lines as a document and reframing a changed body."""

from __future__ import annotations

import pytest

from policy.reading import HeaderLines, reframe


def test_header_lines_select_replace_remove() -> None:
    lines = HeaderLines((("X-A", "1"), ("Accept", "*/*"), ("x-a", "2")))
    assert lines.select("x-a") == [(0, "1"), (2, "2")]
    lines.replace(0, "t")
    lines.remove(2)
    assert lines.changed
    assert lines.result() == (("X-A", "t"), ("Accept", "*/*"))
    assert lines.select("x-a") == [(0, "t")]


@pytest.mark.parametrize("value", ["a\rb", "a\nb", "a\x00b"])
def test_header_lines_refuse_values_that_would_split_a_header(value: str) -> None:
    lines = HeaderLines((("X-A", "1"),))
    with pytest.raises(ValueError, match="not a header value"):
        lines.replace(0, value)
    assert lines.result() == (("X-A", "1"),)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ((("Content-Length", "3"), ("A", "1")), (("A", "1"), ("Content-Length", "9"))),
        ((("Transfer-Encoding", "chunked"),), (("Content-Length", "9"),)),
        ((("content-length", "3"), ("Content-Length", "3")), (("Content-Length", "9"),)),
        ((), (("Content-Length", "9"),)),
    ],
)
def test_reframe_sets_one_content_length_and_drops_transfer_encoding(
    headers: tuple[tuple[str, str], ...], expected: tuple[tuple[str, str], ...]
) -> None:
    assert reframe(headers, 9) == expected
