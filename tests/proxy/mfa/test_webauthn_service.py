"""WebAuthn through MfaService with a software authenticator: the full py_webauthn path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proxy.mfa.config import MfaConfig
from proxy.mfa.errors import MfaStateError
from proxy.mfa.outcome import MfaOutcome, MfaPassed
from tests.proxy.mfa.conftest import ORIGIN, Harness, build, code, enrol_totp
from tests.proxy.mfa.soft_authenticator import SoftAuthenticator, b64url, unb64url


async def register(h: Harness, auth: SoftAuthenticator, subject: str = "alice") -> None:
    options = await h.service.webauthn_registration_options(
        subject, user_name=f"{subject}@example.com"
    )
    result = await h.service.register_webauthn(subject, auth.create(options))
    assert (result.outcome, result.method) == (MfaOutcome.ENROLLED, "hwk"), result


async def test_register_then_pass(h: Harness) -> None:
    auth = SoftAuthenticator(ORIGIN)
    await register(h, auth)
    assert (await h.service.factors("alice")).webauthn_credentials == 1
    options = await h.service.webauthn_authentication_options("alice")
    result = await h.service.verify_webauthn("alice", auth.get(options))
    assert result.outcome == MfaOutcome.PASSED
    assert result.passed == MfaPassed(
        method="hwk", amr=["hwk", "mfa"], acr="mfa", auth_time=int(h.clock())
    )
    (stored,) = await h.service.webauthn_credentials("alice")
    assert stored.sign_count == 1


async def test_user_handle_is_stable_and_existing_keys_are_excluded(h: Harness) -> None:
    first, second = SoftAuthenticator(ORIGIN), SoftAuthenticator(ORIGIN)
    await register(h, first)
    options = json.loads(await h.service.webauthn_registration_options("alice", user_name="alice"))
    (existing,) = await h.service.webauthn_credentials("alice")
    assert unb64url(options["user"]["id"]) == existing.user_handle
    assert [unb64url(c["id"]) for c in options["excludeCredentials"]] == [existing.credential_id]
    result = await h.service.register_webauthn("alice", second.create(json.dumps(options)))
    assert result.outcome == MfaOutcome.ENROLLED
    assert {c.user_handle for c in await h.service.webauthn_credentials("alice")} == {
        existing.user_handle
    }


async def test_challenge_is_single_use(h: Harness) -> None:
    auth = SoftAuthenticator(ORIGIN)
    await register(h, auth)
    options = await h.service.webauthn_authentication_options("alice")
    response = auth.get(options)
    assert (await h.service.verify_webauthn("alice", response)).outcome == MfaOutcome.PASSED
    replay = await h.service.verify_webauthn("alice", response)
    assert (replay.outcome, replay.reason) == (MfaOutcome.FAILED, "no_challenge")
    await h.service.webauthn_authentication_options(
        "alice"
    )  # a new challenge does not revive the old one
    stale = await h.service.verify_webauthn("alice", response)
    assert (stale.outcome, stale.reason) == (MfaOutcome.FAILED, "invalid_response")
    assert "challenge" in stale.detail


async def test_challenge_expires(h: Harness) -> None:
    auth = SoftAuthenticator(ORIGIN)
    options = await h.service.webauthn_registration_options("alice", user_name="alice")
    h.clock.advance(300)
    result = await h.service.register_webauthn("alice", auth.create(options))
    assert (result.outcome, result.reason) == (MfaOutcome.FAILED, "no_challenge")
    assert await h.service.webauthn_credentials("alice") == []


async def test_counter_regression_refused(h: Harness) -> None:
    auth = SoftAuthenticator(ORIGIN)
    await register(h, auth)
    options = await h.service.webauthn_authentication_options("alice")
    assert (
        await h.service.verify_webauthn("alice", auth.get(options, counter=7))
    ).outcome == MfaOutcome.PASSED
    options = await h.service.webauthn_authentication_options("alice")
    cloned = await h.service.verify_webauthn("alice", auth.get(options, counter=7))
    assert (cloned.outcome, cloned.reason, cloned.passed) == (MfaOutcome.FAILED, "sign_count", None)
    (stored,) = await h.service.webauthn_credentials("alice")
    assert stored.sign_count == 7


@pytest.mark.parametrize(
    "lie",
    [
        {"origin": "https://evil.example.net"},
        {"origin": "https://app.example.com:444"},
        {"rp_id": "evil.example.net"},
    ],
)
async def test_wrong_origin_or_rp_id_refused(h: Harness, lie: dict[str, str]) -> None:
    auth = SoftAuthenticator(ORIGIN)
    options = await h.service.webauthn_registration_options("alice", user_name="alice")
    refused = await h.service.register_webauthn("alice", auth.create(options, **lie))  # type: ignore[arg-type]
    assert (refused.outcome, refused.reason) == (MfaOutcome.FAILED, "invalid_response")
    assert await h.service.webauthn_credentials("alice") == []
    await register(h, auth)
    options = await h.service.webauthn_authentication_options("alice")
    refused = await h.service.verify_webauthn("alice", auth.get(options, **lie))  # type: ignore[arg-type]
    assert (refused.outcome, refused.reason, refused.passed) == (
        MfaOutcome.FAILED,
        "invalid_response",
        None,
    )


async def test_another_users_key_is_refused(h: Harness) -> None:
    alice, bob = SoftAuthenticator(ORIGIN), SoftAuthenticator(ORIGIN)
    await register(h, alice, "alice")
    await register(h, bob, "bob")
    options = json.loads(await h.service.webauthn_authentication_options("alice"))
    (bob_key,) = bob.credentials
    options["allowCredentials"] = [{"id": b64url(bob_key), "type": "public-key"}]
    result = await h.service.verify_webauthn("alice", bob.get(json.dumps(options)))
    assert (result.outcome, result.reason, result.passed) == (
        MfaOutcome.FAILED,
        "unknown_credential",
        None,
    )


async def test_a_registered_credential_cannot_be_claimed_by_another_subject(h: Harness) -> None:
    auth = SoftAuthenticator(ORIGIN)
    await register(h, auth, "alice")
    (alice_key,) = auth.credentials
    options = await h.service.webauthn_registration_options("mallory", user_name="mallory")
    claimed = await h.service.register_webauthn("mallory", auth.create(options, reuse=alice_key))
    assert (claimed.outcome, claimed.reason) == (MfaOutcome.FAILED, "duplicate_credential")
    assert await h.service.webauthn_credentials("mallory") == []


async def test_a_locked_subject_can_still_use_a_key(h: Harness) -> None:
    setup = await enrol_totp(h)
    auth = SoftAuthenticator(ORIGIN)
    await register(h, auth)
    for _ in range(5):
        await h.service.verify_totp("alice", "abcdef")
    assert (await h.service.verify_totp("alice", code(setup, h.clock))).outcome == MfaOutcome.LOCKED
    options = await h.service.webauthn_authentication_options("alice")
    assert (
        await h.service.verify_webauthn("alice", auth.get(options))
    ).outcome == MfaOutcome.PASSED


async def test_remove_key(h: Harness) -> None:
    auth = SoftAuthenticator(ORIGIN)
    await register(h, auth)
    (stored,) = await h.service.webauthn_credentials("alice")
    assert await h.service.remove_webauthn("alice", stored.credential_id)
    with pytest.raises(MfaStateError, match="no webauthn credential"):
        await h.service.webauthn_authentication_options("alice")


async def test_without_webauthn_config(tmp_path: Path) -> None:
    async for h in build(tmp_path, MfaConfig()):
        with pytest.raises(MfaStateError, match="not configured"):
            await h.service.webauthn_registration_options("alice", user_name="alice")
        with pytest.raises(MfaStateError, match="not configured"):
            await h.service.verify_webauthn("alice", "{}")
