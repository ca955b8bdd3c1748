"""Multipart form bodies: fields transformed, file parts byte-for-byte untouched."""

from __future__ import annotations

import email.parser
import email.policy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policy.bodies.errors import Malformed
from policy.bodies.multipart import FILE, MultipartDocument

B = b"----WebKitFormBoundaryX3b"
FILE_BYTES = b"\x89PNG\r\n\x1a\n\x00\xff\r\n--not-the-boundary\r\n" + bytes(range(256))


def field(name: str, value: bytes, extra: bytes = b"") -> bytes:
    return (
        b'Content-Disposition: form-data; name="'
        + name.encode()
        + b'"\r\n'
        + extra
        + b"\r\n"
        + value
    )


def file_part(name: str, data: bytes) -> bytes:
    return (
        b'Content-Disposition: form-data; name="' + name.encode() + b'"; filename="a.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + data
    )


def body(*parts: bytes, preamble: bytes = b"", epilogue: bytes = b"\r\n") -> bytes:
    out = preamble + (b"\r\n" if preamble else b"")
    for i, part in enumerate(parts):
        out += (b"\r\n" if i else b"") + b"--" + B + b"\r\n" + part
    return out + b"\r\n--" + B + b"--" + epilogue


SAMPLE = body(
    field("name", b"Ada"),
    field("ssn", b"123-45-6789"),
    file_part("avatar", FILE_BYTES),
    field("ssn", "second \u20ac".encode()),
    preamble=b"ignored preamble",
)


def parse_with_email(data: bytes) -> list[tuple[str, bytes]]:
    """An independent parser: the stdlib email package reads what we wrote."""
    header = b"Content-Type: multipart/form-data; boundary=" + B + b"\r\n\r\n"
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(header + data)
    return [
        (
            str(part.get_param("name", header="content-disposition")),
            bytes(part.get_payload(decode=True)),
        )
        for part in msg.iter_parts()
    ]


def test_select_fields_and_files() -> None:
    doc = MultipartDocument(SAMPLE, B)
    assert doc.select("ssn") == [(1, "123-45-6789"), (3, "second \u20ac")]
    assert doc.select("avatar") == [(2, FILE)]
    assert doc.select("missing") == []


def test_untouched_body_is_identical() -> None:
    doc = MultipartDocument(SAMPLE, B)
    assert doc.encode_body() == SAMPLE
    assert not doc.changed


def test_replace_and_remove_keep_file_bytes_and_boundary() -> None:
    doc = MultipartDocument(SAMPLE, B)
    doc.replace(1, "tok_abc")
    doc.remove(3)
    out = doc.encode_body()
    assert doc.changed
    assert FILE_BYTES in out
    assert out.startswith(b"ignored preamble\r\n--" + B + b"\r\n")
    parsed = parse_with_email(out)
    assert [name for name, _ in parsed] == ["name", "ssn", "avatar"]
    assert parsed[1][1] == b"tok_abc"
    assert parsed[2][1] == FILE_BYTES


def test_removing_the_first_part_keeps_a_valid_body() -> None:
    doc = MultipartDocument(body(field("ssn", b"1"), field("b", b"2")), B)
    doc.remove(0)
    assert parse_with_email(doc.encode_body()) == [("b", b"2")]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"no delimiter at all", "no delimiter"),
        (b"--" + B + b"\r\n" + field("a", b"1"), "no closing delimiter"),
        (b"--" + B + b"junk\r\n" + field("a", b"1") + b"\r\n--" + B + b"--", "delimiter line"),
        (body(b'Content-Disposition: form-data; name="a"\r\nno blank line'), "end of headers"),
        (body(b"\r\nvalue without headers"), "no content-disposition"),
        (body(b'Content-Disposition: attachment; name="a"\r\n\r\nv'), "not form-data"),
        (body(b"Content-Disposition: form-data\r\n\r\nv"), "no name"),
        (body(b'Content-Disposition: form-data; name=""\r\n\r\nv'), "no name"),
        (body(b'Content-Disposition: form-data; name="a"; name="b"\r\n\r\nv'), "ambiguous"),
        (body(b"Content-Disposition: form-data; name*=UTF-8''a\r\n\r\nv"), "ambiguous"),
        (body(b'Content-Disposition: form-data; name="a\\"; x="b"\r\n\r\nv'), "ambiguous"),
        (body(field("a", b"v", b"X-A: 1\r\nX-A: 2\r\n")), "repeats a header"),
        (body(field("a", b"v", b"no colon here\r\n")), "header is malformed"),
        (body(field("a", b"v", b"X-A: 1\r\n folded\r\n")), "header is malformed"),
        (body(b'Content-Disposition: form-data; name="a"; junk\r\n\r\nv'), "malformed"),
    ],
)
def test_malformed(data: bytes, reason: str) -> None:
    with pytest.raises(Malformed, match=reason):
        MultipartDocument(data, B)


@pytest.mark.parametrize(
    ("extra", "value", "reason"),
    [
        (b"Content-Transfer-Encoding: base64\r\n", b"MTIz", "transfer header"),
        (b"Content-Length: 3\r\n", b"123", "transfer header"),
        (b"", b"\xff\xfe", "not utf-8"),
    ],
)
def test_fields_a_rule_cannot_read_are_malformed_when_selected(
    extra: bytes, value: bytes, reason: str
) -> None:
    doc = MultipartDocument(body(field("ssn", value, extra), field("other", b"ok")), B)
    assert doc.select("other") == [(1, "ok")]
    with pytest.raises(Malformed, match=reason):
        doc.select("ssn")


def test_file_with_non_utf8_bytes_and_filename_star_is_a_file() -> None:
    part = b"Content-Disposition: form-data; name=\"doc\"; filename*=UTF-8''r%C3%A9.bin\r\n\r\n\xff"
    doc = MultipartDocument(body(part), B)
    assert doc.select("doc") == [(0, FILE)]


def test_empty_form_is_valid() -> None:
    data = b"--" + B + b"--\r\n"
    doc = MultipartDocument(data, B)
    assert doc.select("a") == []
    assert doc.encode_body() == data


@given(st.binary(max_size=300), st.text(max_size=20))
def test_file_bytes_never_change(data: bytes, value: str) -> None:
    if b"\r\n--" + B in data or data.startswith(b"--" + B):
        return
    original = body(field("ssn", b"1"), file_part("f", data))
    doc = MultipartDocument(original, B)
    assert doc.encode_body() == original
    doc.replace(0, value)
    out = doc.encode_body()
    assert out.endswith(file_part("f", data) + b"\r\n--" + B + b"--\r\n")
    assert MultipartDocument(out, B).select("ssn") == [(0, value)]
