"""The codec: class checks, and make-then-read for every format."""

from __future__ import annotations

import os

import pytest

from tests.vault.support import StreamRng
from vault.api import ClassSpec, FormatKind, TokenFormat
from vault.codec import check_class, mint, parse
from vault.errors import VaultConfigError
from vault.tokens import IndexVersionError


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (ClassSpec(""), "needs a name"),
        (ClassSpec("email", ttl=0), "ttl must be a positive"),
        (ClassSpec("email", ttl=-5), "ttl must be a positive"),
        (ClassSpec("email", TokenFormat(prefix="Tok")), "token prefix"),
        (ClassSpec("email", TokenFormat(prefix="")), "token prefix"),
        (ClassSpec("email", TokenFormat(prefix="a_b")), "token prefix"),
        (ClassSpec("email", TokenFormat(keep_last=4)), "apply to numeric, pan and ssn only"),
        (ClassSpec("id", TokenFormat(FormatKind.UUID, luhn_valid=True)), "apply to numeric"),
        (ClassSpec("n", TokenFormat(FormatKind.NUMERIC, luhn_valid=True)), "pan format only"),
        (
            ClassSpec("ssn", TokenFormat(FormatKind.SSN, keep_first=4)),
            "class 'ssn': ssn keeps too many",
        ),
        (ClassSpec("pan", TokenFormat(FormatKind.PAN, keep_first=8, keep_last=8)), "at least 4"),
        (ClassSpec("x", TokenFormat(on_mismatch="drop")), "on_mismatch"),  # type: ignore[arg-type]
    ],
)
def test_unworkable_classes_are_refused(spec: ClassSpec, message: str) -> None:
    with pytest.raises(VaultConfigError, match=message):
        check_class(spec)


@pytest.mark.parametrize(
    "spec",
    [
        ClassSpec("email"),
        ClassSpec("email", TokenFormat(prefix="em-2"), ttl=60),
        ClassSpec("id", TokenFormat(FormatKind.UUID)),
        ClassSpec("d", TokenFormat(FormatKind.DETERMINISTIC, prefix="det")),
        ClassSpec(
            "pan", TokenFormat(FormatKind.PAN, keep_first=6, keep_last=4, on_mismatch="opaque")
        ),
        ClassSpec("ssn", TokenFormat(FormatKind.SSN, keep_last=4)),
    ],
)
def test_workable_classes_pass(spec: ClassSpec) -> None:
    check_class(spec)


CASES = [
    (FormatKind.OPAQUE, TokenFormat(), "anything"),
    (FormatKind.DETERMINISTIC, TokenFormat(FormatKind.DETERMINISTIC), "anything"),
    (FormatKind.UUID, TokenFormat(FormatKind.UUID), "anything"),
    (FormatKind.NUMERIC, TokenFormat(FormatKind.NUMERIC), "12345678"),
    (FormatKind.PAN, TokenFormat(FormatKind.PAN, keep_last=4), "4111 1111 1111 1111"),
    (FormatKind.SSN, TokenFormat(FormatKind.SSN), "123-45-6789"),
]


@pytest.mark.parametrize(("kind", "fmt", "value"), CASES, ids=[c[0].value for c in CASES])
def test_mint_then_parse(kind: FormatKind, fmt: TokenFormat, value: str) -> None:
    minted = mint(
        kind, fmt, value, StreamRng(), tagged_version=3, untagged_version=2, convergent=bytes(20)
    )
    parsed = parse(minted.token, fmt, 2)
    assert parsed is not None
    assert parsed.text == minted.token
    assert parsed.kind is kind
    assert parsed.secret == minted.secret
    assert parsed.index_version == minted.index_version
    tagged = kind in (FormatKind.OPAQUE, FormatKind.DETERMINISTIC)
    assert minted.index_version == (3 if tagged else 2)
    assert (minted.secret is None) == (kind in (FormatKind.NUMERIC, FormatKind.PAN, FormatKind.SSN))


def test_deterministic_tokens_come_from_the_convergent_secret() -> None:
    fmt = TokenFormat(FormatKind.DETERMINISTIC)
    a = mint(
        FormatKind.DETERMINISTIC,
        fmt,
        "v",
        os.urandom,
        tagged_version=1,
        untagged_version=1,
        convergent=bytes(20),
    )
    b = mint(
        FormatKind.DETERMINISTIC,
        fmt,
        "v",
        os.urandom,
        tagged_version=1,
        untagged_version=1,
        convergent=bytes(20),
    )
    assert a.token == b.token
    with pytest.raises(ValueError, match="convergent secret"):
        mint(FormatKind.DETERMINISTIC, fmt, "v", os.urandom, tagged_version=1, untagged_version=1)


def test_index_versions_beyond_32_are_refused_for_tagged_tokens() -> None:
    with pytest.raises(IndexVersionError):
        mint(
            FormatKind.OPAQUE, TokenFormat(), "v", os.urandom, tagged_version=33, untagged_version=1
        )


def test_shape_classes_read_opaque_fallback_tokens_only_when_configured() -> None:
    opaque = mint(
        FormatKind.OPAQUE, TokenFormat(), "v", os.urandom, tagged_version=1, untagged_version=1
    )
    with_fallback = TokenFormat(FormatKind.PAN, on_mismatch="opaque")
    parsed = parse(opaque.token, with_fallback, 1)
    assert parsed is not None
    assert parsed.kind is FormatKind.OPAQUE
    assert parse(opaque.token, TokenFormat(FormatKind.PAN), 1) is None  # the deny twin


@pytest.mark.parametrize(
    ("fmt", "token"),
    [
        (TokenFormat(), "tok_"),
        (TokenFormat(), "not a token"),
        (TokenFormat(prefix="abc"), "tok_a" + "a" * 32),
        (TokenFormat(FormatKind.UUID), "tok_a" + "a" * 32),
        (TokenFormat(FormatKind.PAN), "4111"),
        (TokenFormat(FormatKind.SSN), "123-45-678"),
    ],
)
def test_malformed_tokens_parse_to_none(fmt: TokenFormat, token: str) -> None:
    assert parse(token, fmt, 1) is None
