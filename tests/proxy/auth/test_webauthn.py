"""WebAuthn wrapper: full py_webauthn verification against a software authenticator."""

from __future__ import annotations

import json
import os

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from proxy.auth.errors import AuthError
from proxy.auth.webauthn import (
    RelyingParty,
    SignCountRegression,
    StoredCredential,
    WebAuthnError,
    authentication_options,
    credential_id_of,
    registration_options,
    verify_authentication,
    verify_registration,
)
from tests.proxy.mfa.soft_authenticator import SoftAuthenticator, b64url, unb64url

ORIGIN = "https://app.example.com"
RP = RelyingParty(rp_id="example.com", name="Example", origins=(ORIGIN,))


def register(auth: SoftAuthenticator, rp: RelyingParty = RP) -> tuple[StoredCredential, str]:
    challenge, handle = os.urandom(32), os.urandom(32)
    options = registration_options(rp, user_handle=handle, user_name="alice", challenge=challenge)
    new = verify_registration(rp, auth.create(options), challenge=challenge)
    stored = StoredCredential(new.credential_id, new.public_key, new.sign_count, handle)
    return stored, options


def assertion_for(stored: StoredCredential) -> tuple[bytes, str]:
    challenge = os.urandom(32)
    return challenge, authentication_options(RP, challenge=challenge, allow=[stored.credential_id])


def test_registration_options_shape() -> None:
    challenge, handle = os.urandom(32), os.urandom(32)
    options = json.loads(
        registration_options(
            RP, user_handle=handle, user_name="alice", challenge=challenge, exclude=[b"x" * 16]
        )
    )
    assert options["rp"] == {"id": "example.com", "name": "Example"}
    assert unb64url(options["challenge"]) == challenge
    assert unb64url(options["user"]["id"]) == handle
    assert options["attestation"] == "none"
    assert options["authenticatorSelection"]["userVerification"] == "preferred"
    assert options["authenticatorSelection"]["residentKey"] == "discouraged"
    assert [p["alg"] for p in options["pubKeyCredParams"]] == [-7, -8, -257]
    assert options["excludeCredentials"] == [{"id": b64url(b"x" * 16), "type": "public-key"}]


def test_register_then_authenticate() -> None:
    auth = SoftAuthenticator(ORIGIN)
    stored, _ = register(auth)
    assert stored.sign_count == 0
    challenge, options = assertion_for(stored)
    assert json.loads(options)["userVerification"] == "preferred"
    response = auth.get(options)
    assert credential_id_of(response) == stored.credential_id
    result = verify_authentication(RP, response, challenge=challenge, credential=stored)
    assert result.credential_id == stored.credential_id
    assert result.new_sign_count == 1
    assert result.user_verified


def test_registration_reports_what_the_authenticator_said() -> None:
    auth = SoftAuthenticator(ORIGIN, user_verified=False)
    challenge, handle = os.urandom(32), os.urandom(32)
    options = registration_options(RP, user_handle=handle, user_name="alice", challenge=challenge)
    new = verify_registration(RP, auth.create(options), challenge=challenge)
    assert new.aaguid == "00112233-4455-6677-8899-aabbccddeeff"
    assert not new.user_verified
    assert not new.backed_up


@pytest.mark.parametrize(
    ("lie", "reason"),
    [
        ({"origin": "https://evil.example.net"}, "origin"),
        ({"origin": "http://app.example.com"}, "origin"),
        ({"rp_id": "evil.example.net"}, "RP ID hash"),
        ({"challenge": b"c" * 32}, "challenge"),
        ({"type_": "webauthn.get"}, "client data type"),
        ({"user_present": False}, "User presence"),
    ],
)
def test_registration_refused_when_the_response_lies(lie: dict[str, object], reason: str) -> None:
    auth = SoftAuthenticator(ORIGIN)
    challenge = os.urandom(32)
    options = registration_options(
        RP, user_handle=os.urandom(32), user_name="alice", challenge=challenge
    )
    response = auth.create(options, **lie)  # type: ignore[arg-type]
    with pytest.raises(WebAuthnError) as info:
        verify_registration(RP, response, challenge=challenge)
    assert str(info.value) == "webauthn: verification failed"
    assert reason in info.value.reason
    assert isinstance(info.value, AuthError)
    assert info.value.status == 401


def test_registration_requiring_uv_refuses_unverified() -> None:
    strict = RelyingParty(
        rp_id="example.com", name="Example", origins=(ORIGIN,), require_user_verification=True
    )
    challenge = os.urandom(32)
    options = registration_options(
        strict, user_handle=os.urandom(32), user_name="alice", challenge=challenge
    )
    assert json.loads(options)["authenticatorSelection"]["userVerification"] == "required"
    verify_registration(strict, SoftAuthenticator(ORIGIN).create(options), challenge=challenge)
    with pytest.raises(WebAuthnError):
        verify_registration(
            strict,
            SoftAuthenticator(ORIGIN, user_verified=False).create(options),
            challenge=challenge,
        )


@pytest.mark.parametrize(
    ("lie", "reason"),
    [
        ({"origin": "https://evil.example.net"}, "origin"),
        ({"rp_id": "evil.example.net"}, "RP ID hash"),
        ({"challenge": b"c" * 32}, "challenge"),
        ({"type_": "webauthn.create"}, "client data type"),
        ({"sign_with": ec.generate_private_key(ec.SECP256R1())}, "signature"),
        ({"user_handle": b"u" * 32}, "user handle"),
    ],
)
def test_authentication_refused_when_the_response_lies(lie: dict[str, object], reason: str) -> None:
    auth = SoftAuthenticator(ORIGIN)
    stored, _ = register(auth)
    challenge, options = assertion_for(stored)
    verify_authentication(RP, auth.get(options), challenge=challenge, credential=stored)
    stored = StoredCredential(stored.credential_id, stored.public_key, 1, stored.user_handle)
    challenge, options = assertion_for(stored)
    with pytest.raises(WebAuthnError) as info:
        verify_authentication(RP, auth.get(options, **lie), challenge=challenge, credential=stored)  # type: ignore[arg-type]
    assert reason in info.value.reason
    assert str(info.value) == "webauthn: verification failed"


def test_another_credential_is_refused() -> None:
    auth = SoftAuthenticator(ORIGIN)
    stored, _ = register(auth)
    other, _ = register(auth)
    challenge, options = assertion_for(stored)
    response = auth.get(options, credential_id=other.credential_id)
    with pytest.raises(WebAuthnError) as info:
        verify_authentication(RP, response, challenge=challenge, credential=stored)
    assert "credential id" in info.value.reason


@pytest.mark.parametrize(("stored_count", "sent"), [(5, 5), (5, 4), (5, 0), (1, 0)])
def test_counter_regression_refused(stored_count: int, sent: int) -> None:
    auth = SoftAuthenticator(ORIGIN)
    stored, _ = register(auth)
    stored = StoredCredential(
        stored.credential_id, stored.public_key, stored_count, stored.user_handle
    )
    challenge, options = assertion_for(stored)
    with pytest.raises(SignCountRegression, match="verification failed") as info:
        verify_authentication(
            RP, auth.get(options, counter=sent), challenge=challenge, credential=stored
        )
    assert "sign count" in info.value.reason
    challenge, options = assertion_for(stored)
    result = verify_authentication(
        RP, auth.get(options, counter=stored_count + 1), challenge=challenge, credential=stored
    )
    assert result.new_sign_count == stored_count + 1


def test_forged_assertion_with_old_counter_is_not_a_regression_signal() -> None:
    auth = SoftAuthenticator(ORIGIN)
    stored, _ = register(auth)
    stored = StoredCredential(stored.credential_id, stored.public_key, 5, stored.user_handle)
    challenge, options = assertion_for(stored)
    forged = auth.get(options, counter=3, sign_with=ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(WebAuthnError) as info:
        verify_authentication(RP, forged, challenge=challenge, credential=stored)
    assert not isinstance(info.value, SignCountRegression)
    assert "signature" in info.value.reason


def test_authenticators_without_a_counter_stay_at_zero() -> None:
    auth = SoftAuthenticator(ORIGIN, counter_step=0)
    stored, _ = register(auth)
    challenge, options = assertion_for(stored)
    assert (
        verify_authentication(
            RP, auth.get(options), challenge=challenge, credential=stored
        ).new_sign_count
        == 0
    )


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "{}",
        "[]",
        '{"id": 1}',
        "not json",
        json.dumps({"id": "a", "rawId": "a", "response": {}}),
    ],
)
def test_malformed_responses_are_one_opaque_error(garbage: str) -> None:
    stored = StoredCredential(b"c" * 32, b"k", 0, b"u" * 32)
    with pytest.raises(WebAuthnError):
        verify_registration(RP, garbage, challenge=b"c" * 32)
    with pytest.raises(WebAuthnError):
        verify_authentication(RP, garbage, challenge=b"c" * 32, credential=stored)
    with pytest.raises(WebAuthnError):
        credential_id_of(garbage)


def test_several_origins_and_subdomains() -> None:
    rp = RelyingParty(
        rp_id="example.com", name="Example", origins=(ORIGIN, "https://example.com:8443")
    )
    for origin in rp.origins:
        stored, _ = register(SoftAuthenticator(origin), rp)
        assert stored.credential_id


@pytest.mark.parametrize(
    ("rp_id", "origins"),
    [
        ("example.com", ()),
        ("example.com", ("http://app.example.com",)),
        ("example.com", ("https://example.com.evil.net",)),
        ("example.com", ("https://notexample.com",)),
        ("example.com", ("https://app.example.com/path",)),
        ("example.com", ("https://App.example.com",)),
        ("Example.com", ("https://example.com",)),
        ("", ("https://example.com",)),
    ],
)
def test_relying_party_config_refused(rp_id: str, origins: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="webauthn:"):
        RelyingParty(rp_id=rp_id, name="Example", origins=origins)


def test_localhost_may_use_http() -> None:
    rp = RelyingParty(rp_id="localhost", name="Dev", origins=("http://localhost:8080",))
    stored, _ = register(SoftAuthenticator("http://localhost:8080"), rp)
    assert stored.sign_count == 0


def test_challenge_and_handle_sizes_enforced() -> None:
    with pytest.raises(ValueError, match="challenge"):
        registration_options(RP, user_handle=os.urandom(32), user_name="a", challenge=b"short")
    with pytest.raises(ValueError, match="user handle"):
        registration_options(RP, user_handle=b"alice", user_name="a", challenge=os.urandom(32))
    with pytest.raises(ValueError, match="no credentials"):
        authentication_options(RP, challenge=os.urandom(32), allow=[])
