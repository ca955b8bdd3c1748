"""Allow rules: alternatives, every condition with its deny twin, reasons, load errors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import ClassVar

import pytest
from pydantic import ValidationError

from plugins.authorize import AllowRule, Condition
from plugins.base import Decision, Subject
from vault.api import RecordInfo

NOW = 1_900_000_000
RECORD = RecordInfo(
    "ssn", "ssn", owner="alice", tenant="acme", created=NOW - 10, expires=None, record_version=1
)
NO_OWNER = replace(RECORD, owner=None)
ALICE = Subject(sub="alice", roles=frozenset({"customer"}), tenant="acme")
SUPPORT = Subject(
    sub="sam",
    roles=frozenset({"support", "staff"}),
    tenant="acme",
    amr=("pwd", "mfa"),
    auth_time=NOW - 60,
)


def rule(*alternatives: dict[str, object]) -> AllowRule:
    return AllowRule.of([Condition.model_validate(a) for a in alternatives])


@pytest.mark.parametrize(
    ("alternatives", "subject", "record", "allow", "reason"),
    [
        # owner
        ([{"owner": True}], ALICE, RECORD, True, "owner"),
        ([{"owner": True}], replace(ALICE, sub="bob"), RECORD, False, "not_owner"),
        ([{"owner": True}], Subject(), RECORD, False, "anonymous"),
        ([{"owner": True}], ALICE, NO_OWNER, False, "no_owner"),
        # roles: any one of them
        ([{"roles": ["support", "admin"]}], SUPPORT, RECORD, True, "roles"),
        ([{"roles": ["admin"]}], SUPPORT, RECORD, False, "missing_role"),
        ([{"roles": ["support"]}], Subject(), RECORD, False, "missing_role"),
        # claims: equal, one of a list, list-valued claims, types must match
        (
            [{"claims": {"dept": "billing"}}],
            replace(ALICE, claims={"dept": "billing"}),
            RECORD,
            True,
            "claims",
        ),
        (
            [{"claims": {"dept": "billing"}}],
            replace(ALICE, claims={"dept": "sales"}),
            RECORD,
            False,
            "claim_mismatch",
        ),
        ([{"claims": {"dept": "billing"}}], ALICE, RECORD, False, "claim_mismatch"),
        (
            [{"claims": {"level": [2, 3]}}],
            replace(ALICE, claims={"level": 3}),
            RECORD,
            True,
            "claims",
        ),
        (
            [{"claims": {"level": [2, 3]}}],
            replace(ALICE, claims={"level": 4}),
            RECORD,
            False,
            "claim_mismatch",
        ),
        (
            [{"claims": {"groups": "ops"}}],
            replace(ALICE, claims={"groups": ["dev", "ops"]}),
            RECORD,
            True,
            "claims",
        ),
        (
            [{"claims": {"groups": "ops"}}],
            replace(ALICE, claims={"groups": ["dev"]}),
            RECORD,
            False,
            "claim_mismatch",
        ),
        (
            [{"claims": {"flag": True}}],
            replace(ALICE, claims={"flag": True}),
            RECORD,
            True,
            "claims",
        ),
        (
            [{"claims": {"flag": True}}],
            replace(ALICE, claims={"flag": 1}),
            RECORD,
            False,
            "claim_mismatch",
        ),
        (
            [{"claims": {"n": 1}}],
            replace(ALICE, claims={"n": True}),
            RECORD,
            False,
            "claim_mismatch",
        ),
        (
            [{"claims": {"a": "x", "b": "y"}}],
            replace(ALICE, claims={"a": "x"}),
            RECORD,
            False,
            "claim_mismatch",
        ),
        # tenants
        ([{"tenants": "same"}], ALICE, RECORD, True, "tenants"),
        ([{"tenants": "same"}], replace(ALICE, tenant="globex"), RECORD, False, "tenant_mismatch"),
        (
            [{"tenants": "same"}],
            replace(ALICE, tenant=None),
            replace(RECORD, tenant=""),
            True,
            "tenants",
        ),
        ([{"tenants": "same"}], replace(ALICE, tenant=None), RECORD, False, "tenant_mismatch"),
        ([{"tenants": ["acme", "globex"]}], ALICE, RECORD, True, "tenants"),
        ([{"tenants": ["globex"]}], ALICE, RECORD, False, "tenant_mismatch"),
        # mfa and max_age
        ([{"mfa": True}], SUPPORT, RECORD, True, "mfa"),
        ([{"mfa": True}], ALICE, RECORD, False, "mfa_required"),
        ([{"max_age": "15m"}], SUPPORT, RECORD, True, "max_age"),
        ([{"max_age": "15m"}], replace(SUPPORT, auth_time=NOW - 900), RECORD, True, "max_age"),
        (
            [{"max_age": "15m"}],
            replace(SUPPORT, auth_time=NOW - 901),
            RECORD,
            False,
            "auth_too_old",
        ),
        ([{"max_age": 60}], replace(SUPPORT, auth_time=None), RECORD, False, "auth_too_old"),
        # all conditions of one alternative must hold
        (
            [{"roles": ["support"], "mfa": True, "max_age": "15m"}],
            SUPPORT,
            RECORD,
            True,
            "roles+mfa+max_age",
        ),
        (
            [{"roles": ["support"], "mfa": True}],
            replace(SUPPORT, amr=("pwd",)),
            RECORD,
            False,
            "mfa_required",
        ),
        (
            [{"roles": ["support"], "mfa": True}],
            replace(SUPPORT, roles=frozenset()),
            RECORD,
            False,
            "missing_role",
        ),
        # any alternative suffices; a deny names each alternative's first failure
        ([{"owner": True}, {"roles": ["support"]}], SUPPORT, RECORD, True, "roles"),
        ([{"owner": True}, {"roles": ["support"]}], ALICE, RECORD, True, "owner"),
        (
            [{"owner": True}, {"roles": ["support"]}],
            replace(ALICE, sub="bob"),
            RECORD,
            False,
            "not_owner|missing_role",
        ),
        ([{"roles": ["a"]}, {"roles": ["b"]}], ALICE, RECORD, False, "missing_role"),
    ],
)
def test_decisions(
    alternatives: list[dict[str, object]],
    subject: Subject,
    record: RecordInfo,
    allow: bool,
    reason: str,
) -> None:
    decision = rule(*alternatives).decide(subject, record, NOW)
    assert (decision.allow, decision.reason) == (allow, reason)


def test_decisions_do_not_depend_on_condition_order() -> None:
    a = rule({"mfa": True, "roles": ["support"], "max_age": "15m"})
    b = rule({"max_age": "15m", "roles": ["support"], "mfa": True})
    for subject in (SUPPORT, ALICE, replace(SUPPORT, auth_time=0)):
        assert a.decide(subject, RECORD, NOW) == b.decide(subject, RECORD, NOW)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "an allow alternative needs at least one condition"),
        ({"options": {}}, "an allow alternative needs at least one condition"),
        ({"owner": False}, "Input should be True"),
        ({"mfa": "yes"}, "Input should be True"),
        ({"roles": []}, "at least 1 item"),
        ({"roles": "support"}, "valid list"),
        ({"claims": {}}, "at least 1 item"),
        ({"claims": {"a": 1.5}}, "claims.a"),
        ({"tenants": []}, "'tenants' lists no tenant"),
        ({"tenants": "other"}, "tenants"),
        ({"max_age": "soon"}, "expected a duration"),
        ({"max_age": -1}, "a duration cannot be negative"),
        ({"max_age": 0}, "greater than 0"),
        ({"roles": ["a"], "options": {"x": 1}}, "'options' belongs to an 'authorizer'"),
        ({"authorizer": "missing"}, "unknown authorizer 'missing' (known: none installed)"),
        ({"owners": True}, "Extra inputs are not permitted"),
    ],
)
def test_bad_conditions_are_load_errors(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Condition.model_validate(options)
    assert message in str(caught.value)


def test_an_empty_alternative_list_is_refused() -> None:
    with pytest.raises(ValueError, match="allow lists no alternative"):
        AllowRule.of([])


BATCH = [
    RECORD,
    replace(RECORD, created=NOW - 5),
    replace(RECORD, owner="bob"),
    NO_OWNER,
    replace(RECORD, tenant="other"),
    RECORD,
]
BATCH_RULES = [
    [{"owner": True}],
    [{"owner": True, "tenants": "same"}, {"roles": ["support"], "mfa": True, "max_age": "15m"}],
    [{"tenants": ["acme"]}],
    [{"claims": {"dept": "billing"}}, {"owner": True}],
]


@pytest.mark.parametrize("alternatives", BATCH_RULES)
@pytest.mark.parametrize("subject", [ALICE, SUPPORT, Subject(), replace(ALICE, tenant="other")])
def test_a_batch_decider_answers_as_decide(
    alternatives: list[dict[str, object]], subject: Subject
) -> None:
    allow = rule(*alternatives)
    decide = allow.decider(subject, NOW)
    assert [decide(r) for r in BATCH] == [allow.decide(subject, r, NOW) for r in BATCH]


def test_a_batch_decider_decides_once_per_owner_and_tenant(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[RecordInfo] = []
    real = AllowRule.decide

    def counted(self: AllowRule, subject: Subject, record: RecordInfo, now: float) -> Decision:
        calls.append(record)
        return real(self, subject, record, now)

    monkeypatch.setattr(AllowRule, "decide", counted)
    decide = rule({"owner": True, "tenants": "same"}).decider(ALICE, NOW)
    assert [decide(r).allow for r in BATCH] == [True, True, False, False, False, True]
    assert calls == [
        RECORD,
        replace(RECORD, owner="bob"),
        NO_OWNER,
        replace(RECORD, tenant="other"),
    ]


class _FreshRecords:
    """A real authorizer that reads more than owner and tenant: records made recently."""

    name: ClassVar[str] = "fresh_records"

    def configure(self, options: Mapping[str, object]) -> None:
        self.max_age = int(str(options.get("max_age", 7)))

    def decide(self, subject: Subject, record: RecordInfo, now: float) -> Decision:
        if now - record.created <= self.max_age:
            return Decision.allowed("fresh")
        return Decision.denied("stale")


def test_a_custom_authorizer_sees_every_record_of_a_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def create(name: str, options: Mapping[str, object]) -> _FreshRecords:
        made = _FreshRecords()
        made.configure(options)
        return made

    monkeypatch.setattr("plugins.authorize.create_authorizer", create)
    allow = rule({"owner": True, "authorizer": "fresh_records"})
    decide = allow.decider(ALICE, NOW)
    fresh, stale = replace(RECORD, created=NOW - 5), RECORD  # same owner and tenant
    assert (decide(fresh).allow, decide(fresh).reason) == (True, "owner+authorizer")
    assert (decide(stale).allow, decide(stale).reason) == (False, "fresh_records:stale")
