"""TOTP: RFC 6238 / RFC 4226 known answers, the one-step window, the otpauth URI, the QR code."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.auth.totp import (
    TotpAlgorithm,
    TotpParams,
    code_at,
    hotp,
    provisioning_uri,
    qr_svg,
    secret_base32,
    time_step,
    verify,
)

SEEDS = {
    TotpAlgorithm.SHA1: b"12345678901234567890",
    TotpAlgorithm.SHA256: b"12345678901234567890123456789012",
    TotpAlgorithm.SHA512: b"1234567890123456789012345678901234567890123456789012345678901234",
}

# RFC 6238 Appendix B: (unix time, SHA1, SHA256, SHA512), 8 digits, 30 s.
RFC6238 = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]

# RFC 4226 Appendix D: HOTP-SHA1, 6 digits, counters 0..9.
RFC4226 = [
    "755224",
    "287082",
    "359152",
    "969429",
    "338314",
    "254676",
    "287922",
    "162583",
    "399871",
    "520489",
]

SECRET = bytes(range(20))
PARAMS = TotpParams()
NOW = datetime(2030, 1, 1, 12, 0, 15, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@pytest.mark.parametrize(("unix", "sha1", "sha256", "sha512"), RFC6238)
def test_rfc6238_appendix_b(unix: int, sha1: str, sha256: str, sha512: str) -> None:
    for algorithm, expected in zip(TotpAlgorithm, (sha1, sha256, sha512), strict=True):
        params = TotpParams(algorithm=algorithm, digits=8)
        assert code_at(SEEDS[algorithm], at(unix), params=params) == expected
        assert verify(SEEDS[algorithm], expected, now=at(unix), params=params) == unix // 30


@pytest.mark.parametrize(("counter", "expected"), list(enumerate(RFC4226)))
def test_rfc4226_appendix_d(counter: int, expected: str) -> None:
    assert hotp(SEEDS[TotpAlgorithm.SHA1], counter, params=PARAMS) == expected


def test_step_is_floor_of_unix_time_over_period() -> None:
    assert time_step(at(59), period=30) == 1
    assert time_step(at(60), period=30) == 2
    assert time_step(at(1111111109), period=30) == 0x23523EC


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_window_accepts_exactly_one_step_either_side(offset: int) -> None:
    step = time_step(NOW, period=30)
    code = hotp(SECRET, step + offset, params=PARAMS)
    assert verify(SECRET, code, now=NOW, params=PARAMS) == step + offset


@pytest.mark.parametrize("offset", [-3, -2, 2, 3])
def test_window_refuses_two_steps_or_more(offset: int) -> None:
    step = time_step(NOW, period=30)
    code = hotp(SECRET, step + offset, params=PARAMS)
    assert verify(SECRET, code, now=NOW, params=PARAMS) is None


def test_window_edges_follow_step_boundaries() -> None:
    start = at(time_step(NOW, period=30) * 30)  # first second of the current step
    code = code_at(SECRET, start - timedelta(seconds=31), params=PARAMS)  # two steps back
    assert verify(SECRET, code, now=start, params=PARAMS) is None
    code = code_at(SECRET, start - timedelta(seconds=1), params=PARAMS)  # one step back
    assert verify(SECRET, code, now=start, params=PARAMS) is not None


@pytest.mark.parametrize(
    "bad",
    ["", "12345", "1234567", "12345a", " 123456", "\uff11\uff12\uff13\uff14\uff15\uff16", "-12345"],
)
def test_malformed_codes_never_match(bad: str) -> None:
    assert verify(SECRET, bad, now=NOW, params=PARAMS) is None


def test_wrong_secret_refused() -> None:
    code = code_at(SECRET, NOW, params=PARAMS)
    other = bytes(range(1, 21))
    assert verify(SECRET, code, now=NOW, params=PARAMS) is not None
    assert verify(other, code, now=NOW, params=PARAMS) is None


@given(st.binary(min_size=16, max_size=64), st.integers(min_value=30, max_value=2**37))
def test_current_code_always_verifies(secret: bytes, unix: int) -> None:
    now = at(unix)
    code = code_at(secret, now, params=PARAMS)
    assert len(code) == 6
    assert verify(secret, code, now=now, params=PARAMS) is not None


def test_short_secret_and_naive_time_refused() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        code_at(b"x" * 15, NOW, params=PARAMS)
    with pytest.raises(ValueError, match="timezone-aware"):
        code_at(SECRET, datetime(2030, 1, 1), params=PARAMS)


@pytest.mark.parametrize(("digits", "period"), [(5, 30), (9, 30), (6, 10), (6, 300)])
def test_params_validated(digits: int, period: int) -> None:
    with pytest.raises(ValueError, match="totp:"):
        TotpParams(digits=digits, period=period)


def test_provisioning_uri_follows_key_uri_format() -> None:
    params = TotpParams(algorithm=TotpAlgorithm.SHA256, digits=8, period=60)
    uri = provisioning_uri(
        SECRET, issuer="ACME Co & Sons", account="alice@example.com", params=params
    )
    parts = urlsplit(uri)
    assert parts.scheme == "otpauth"
    assert parts.netloc == "totp"
    assert parts.path == "/ACME%20Co%20%26%20Sons:alice%40example.com"
    assert "+" not in uri
    query = parse_qs(parts.query, strict_parsing=True)
    assert query == {
        "secret": [secret_base32(SECRET)],
        "issuer": ["ACME Co & Sons"],
        "algorithm": ["SHA256"],
        "digits": ["8"],
        "period": ["60"],
    }
    issuer, account = parts.path[1:].split(":")
    assert (unquote(issuer), unquote(account)) == ("ACME Co & Sons", "alice@example.com")


def test_secret_base32_is_unpadded_rfc4648() -> None:
    assert secret_base32(b"12345678901234567890") == "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    assert secret_base32(bytes(16)).count("=") == 0


@pytest.mark.parametrize(
    ("issuer", "account"), [("", "a"), ("a", ""), ("a:b", "c"), ("a", "b:c"), ("a\n", "b")]
)
def test_provisioning_uri_refuses_bad_labels(issuer: str, account: str) -> None:
    with pytest.raises(ValueError, match="totp:"):
        provisioning_uri(SECRET, issuer=issuer, account=account, params=PARAMS)


def test_qr_svg_is_a_standalone_svg_document() -> None:
    uri = provisioning_uri(SECRET, issuer="tokengate", account="alice", params=PARAMS)
    svg = qr_svg(uri)
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.find("{http://www.w3.org/2000/svg}path") is not None
    assert (
        qr_svg(provisioning_uri(bytes(20), issuer="tokengate", account="alice", params=PARAMS))
        != svg
    )
