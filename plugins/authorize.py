"""Allow rules of ``detokenize``: who may see a record's value.

``allow`` is one condition set (a mapping) or a list of alternatives; ANY one
alternative suffices, and inside one alternative ALL listed conditions must
hold. An alternative with no condition is refused at load: allowing everyone
must be spelled out (e.g. a role everyone has), never the result of a typo.

Conditions (all optional, at least one per alternative):
- ``roles: [support, admin]``: the subject has at least one of them;
- ``claims: {dept: billing, level: [2, 3]}``: each claim equals the value or
  one of the listed values (a list-valued claim matches if any item does;
  types must match: ``true`` is not ``1``);
- ``owner: true``: the record has an owner and it is the subject's ``sub``
  (records of deterministic formats and unauthenticated routes have none);
- ``tenants: same`` (the record's tenant equals the subject's) or
  ``tenants: [a, b]`` (the record's tenant is one of these);
- ``mfa: true``: the session passed a second factor;
- ``max_age: 15m``: the last authentication is at most this old (with
  ``mfa: true``: fresh MFA); a session without ``auth_time`` fails it;
- ``authorizer: NAME`` with ``options: {...}``: a custom authorizer
  (:mod:`plugins.authorizers`).

Example (the demo's rule)::

    allow:
      - owner: true
      - roles: [support]
        mfa: true
        max_age: 15m

Decisions are pure functions of (subject, record, now). Reasons are fixed
words for the audit log: the conditions that held (``roles+mfa+max_age``) or,
on deny, the first failing condition of each alternative
(``not_owner|mfa_required``). An authorizer that raises fails the message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field, PrivateAttr, model_validator

from plugins.authorizers import create_authorizer
from plugins.base import Authorizer, Decision, Subject
from plugins.options import Duration, StrictOptions
from vault.api import RecordInfo

type ClaimValue = str | int | bool
_MAX_REASON = 120


class Condition(StrictOptions):
    """One alternative of an allow rule: every condition present must hold."""

    roles: list[str] | None = Field(default=None, min_length=1)
    claims: dict[str, ClaimValue | list[ClaimValue]] | None = Field(default=None, min_length=1)
    owner: Literal[True] | None = None
    tenants: Literal["same"] | list[str] | None = None
    mfa: Literal[True] | None = None
    max_age: Duration | None = Field(default=None, gt=0)
    authorizer: str | None = None
    options: dict[str, object] | None = None
    _custom: Authorizer | None = PrivateAttr(default=None)
    _label: str = PrivateAttr(default="")

    @model_validator(mode="after")
    def _check(self) -> Condition:
        if not self.model_fields_set - {"options"}:
            raise ValueError("an allow alternative needs at least one condition")
        if self.options is not None and self.authorizer is None:
            raise ValueError("'options' belongs to an 'authorizer'")
        if isinstance(self.tenants, list) and not self.tenants:
            raise ValueError("'tenants' lists no tenant")
        if self.authorizer is not None:
            self._custom = create_authorizer(self.authorizer, self.options or {})
        self._label = "+".join(n for n in _ORDER if getattr(self, n) is not None)
        return self

    def first_failure(self, subject: Subject, record: RecordInfo, now: float) -> str | None:
        """The reason word of the first condition that fails, None when all hold."""
        failed = (
            (self.owner and _owner(subject, record))
            or (self.roles and _roles(self.roles, subject))
            or (self.claims and _claims(self.claims, subject))
            or (self.tenants and _tenants(self.tenants, subject, record))
            or (self.mfa and _mfa(subject))
            or (self.max_age and _max_age(self.max_age, subject, now))
        )
        if failed:
            return failed
        if self._custom is not None:
            decision = self._custom.decide(subject, record, now)
            if not isinstance(decision, Decision):
                raise TypeError(f"authorizer '{self.authorizer}' did not return a Decision")
            if not decision.allow:
                return f"{self.authorizer}:{decision.reason}"[:_MAX_REASON]
        return None

    def label(self) -> str:
        """The conditions of this alternative, ``+``-joined (the allow reason)."""
        return self._label

    @property
    def custom(self) -> bool:
        """Whether a custom authorizer decides too (it may read all of the record)."""
        return self._custom is not None


_ORDER = ("owner", "roles", "claims", "tenants", "mfa", "max_age", "authorizer")


def _owner(subject: Subject, record: RecordInfo) -> str | None:
    if record.owner is None:
        return "no_owner"
    if subject.sub is None:
        return "anonymous"
    return None if subject.sub == record.owner else "not_owner"


def _roles(roles: list[str], subject: Subject) -> str | None:
    return None if subject.roles.intersection(roles) else "missing_role"


def _claims(wanted: dict[str, ClaimValue | list[ClaimValue]], subject: Subject) -> str | None:
    for name, expected in wanted.items():
        accepted = expected if isinstance(expected, list) else [expected]
        actual = subject.claims.get(name)
        values = actual if isinstance(actual, list) else [actual]
        if not any(_same(a, e) for a in values for e in accepted):
            return "claim_mismatch"
    return None


def _same(actual: object, expected: ClaimValue) -> bool:
    return type(actual) is type(expected) and actual == expected


def _tenants(
    tenants: Literal["same"] | list[str], subject: Subject, record: RecordInfo
) -> str | None:
    if tenants == "same":
        return None if record.tenant == (subject.tenant or "") else "tenant_mismatch"
    return None if record.tenant in tenants else "tenant_mismatch"


def _mfa(subject: Subject) -> str | None:
    return None if subject.mfa else "mfa_required"


def _max_age(max_age: float, subject: Subject, now: float) -> str | None:
    if subject.auth_time is None or now - subject.auth_time > max_age:
        return "auth_too_old"
    return None


@dataclass(frozen=True, slots=True)
class AllowRule:
    """Alternatives of conditions; ANY alternative allows."""

    alternatives: tuple[Condition, ...]
    _whole_record: bool = field(init=False, default=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Built-in conditions read only the record's owner and tenant; a custom
        # authorizer may read any of its metadata.
        object.__setattr__(self, "_whole_record", any(a.custom for a in self.alternatives))

    @classmethod
    def of(cls, conditions: Condition | Sequence[Condition]) -> AllowRule:
        """From one condition set or a list of alternatives (validated options)."""
        alts = (conditions,) if isinstance(conditions, Condition) else tuple(conditions)
        if not alts:
            raise ValueError("allow lists no alternative")
        return cls(alts)

    def decide(self, subject: Subject, record: RecordInfo, now: float) -> Decision:
        """Allow by the first alternative that holds, else deny with each one's reason."""
        failures: list[str] = []
        for alt in self.alternatives:
            failed = alt.first_failure(subject, record, now)
            if failed is None:
                return Decision.allowed(alt.label())
            if failed not in failures:
                failures.append(failed)
        return Decision.denied("|".join(failures)[:_MAX_REASON])

    def decider(self, subject: Subject, now: float) -> Callable[[RecordInfo], Decision]:
        """:meth:`decide` for one batch, made once per distinct record it must read.

        Within a batch the subject and ``now`` are fixed, so records that agree on
        what the conditions read (owner and tenant; all of it with a custom
        authorizer) get the same decision: it is made once and reused.
        """
        memo: dict[object, Decision] = {}
        whole = self._whole_record

        def decide(record: RecordInfo) -> Decision:
            key = record if whole else (record.owner, record.tenant)
            decision = memo.get(key)
            if decision is None:
                decision = memo[key] = self.decide(subject, record, now)
            return decision

        return decide
