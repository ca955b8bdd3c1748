"""TOTP through MfaService: enrolment, one-step window, replay, lockout, secrets at rest."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from proxy.auth.totp import TotpParams, provisioning_uri
from proxy.mfa.errors import MfaStateError
from proxy.mfa.outcome import MfaOutcome, MfaPassed
from proxy.mfa.totp_flow import PURPOSE, secret_context
from tests.proxy.mfa.conftest import Harness, code, enrol_totp, secret_of, step_now


async def test_begin_gives_uri_qr_and_secret_once(h: Harness) -> None:
    setup = await h.service.begin_totp("alice", account="alice@example.com")
    secret = secret_of(setup)
    assert len(secret) == 20
    assert setup.uri == provisioning_uri(
        secret, issuer="Example", account="alice@example.com", params=TotpParams()
    )
    assert parse_qs(urlsplit(setup.uri).query)["secret"] == [setup.secret]
    assert setup.qr_svg.startswith("<svg")
    assert setup.expires_at == h.clock() + 600
    assert h.keys.encryptions == [(PURPOSE, secret_context("alice"))]
    for text in (repr(setup), repr(await h.store.get_totp("alice", pending=True))):
        assert setup.secret not in text


async def test_pending_enrolment_is_not_a_factor_until_confirmed(h: Harness) -> None:
    setup = await h.service.begin_totp("alice", account="alice")
    result = await h.service.verify_totp("alice", code(setup, h.clock))
    assert (result.outcome, result.reason) == (MfaOutcome.FAILED, "not_enrolled")
    assert not (await h.service.factors("alice")).totp
    confirmed = await h.service.confirm_totp("alice", code(setup, h.clock))
    assert (confirmed.outcome, confirmed.method, confirmed.passed) == (
        MfaOutcome.ENROLLED,
        "otp",
        None,
    )
    assert (await h.service.factors("alice")).totp


async def test_confirm_refusals(h: Harness) -> None:
    assert (await h.service.confirm_totp("alice", "123456")).reason == "not_pending"
    setup = await h.service.begin_totp("alice", account="alice")
    wrong = str((int(code(setup, h.clock)) + 1) % 1_000_000).zfill(6)
    assert (await h.service.confirm_totp("alice", wrong)).reason == "bad_code"
    h.clock.advance(600)
    late = await h.service.confirm_totp("alice", code(setup, h.clock))
    assert (late.outcome, late.reason) == (MfaOutcome.FAILED, "expired")


async def test_confirming_code_cannot_be_replayed_to_pass(h: Harness) -> None:
    setup = await h.service.begin_totp("alice", account="alice")
    first = code(setup, h.clock)
    assert (await h.service.confirm_totp("alice", first)).outcome == MfaOutcome.ENROLLED
    again = await h.service.verify_totp("alice", first)
    assert (again.outcome, again.reason) == (MfaOutcome.REPLAYED, "replayed")


async def test_pass_yields_the_session_upgrade(h: Harness) -> None:
    setup = await enrol_totp(h)
    result = await h.service.verify_totp("alice", code(setup, h.clock))
    assert result.outcome == MfaOutcome.PASSED
    assert result.passed == MfaPassed(
        method="otp", amr=["otp", "mfa"], acr="mfa", auth_time=int(h.clock())
    )
    assert "alice" not in repr(result)


@pytest.mark.parametrize("offset", [-1, 0, 1])
async def test_window_one_step_either_side_passes(h: Harness, offset: int) -> None:
    setup = await enrol_totp(h)
    result = await h.service.verify_totp("alice", code(setup, h.clock, offset))
    assert result.outcome == MfaOutcome.PASSED


@pytest.mark.parametrize("offset", [-2, 2])
async def test_window_two_steps_away_fails(h: Harness, offset: int) -> None:
    setup = await enrol_totp(h)
    result = await h.service.verify_totp("alice", code(setup, h.clock, offset))
    assert (result.outcome, result.reason, result.failures) == (MfaOutcome.FAILED, "bad_code", 1)


async def test_spaces_in_a_code_are_ignored(h: Harness) -> None:
    setup = await enrol_totp(h)
    typed = code(setup, h.clock)
    assert (
        await h.service.verify_totp("alice", f" {typed[:3]} {typed[3:]} ")
    ).outcome == MfaOutcome.PASSED


async def test_replayed_code_refused(h: Harness) -> None:
    setup = await enrol_totp(h)
    typed = code(setup, h.clock)
    assert (await h.service.verify_totp("alice", typed)).outcome == MfaOutcome.PASSED
    replay = await h.service.verify_totp("alice", typed)
    assert (replay.outcome, replay.reason, replay.passed) == (MfaOutcome.REPLAYED, "replayed", None)
    h.clock.advance(30)  # still inside the window one step later
    assert (await h.service.verify_totp("alice", typed)).outcome == MfaOutcome.REPLAYED


async def test_older_code_after_a_newer_one_is_refused(h: Harness) -> None:
    setup = await enrol_totp(h)
    assert (
        await h.service.verify_totp("alice", code(setup, h.clock, 0))
    ).outcome == MfaOutcome.PASSED
    older = await h.service.verify_totp("alice", code(setup, h.clock, -1))
    assert older.outcome == MfaOutcome.REPLAYED


async def test_replay_guard_in_the_session_store_is_consulted(h: Harness) -> None:
    setup = await enrol_totp(h)
    step = step_now(h.clock)
    assert await h.guard.first_use("totp", "alice:" + str(step), 120, now=h.clock())
    # the step is marked by another replica: refused here although our record never saw it
    assert (
        await h.service.verify_totp("alice", code(setup, h.clock))
    ).outcome == MfaOutcome.REPLAYED


async def test_brute_force_locks_and_right_code_is_refused_while_locked(h: Harness) -> None:
    setup = await enrol_totp(h)
    right = code(setup, h.clock)
    wrong = str((int(right) + 500_000) % 1_000_000).zfill(6)
    outcomes = [await h.service.verify_totp("alice", wrong) for _ in range(5)]
    assert [r.outcome for r in outcomes] == [MfaOutcome.FAILED] * 4 + [MfaOutcome.LOCKED]
    assert [r.failures for r in outcomes] == [1, 2, 3, 4, 5]
    assert outcomes[-1].locked_until == h.clock() + 900
    locked = await h.service.verify_totp("alice", right)
    assert (locked.outcome, locked.reason, locked.passed) == (MfaOutcome.LOCKED, "locked", None)
    h.clock.advance(899)
    assert (await h.service.verify_totp("alice", code(setup, h.clock))).outcome == MfaOutcome.LOCKED
    h.clock.advance(1)
    assert (await h.service.verify_totp("alice", code(setup, h.clock))).outcome == MfaOutcome.PASSED


async def test_lock_is_per_subject(h: Harness) -> None:
    alice, bob = await enrol_totp(h, "alice"), await enrol_totp(h, "bob")
    for _ in range(5):
        await h.service.verify_totp(
            "alice", "000000" if code(alice, h.clock) != "000000" else "111111"
        )
    assert (await h.service.verify_totp("alice", code(alice, h.clock))).outcome == MfaOutcome.LOCKED
    assert (await h.service.verify_totp("bob", code(bob, h.clock))).outcome == MfaOutcome.PASSED


async def test_pass_clears_failures_and_window_expires(h: Harness) -> None:
    setup = await enrol_totp(h)
    bad = "000000" if code(setup, h.clock) != "000000" else "111111"
    for _ in range(4):
        await h.service.verify_totp("alice", bad)
    assert (await h.service.verify_totp("alice", code(setup, h.clock))).outcome == MfaOutcome.PASSED
    h.clock.advance(30)
    bad = "000000" if code(setup, h.clock) != "000000" else "111111"
    assert (await h.service.verify_totp("alice", bad)).failures == 1
    h.clock.advance(901)
    bad = "000000" if code(setup, h.clock) != "000000" else "111111"
    assert (await h.service.verify_totp("alice", bad)).failures == 1


async def test_operator_unlock(h: Harness) -> None:
    setup = await enrol_totp(h)
    for _ in range(5):
        await h.service.verify_totp("alice", "abcdef")
    assert (await h.service.verify_totp("alice", code(setup, h.clock))).outcome == MfaOutcome.LOCKED
    await h.service.unlock("alice")
    assert (await h.service.verify_totp("alice", code(setup, h.clock))).outcome == MfaOutcome.PASSED


async def test_reenrolment_keeps_the_old_secret_until_the_new_one_is_confirmed(h: Harness) -> None:
    old = await enrol_totp(h)
    new = await h.service.begin_totp("alice", account="alice")
    assert (await h.service.verify_totp("alice", code(old, h.clock))).outcome == MfaOutcome.PASSED
    h.clock.advance(30)
    assert (
        await h.service.confirm_totp("alice", code(new, h.clock))
    ).outcome == MfaOutcome.ENROLLED
    h.clock.advance(90)
    assert (await h.service.verify_totp("alice", code(old, h.clock))).outcome == MfaOutcome.FAILED
    assert (await h.service.verify_totp("alice", code(new, h.clock))).outcome == MfaOutcome.PASSED


async def test_remove(h: Harness) -> None:
    setup = await enrol_totp(h)
    assert await h.service.remove_totp("alice")
    assert not await h.service.remove_totp("alice")
    assert (await h.service.verify_totp("alice", code(setup, h.clock))).reason == "not_enrolled"


async def test_secret_never_at_rest_in_the_clear(h: Harness) -> None:
    setups = [await enrol_totp(h, f"user{i}") for i in range(3)]
    rows = [await h.store.get_totp(f"user{i}", pending=False) for i in range(3)]
    await h.store.close()  # the WAL (if any) and the main file are both read below
    blobs = b"".join(p.read_bytes() for p in h.dir.iterdir() if p.is_file())
    assert all(
        row is not None and row.ciphertext in blobs for row in rows
    )  # the scan sees the rows
    for setup in setups:
        secret = secret_of(setup)
        for needle in (
            setup.secret.encode(),
            setup.secret.lower().encode(),
            secret,
            secret.hex().encode(),
        ):
            assert needle not in blobs
    await h.store.open()


async def test_ciphertext_bound_to_its_subject(h: Harness) -> None:
    await enrol_totp(h, "alice")
    row = await h.store.get_totp("alice", pending=False)
    assert row is not None
    await h.store.put_pending_totp(type(row)("mallory", row.ciphertext, row.params, row.created_at))
    with pytest.raises(ValueError, match="decryption failed"):
        await h.service.confirm_totp("mallory", "123456")


@pytest.mark.parametrize("subject", ["", "x" * 256])
async def test_subject_shape_checked(h: Harness, subject: str) -> None:
    with pytest.raises(MfaStateError):
        await h.service.verify_totp(subject, "123456")
