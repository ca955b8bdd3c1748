"""The whole code flow against a real OpenID provider process, and its deny twins."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import trustme

from proxy.auth.jose import json_compact
from proxy.oidc import (
    FlowSealError,
    IdTokenError,
    OidcError,
    OidcProviderError,
    OidcUnavailable,
    safe_return_path,
)
from proxy.oidc.flow_state import FlowState, pkce_challenge
from tests.conftest import free_port
from tests.proxy.oidc.conftest import Rp, authorize, login_query, make_rp
from tests.proxy.oidc.provider import USER, Provider, start_provider


def _expect_user(identity: object) -> None:
    assert identity.sub == USER["sub"]  # type: ignore[attr-defined]
    assert identity.roles == USER["roles"]  # type: ignore[attr-defined]
    assert identity.tenant == USER["tenant"]  # type: ignore[attr-defined]
    assert identity.amr == USER["amr"]  # type: ignore[attr-defined]
    assert identity.acr == USER["acr"]  # type: ignore[attr-defined]
    assert identity.auth_time is not None  # type: ignore[attr-defined]
    assert abs(identity.auth_time - time.time()) < 120  # type: ignore[attr-defined]


def _with(query: str, **changes: str | None) -> str:
    params = dict(parse_qsl(query, keep_blank_values=True))
    for name, value in changes.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
    return urlencode(params)


def _reseal(made: Rp, cookie: str, **changes: str) -> str:
    """Open the sealed flow, change fields, seal again (an attacker who had the key)."""
    flow = FlowState.from_bytes(made.sealer.open(cookie))
    values = {
        "state": flow.state,
        "nonce": flow.nonce,
        "code_verifier": flow.code_verifier,
        "return_to": flow.return_to,
        "redirect_uri": flow.redirect_uri,
        "issuer": flow.issuer,
        "created": flow.created,
        "max_age": flow.max_age,
    }
    values.update(changes)
    return made.sealer.seal(FlowState(**values).to_bytes())  # type: ignore[arg-type]


# -- the allow path ------------------------------------------------------------


async def test_code_flow_maps_the_providers_claims(rp: Rp) -> None:
    query, cookie = await login_query(rp, return_to="/reports?year=2025")
    result = await rp.rp.callback(query=query, cookie=cookie)
    _expect_user(result.identity)
    assert result.return_to == "/reports?year=2025"


async def test_authorization_request_carries_pkce_state_nonce(rp: Rp) -> None:
    begun = await rp.rp.start(origin=rp.provider.origin)
    params = dict(parse_qsl(urlsplit(begun.authorization_url).query))
    flow = FlowState.from_bytes(rp.sealer.open(begun.cookie_value))
    assert params["response_type"] == "code"
    assert params["code_challenge_method"] == "S256"
    assert params["code_challenge"] == pkce_challenge(flow.code_verifier)
    assert params["state"] == flow.state
    assert len(flow.state) >= 43
    assert params["nonce"] == flow.nonce
    assert flow.nonce != flow.state
    assert params["redirect_uri"] == rp.provider.redirect_uri
    assert params["scope"] == "openid profile email"
    assert flow.code_verifier not in begun.authorization_url
    assert flow.code_verifier not in begun.cookie_value


@pytest.mark.parametrize(
    ("alg", "client_auth"),
    [
        ("PS256", "client_secret_basic"),
        ("ES256", "client_secret_post"),
        ("EdDSA", "client_secret_basic"),
    ],
)
async def test_code_flow_with_each_signature_algorithm(
    tmp_path: Path, alg: str, client_auth: str
) -> None:
    op = start_provider(tmp_path, alg=alg, client_auth=client_auth)
    made = make_rp(op)
    try:
        query, cookie = await login_query(made)
        _expect_user((await made.rp.callback(query=query, cookie=cookie)).identity)
    finally:
        await made.rp.aclose()
        op.stop()


async def test_code_flow_refused_when_algorithm_not_configured(tmp_path: Path) -> None:
    op = start_provider(tmp_path, alg="ES256")
    made = make_rp(op, id_token_algorithms=["RS256", "EdDSA"])
    try:
        query, cookie = await login_query(made)
        with pytest.raises(IdTokenError):
            await made.rp.callback(query=query, cookie=cookie)
    finally:
        await made.rp.aclose()
        op.stop()


async def test_open_redirect_in_return_to_becomes_root(rp: Rp) -> None:
    query, cookie = await login_query(rp, return_to="//evil.example/phish")
    assert (await rp.rp.callback(query=query, cookie=cookie)).return_to == "/"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/", "/"),
        ("/a/b?c=d#e", "/a/b?c=d#e"),
        ("/%2F%2Fevil.example", "/%2F%2Fevil.example"),
        (None, "/"),
        ("", "/"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("javascript:alert(1)", "/"),
        ("relative/path", "/"),
        ("/a\r\nSet-Cookie: x=y", "/"),
        ("/a b", "/"),
        ("/" + "a" * 3000, "/"),
    ],
)
def test_safe_return_path(value: str | None, expected: str) -> None:
    assert safe_return_path(value) == expected


# -- state and cookie -----------------------------------------------------------


async def test_wrong_state_refused(rp: Rp) -> None:
    query, cookie = await login_query(rp)
    with pytest.raises(OidcError) as info:
        await rp.rp.callback(query=_with(query, state="A" * 43), cookie=cookie)
    assert info.value.code == "oidc_invalid_state"
    assert info.value.status == 401


async def test_missing_state_refused(rp: Rp) -> None:
    query, cookie = await login_query(rp)
    with pytest.raises(OidcError, match="state mismatch"):
        await rp.rp.callback(query=_with(query, state=None), cookie=cookie)


async def test_cookie_of_another_login_refused(rp: Rp) -> None:
    query, _ = await login_query(rp)
    other = await rp.rp.start(origin=rp.provider.origin)
    with pytest.raises(OidcError, match="state mismatch"):
        await rp.rp.callback(query=query, cookie=other.cookie_value)


async def test_replayed_state_cookie_refused(rp: Rp) -> None:
    query, cookie = await login_query(rp)
    await rp.rp.callback(query=query, cookie=cookie)
    with pytest.raises(OidcError, match="already used") as info:
        await rp.rp.callback(query=query, cookie=cookie)
    assert info.value.code == "oidc_invalid_flow"


async def test_replayed_code_refused_by_provider_even_without_replay_guard(rp: Rp) -> None:
    query, cookie = await login_query(rp)
    await rp.rp.callback(query=query, cookie=cookie)
    # A second worker with the same sealing key whose replay guard never saw the state.
    fresh = make_rp(rp.provider, clock=rp.clock, sealer=rp.sealer)
    try:
        with pytest.raises(OidcProviderError) as info:
            await fresh.rp.callback(query=query, cookie=cookie)
        assert info.value.error == "invalid_grant"
    finally:
        await fresh.rp.aclose()


@pytest.mark.parametrize("position", [3, 10, 40, -2])
async def test_tampered_cookie_refused(rp: Rp, position: int) -> None:
    query, cookie = await login_query(rp)
    chars = list(cookie)
    chars[position] = "B" if chars[position] != "B" else "C"
    with pytest.raises(FlowSealError):
        await rp.rp.callback(query=query, cookie="".join(chars))


@pytest.mark.parametrize("cookie", [None, "", "v1.", "v2.AAAA", "garbage"])
async def test_missing_or_malformed_cookie_refused(rp: Rp, cookie: str | None) -> None:
    query, _ = await login_query(rp)
    with pytest.raises(FlowSealError):
        await rp.rp.callback(query=query, cookie=cookie)


async def test_expired_flow_cookie_refused(rp: Rp) -> None:
    query, cookie = await login_query(rp)
    rp.clock.offset = rp.rp.config.login_timeout + 1
    with pytest.raises(FlowSealError):
        await rp.rp.callback(query=query, cookie=cookie)


async def test_repeated_callback_parameter_refused(rp: Rp) -> None:
    query, cookie = await login_query(rp)
    with pytest.raises(OidcError, match="repeats"):
        await rp.rp.callback(query=query + "&code=other", cookie=cookie)


@pytest.mark.parametrize("iss", [None, "http://127.0.0.1:1", "https://evil.example"])
async def test_callback_iss_must_be_the_issuer_rfc9207(rp: Rp, iss: str | None) -> None:
    query, cookie = await login_query(rp)
    assert dict(parse_qsl(query))["iss"] == rp.provider.issuer
    with pytest.raises(OidcError) as info:
        await rp.rp.callback(query=_with(query, iss=iss), cookie=cookie)
    assert info.value.code == "oidc_invalid_state"


# -- nonce, PKCE, provider errors -------------------------------------------------


async def test_wrong_nonce_refused(rp: Rp) -> None:
    query, cookie = await login_query(rp)
    forged = _reseal(rp, cookie, nonce="n" * 43)
    with pytest.raises(IdTokenError) as info:
        await rp.rp.callback(query=query, cookie=forged)
    assert "nonce" in info.value.reason


async def test_resealed_flow_with_unchanged_fields_is_accepted(rp: Rp) -> None:
    """The twin of the nonce and verifier forgeries: resealing itself breaks nothing."""
    query, cookie = await login_query(rp)
    result = await rp.rp.callback(query=query, cookie=_reseal(rp, cookie))
    _expect_user(result.identity)


async def test_pkce_verifier_mismatch_refused_by_provider(rp: Rp) -> None:
    query, cookie = await login_query(rp)
    forged = _reseal(rp, cookie, code_verifier="v" * 43)
    with pytest.raises(OidcProviderError) as info:
        await rp.rp.callback(query=query, cookie=forged)
    assert info.value.error == "invalid_grant"
    assert info.value.status == 401


async def test_provider_error_callback_prompt_none(rp: Rp) -> None:
    """A real OP error: prompt=none without a provider session answers login_required."""
    begun = await rp.rp.start(origin=rp.provider.origin, prompt="none")
    query = await authorize(rp.provider, begun.authorization_url)
    assert "code" not in dict(parse_qsl(query))
    with pytest.raises(OidcProviderError) as info:
        await rp.rp.callback(query=query, cookie=begun.cookie_value)
    assert info.value.error == "login_required"
    assert info.value.public
    assert str(info.value) == "oidc: provider returned login_required at callback"


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        ("access_denied", "access_denied"),
        ("<script>alert(1)</script>", "unknown"),
        ("access_denied<img src=x>", "unknown"),
    ],
)
async def test_error_text_is_never_echoed(rp: Rp, error: str, shown: str) -> None:
    begun = await rp.rp.start(origin=rp.provider.origin)
    state = dict(parse_qsl(urlsplit(begun.authorization_url).query))["state"]
    query = urlencode(
        {
            "error": error,
            "error_description": "<b>pwned</b>",
            "state": state,
            "iss": rp.provider.issuer,
        }
    )
    with pytest.raises(OidcProviderError) as info:
        await rp.rp.callback(query=query, cookie=begun.cookie_value)
    assert info.value.error == shown
    assert "<" not in str(info.value)
    assert "pwned" not in str(info.value)


async def test_provider_error_with_wrong_state_is_a_state_error(rp: Rp) -> None:
    begun = await rp.rp.start(origin=rp.provider.origin)
    query = urlencode({"error": "access_denied", "state": "x", "iss": rp.provider.issuer})
    with pytest.raises(OidcError) as info:
        await rp.rp.callback(query=query, cookie=begun.cookie_value)
    assert info.value.code == "oidc_invalid_state"


# -- ID token timing -------------------------------------------------------------


async def test_expired_id_token_refused(provider: Provider) -> None:
    made = make_rp(provider, login_timeout="1h")
    try:
        query, cookie = await login_query(made)
        made.clock.offset = 600 + 31  # the fixture's IdToken ttl + more than the leeway
        with pytest.raises(IdTokenError) as info:
            await made.rp.callback(query=query, cookie=cookie)
        assert info.value.reason == "claims: expired"
    finally:
        await made.rp.aclose()


async def test_id_token_within_leeway_accepted(provider: Provider) -> None:
    made = make_rp(provider, login_timeout="1h")
    try:
        query, cookie = await login_query(made)
        made.clock.offset = 600 + 20  # past exp, inside the 30 s leeway
        _expect_user((await made.rp.callback(query=query, cookie=cookie)).identity)
    finally:
        await made.rp.aclose()


async def test_max_age_demands_fresh_authentication(provider: Provider) -> None:
    made = make_rp(provider, login_timeout="1h")
    try:
        query, cookie = await login_query(made, max_age=60)
        made.clock.offset = 120
        with pytest.raises(IdTokenError) as info:
            await made.rp.callback(query=query, cookie=cookie)
        assert "max_age" in info.value.reason
        query, cookie = await login_query(made, max_age=600)
        _expect_user((await made.rp.callback(query=query, cookie=cookie)).identity)
    finally:
        await made.rp.aclose()


# -- the provider itself ----------------------------------------------------------


async def test_jwks_rotation_is_followed(tmp_path: Path) -> None:
    op = start_provider(tmp_path)
    made = make_rp(op)
    try:
        query, cookie = await login_query(made)
        _expect_user((await made.rp.callback(query=query, cookie=cookie)).identity)
        op.rotate()
        # Within the refetch interval an unknown kid does not trigger a refetch...
        made.clock.offset = 5
        query, cookie = await login_query(made)
        with pytest.raises(IdTokenError) as info:
            await made.rp.callback(query=query, cookie=cookie)
        assert info.value.reason == "jwks: no key for kid and alg"
        # ...after it, the new key is fetched and the login succeeds.
        made.clock.offset = made.rp.config.jwks_refetch_interval + 1
        query, cookie = await login_query(made)
        _expect_user((await made.rp.callback(query=query, cookie=cookie)).identity)
        op.rotate()
        made.clock.offset += made.rp.config.jwks_refetch_interval + 1
        query, cookie = await login_query(made)
        _expect_user((await made.rp.callback(query=query, cookie=cookie)).identity)
    finally:
        await made.rp.aclose()
        op.stop()


@pytest.mark.parametrize("spelling", ["{issuer}/", "http://localhost:{port}"])
async def test_discovery_issuer_mismatch_refused(provider: Provider, spelling: str) -> None:
    """The same provider under another spelling of its issuer is refused: exact match only."""
    issuer = spelling.format(issuer=provider.issuer, port=provider.port)
    made = make_rp(provider, issuer=issuer)
    try:
        with pytest.raises(OidcUnavailable, match="issuer does not match") as info:
            await made.rp.start(origin=provider.origin)
        assert info.value.status == 503
    finally:
        await made.rp.aclose()


async def test_provider_unreachable_fails_closed(provider: Provider) -> None:
    made = make_rp(provider, issuer=f"http://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(OidcUnavailable) as info:
            await made.rp.start(origin=provider.origin)
        assert info.value.status == 503
        assert info.value.code == "oidc_unavailable"
    finally:
        await made.rp.aclose()


async def test_provider_down_at_callback_fails_closed(tmp_path: Path) -> None:
    op = start_provider(tmp_path)
    made = make_rp(op)
    try:
        query, cookie = await login_query(made)
        op.stop()
        with pytest.raises(OidcUnavailable) as info:
            await made.rp.callback(query=query, cookie=cookie)
        assert info.value.status == 503
        assert "s3cret" not in str(info.value)
        assert "code" not in str(info.value)
    finally:
        await made.rp.aclose()
        op.stop()


def _tls_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    ca_file, cert_file, key_file = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert_file.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key_file))
    return ca_file, cert_file, key_file


async def test_https_provider_with_configured_ca(tmp_path: Path) -> None:
    op = start_provider(tmp_path, tls=_tls_files(tmp_path))
    made = make_rp(op)
    untrusted = make_rp(op, ca_file=None)
    try:
        query, cookie = await login_query(made)
        _expect_user((await made.rp.callback(query=query, cookie=cookie)).identity)
        with pytest.raises(OidcUnavailable):
            await untrusted.rp.start(origin=op.origin)
    finally:
        await made.rp.aclose()
        await untrusted.rp.aclose()
        op.stop()


def test_flow_state_round_trip_and_refusals() -> None:
    flow = FlowState("s", "n", "v", "/", "https://g/cb", "https://op", 1.0, None)
    assert FlowState.from_bytes(flow.to_bytes()) == flow
    for bad in (b"[]", b"{}", json_compact({"s": "s"}), b"\xff"):
        with pytest.raises(FlowSealError):
            FlowState.from_bytes(bad)


async def test_start_options_reach_the_provider(rp: Rp) -> None:
    begun = await rp.rp.start(
        origin=rp.provider.origin,
        max_age=300,
        acr_values=["urn:tokengate:test:loa2"],
        prompt="login",
    )
    params = dict(parse_qsl(urlsplit(begun.authorization_url).query))
    assert params["max_age"] == "300"
    assert params["acr_values"] == "urn:tokengate:test:loa2"
    assert params["prompt"] == "login"
    assert FlowState.from_bytes(rp.sealer.open(begun.cookie_value)).max_age == 300
    query = await authorize(rp.provider, begun.authorization_url)
    _expect_user((await rp.rp.callback(query=query, cookie=begun.cookie_value)).identity)


@pytest.mark.parametrize(
    "options",
    [
        {"origin": "https://gw.example/path"},
        {"origin": "gw.example"},
        {"origin": "https://user@gw.example"},
        {"origin": "javascript://gw.example"},
        {"prompt": "create"},
        {"acr_values": ["a b"]},
        {"acr_values": ['"']},
        {"max_age": -1},
    ],
)
async def test_start_refuses_bad_options(rp: Rp, options: dict[str, object]) -> None:
    values: dict[str, object] = {"origin": rp.provider.origin, **options}
    with pytest.raises(ValueError, match="oidc: "):
        await rp.rp.start(**values)  # type: ignore[arg-type]
