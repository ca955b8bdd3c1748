"""tee.admission: the registry entry decides platform and policy; every check refuses on its own."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import ClassVar

import pytest

from tee import admission
from tee.admission import Verification, policy_of, verify_answer
from tee.attestation import Claims, Expectation, Platform, Policy
from tee.errors import EvidenceRefused
from tests.tee.pool_support import NOW, Answer

KEY = bytes(range(32))
NONCE = bytes(32)
GOOD = "ab" * 48


@dataclass(frozen=True)
class Entry:
    """A registry entry as the pool reads it."""

    id: str = "tee-a"
    platform: str = "sim"
    measurements: Mapping[str, Sequence[str]] = field(
        default_factory=lambda: {"measurement": [GOOD.upper()]}
    )
    allow_debug: bool = False
    accepted_tcb: Sequence[str] = ("UpToDate",)
    status: str = "active"


CLAIMS = Claims(
    platform=Platform.SIM,
    measurements={"measurement": GOOD},
    report_data=b"",
    public_key=KEY,
    nonce=NONCE,
    tcb_status="UpToDate",
    debug=False,
)


class LaxVerifier:
    """A verifier that checks nothing and says what it is told (to prove the re-checks)."""

    platform: ClassVar[Platform] = Platform.SIM
    claims = CLAIMS
    seen: ClassVar[list[Policy]] = []

    def verify(
        self, evidence: bytes, *, expect: Expectation, now: datetime, policy: Policy
    ) -> Claims:
        self.seen.append(policy)
        return self.claims


@pytest.fixture
def lax(monkeypatch: pytest.MonkeyPatch) -> type[LaxVerifier]:
    LaxVerifier.claims = CLAIMS
    LaxVerifier.seen = []
    monkeypatch.setattr(admission, "verifier_for", lambda *a, **k: LaxVerifier())
    return LaxVerifier


async def check(entry: Entry, answer_key: bytes = KEY) -> admission.Admission:
    answer = Answer("nitro", b"evidence", answer_key, 3)  # the claimed platform is ignored
    return await verify_answer(
        answer, entry, tee_id="tee-a", nonce=NONCE, verification=Verification(now=lambda: NOW)
    )


async def test_the_entry_policy_is_what_the_verifier_gets(lax: type[LaxVerifier]) -> None:
    admitted = await check(Entry())
    assert admitted.public_key == KEY
    assert admitted.generation == 3
    assert admitted.platform is Platform.SIM
    [policy] = lax.seen
    assert policy.measurements == {"measurement": frozenset({GOOD})}  # lowercased
    assert policy.allow_debug is False
    assert policy.accepted_tcb == frozenset({"UpToDate"})


@pytest.mark.parametrize(
    ("claims", "entry", "check_name"),
    [
        ({"debug": True}, {}, "debug"),
        ({"tcb_status": "OutOfDate"}, {}, "tcb"),
        ({"measurements": {"measurement": "cd" * 48}}, {}, "measurement"),
        ({"measurements": {}}, {}, "measurement"),
        ({"public_key": bytes(32)}, {}, "public_key"),
        ({}, {"status": "retired"}, "retired"),
        ({}, {"id": "tee-b"}, "registry"),
        ({}, {"measurements": {"measurement": []}}, "registry"),
    ],
    ids=["debug", "tcb", "measurement", "no-measurement", "key", "retired", "other-id", "empty"],
)
async def test_each_check_refuses_even_behind_a_lax_verifier(
    lax: type[LaxVerifier], claims: dict[str, object], entry: dict[str, object], check_name: str
) -> None:
    lax.claims = replace(CLAIMS, **claims)  # type: ignore[arg-type]
    with pytest.raises(EvidenceRefused) as caught:
        await check(replace(Entry(), **entry))  # type: ignore[arg-type]
    assert caught.value.check == check_name


async def test_what_the_entry_allows_passes(lax: type[LaxVerifier]) -> None:
    lax.claims = replace(CLAIMS, debug=True, tcb_status="SWHardeningNeeded")
    entry = replace(Entry(), allow_debug=True, accepted_tcb=("UpToDate", "SWHardeningNeeded"))
    assert (await check(entry)).claims.debug


async def test_a_key_of_the_wrong_shape_is_refused(lax: type[LaxVerifier]) -> None:
    with pytest.raises(EvidenceRefused) as caught:
        await check(Entry(), answer_key=b"short")
    assert caught.value.check == "public_key"


async def test_a_nonce_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(EvidenceRefused) as caught:
        await verify_answer(
            Answer("sim", b"", KEY, 1),
            Entry(),
            tee_id="tee-a",
            nonce=b"x",
            verification=Verification(),
        )
    assert caught.value.check == "nonce"


def test_an_entry_without_measurements_has_no_policy() -> None:
    with pytest.raises(EvidenceRefused, match="no reference measurement"):
        policy_of(Entry(measurements={}))
    assert policy_of(Entry(accepted_tcb=())).accepted_tcb == frozenset({"UpToDate"})
