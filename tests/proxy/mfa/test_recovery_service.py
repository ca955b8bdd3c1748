"""Recovery codes through MfaService: single use, shared lockout, keyed hashes at rest."""

from __future__ import annotations

import re

from proxy.mfa.outcome import MfaOutcome, MfaPassed
from tests.proxy.mfa.conftest import Harness, code, enrol_totp

FORMAT = re.compile(r"^[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}$")


async def test_issue_and_use_each_code_once(h: Harness) -> None:
    codes = await h.service.issue_recovery_codes("alice")
    assert len(codes) == len(set(codes)) == 10
    assert all(FORMAT.match(c) for c in codes)
    assert (await h.service.factors("alice")).recovery_codes_left == 10
    result = await h.service.verify_recovery_code("alice", codes[3])
    assert result.outcome == MfaOutcome.PASSED
    assert result.passed == MfaPassed(
        method="recovery", amr=["otp", "mfa"], acr="mfa", auth_time=int(h.clock())
    )
    assert result.recovery_codes_left == 9
    again = await h.service.verify_recovery_code("alice", codes[3])
    assert (again.outcome, again.reason, again.failures) == (MfaOutcome.FAILED, "bad_code", 1)
    assert (
        await h.service.verify_recovery_code("alice", codes[4].upper().replace("-", " "))
    ).outcome == MfaOutcome.PASSED
    assert (await h.service.factors("alice")).recovery_codes_left == 8


async def test_codes_belong_to_their_subject(h: Harness) -> None:
    alice = await h.service.issue_recovery_codes("alice")
    await h.service.issue_recovery_codes("bob")
    assert (await h.service.verify_recovery_code("bob", alice[0])).outcome == MfaOutcome.FAILED
    assert (await h.service.verify_recovery_code("alice", alice[0])).outcome == MfaOutcome.PASSED


async def test_reissue_revokes_the_old_set(h: Harness) -> None:
    old = await h.service.issue_recovery_codes("alice")
    new = await h.service.issue_recovery_codes("alice")
    assert not set(old) & set(new)
    assert (await h.service.verify_recovery_code("alice", old[0])).outcome == MfaOutcome.FAILED
    assert (await h.service.verify_recovery_code("alice", new[0])).outcome == MfaOutcome.PASSED


async def test_codes_survive_a_key_rotation(h: Harness) -> None:
    codes = await h.service.issue_recovery_codes("alice")
    h.keys.rotate()
    assert (await h.service.verify_recovery_code("alice", codes[0])).outcome == MfaOutcome.PASSED
    stored = await h.store.recovery_codes("alice")
    assert stored is not None
    assert stored.key_version == 1


async def test_malformed_and_missing(h: Harness) -> None:
    assert (await h.service.verify_recovery_code("alice", "abcde-fghjk")).reason == "not_enrolled"
    await h.service.issue_recovery_codes("alice")
    for typed in ("", "not a code", "uuuuu-uuuuu"):
        result = await h.service.verify_recovery_code("alice", typed)
        assert (result.outcome, result.reason) == (MfaOutcome.FAILED, "bad_code")
    assert await h.service.remove_recovery_codes("alice")
    assert (await h.service.factors("alice")).recovery_codes_left == 0


async def test_lockout_is_shared_with_totp(h: Harness) -> None:
    setup = await enrol_totp(h)
    codes = await h.service.issue_recovery_codes("alice")
    bad = "000000" if code(setup, h.clock) != "000000" else "111111"
    for _ in range(3):
        await h.service.verify_totp("alice", bad)
    assert (await h.service.verify_recovery_code("alice", "00000-00000")).failures == 4
    assert (
        await h.service.verify_recovery_code("alice", "00000-00001")
    ).outcome == MfaOutcome.LOCKED
    locked = await h.service.verify_recovery_code("alice", codes[0])
    assert (locked.outcome, locked.reason) == (MfaOutcome.LOCKED, "locked")
    assert (
        await h.service.factors("alice")
    ).recovery_codes_left == 10  # nothing consumed while locked
    h.clock.advance(900)
    assert (await h.service.verify_recovery_code("alice", codes[0])).outcome == MfaOutcome.PASSED


async def test_codes_never_at_rest_in_the_clear(h: Harness) -> None:
    codes = await h.service.issue_recovery_codes("alice")
    stored = await h.store.recovery_codes("alice")
    assert stored is not None
    await h.store.close()
    blobs = b"".join(p.read_bytes() for p in h.dir.iterdir() if p.is_file())
    assert all(d in blobs for d in stored.digests)
    for c in codes:
        for needle in (c, c.replace("-", ""), c.upper(), c.replace("-", "").upper()):
            assert needle.encode() not in blobs
    await h.store.open()
