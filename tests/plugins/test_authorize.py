"""Allow rules: alternatives, every condition with its deny twin, reasons, load errors."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pydantic import ValidationError

from plugins.authorize import AllowRule, Condition
from plugins.base import Subject
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
