"""Content-Type parsing and the body kinds rules read."""

from __future__ import annotations

import pytest

from policy.bodies.errors import Malformed, Unsupported
from policy.bodies.mediatype import body_kind, boundary, parse_media_type


@pytest.mark.parametrize(
    ("text", "essence", "params"),
    [
        ("application/json", "application/json", {}),
        ("Application/JSON; Charset=UTF-8", "application/json", {"charset": "UTF-8"}),
        ("multipart/form-data; boundary=abc", "multipart/form-data", {"boundary": "abc"}),
        ('multipart/form-data; boundary="a b;c"', "multipart/form-data", {"boundary": "a b;c"}),
        ('text/plain;x="a\\"b"', "text/plain", {"x": 'a"b'}),
        ("  text/plain  ;  a=b ", "text/plain", {"a": "b"}),
    ],
)
def test_parse(text: str, essence: str, params: dict[str, str]) -> None:
    media = parse_media_type(text)
    assert (media.essence, media.params) == (essence, params)


@pytest.mark.parametrize(
    "text",
    ["", "json", "application/", "/json", "a/b; c", "a/b; c=", 'a/b; c="x', "a/b; x=1; X=2"],
)
def test_parse_refuses(text: str) -> None:
    with pytest.raises(Malformed):
        parse_media_type(text)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("application/json", "json"),
        ("application/json; charset=utf-8", "json"),
        ("application/json; charset=UTF8", "json"),
        ("application/merge-patch+json", "json"),
        ("application/vnd.api+json", "json"),
        ("application/x-www-form-urlencoded", "urlencoded"),
        ("application/x-www-form-urlencoded; charset=utf-8", "urlencoded"),
        ("multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW", "multipart"),
        ("text/plain", None),
        ("application/xml", None),
        ("multipart/mixed; boundary=x", None),
        ("application/jsonx", None),
        ("text/json", None),
    ],
)
def test_body_kind(text: str, kind: str | None) -> None:
    assert body_kind(parse_media_type(text)) == kind


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("application/json; charset=latin-1", Unsupported),
        ("application/x-www-form-urlencoded; charset=iso-8859-1", Unsupported),
        ("multipart/form-data", Malformed),
        ("multipart/form-data; boundary=", Malformed),
        ('multipart/form-data; boundary="ends with space "', Malformed),
        ("multipart/form-data; boundary=" + "x" * 71, Malformed),
    ],
)
def test_body_kind_refuses(text: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        body_kind(parse_media_type(text))


def test_boundary_of_seventy_characters() -> None:
    assert boundary(parse_media_type("multipart/form-data; boundary=" + "x" * 70)) == b"x" * 70
