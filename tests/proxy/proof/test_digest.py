"""RFC 9530 Content-Digest: known answers, multiple algorithms, tampering."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.proof.digest import content_digest, verify_content_digest
from proxy.proof.errors import ProofError

# RFC 9530 appendix B (content `{"hello": "world"}` plus LF) and RFC 9421's
# examples (the same JSON without LF); the empty content of a HEAD response.
HELLO_LF = b'{"hello": "world"}\n'
HELLO = b'{"hello": "world"}'
SHA256_LF = "sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:"
SHA512_LF = "sha-512=:YMAam51Jz/jOATT6/zvHrLVgOYTGFy1d6GJiOHTohq4yP+pgk4vf2aCsyRZOtw8MjkM7iw7yZ/WkppmM44T3qg==:"
SHA256 = "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
SHA512 = "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:"
EMPTY = "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"


@pytest.mark.parametrize(
    ("body", "algorithms", "header"),
    [
        (HELLO_LF, ("sha-256",), SHA256_LF),
        (HELLO_LF, ("sha-512",), SHA512_LF),
        (HELLO_LF, ("sha-256", "sha-512"), f"{SHA256_LF}, {SHA512_LF}"),
        (HELLO, ("sha-256",), SHA256),
        (HELLO, ("sha-512",), SHA512),
        (b"", ("sha-256",), EMPTY),
    ],
)
def test_known_answers(body: bytes, algorithms: tuple[str, ...], header: str) -> None:
    assert content_digest(body, algorithms) == header
    verify_content_digest(header, body)


@pytest.mark.parametrize(
    "header",
    [
        f"{SHA256_LF}, {SHA512_LF}",
        f"{SHA512_LF},{SHA256_LF}",
        f"md5=:AAAA:, {SHA256_LF}",
        f"{SHA256_LF}, unixsum=:AAAA:",
        f"{SHA256_LF};p=1",
    ],
)
def test_several_algorithms_all_accepted_ones_checked(header: str) -> None:
    verify_content_digest(header, HELLO_LF)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (SHA256, "digest: mismatch"),
        (f"{SHA256_LF}, {SHA512}", "digest: mismatch"),
        (f"{SHA512}, {SHA256_LF}", "digest: mismatch"),
        ("md5=:WhUAq1l9DG0Ozwjl0bOKlg==:", "digest: no accepted algorithm"),
        ("sha=:AAAA:, unixsum=:AAAA:", "digest: no accepted algorithm"),
        ("sha-256=1", "digest: value is not a byte sequence"),
        (
            'sha-256="RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg="',
            "digest: value is not a byte sequence",
        ),
        ("SHA-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:", "structured: invalid key"),
        (f"{SHA256_LF}, {SHA256_LF}", "structured: duplicate dictionary key"),
        ("", "digest: no accepted algorithm"),
    ],
)
def test_bad_digests_fail(header: str, reason: str) -> None:
    with pytest.raises(ProofError) as info:
        verify_content_digest(header, HELLO_LF)
    assert info.value.reason == reason


def test_caller_can_narrow_to_sha512() -> None:
    verify_content_digest(SHA512_LF, HELLO_LF, accepted=frozenset({"sha-512"}))
    with pytest.raises(ProofError):
        verify_content_digest(SHA256_LF, HELLO_LF, accepted=frozenset({"sha-512"}))


@pytest.mark.parametrize("algorithms", [(), ("md5",), ("sha-256", "sha-1")])
def test_only_sha2_can_be_produced(algorithms: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="sha-256"):
        content_digest(b"x", algorithms)
    with pytest.raises(ValueError, match="sha-256"):
        verify_content_digest(SHA256, HELLO, accepted=frozenset(algorithms))


@given(st.binary(max_size=64), st.data())
def test_any_changed_body_fails(body: bytes, data: st.DataObject) -> None:
    header = content_digest(body)
    verify_content_digest(header, body)
    changed = data.draw(st.binary(max_size=64).filter(lambda b: b != body))
    with pytest.raises(ProofError):
        verify_content_digest(header, changed)
