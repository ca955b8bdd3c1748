"""The field-action plugin interface (STYLE.md "Plugins"): one batch in, one result per item.

Rules every action keeps:
- ``apply`` returns exactly one :class:`FieldResult` per input, in order.
- A problem with one value is a result (``invalid`` or ``deny``), never an
  exception; an exception (vault or keyring down, a bug) fails the whole
  message closed.
- Dependencies come through :class:`ActionContext`, never globals.
- Options are validated once in ``configure`` (at policy load), never per
  request; a bad option raises ``ValueError`` with a short message that the
  policy loader places at the rule's YAML path.
- Results and errors never carry a value they were given unless the action's
  purpose is to return it (``detokenize`` to an authorized caller).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, Literal, Protocol

from kms_client.audit_port import Auditor
from vault.api import ClassSpec, RecordInfo, TokenVault

type Scalar = str | int | float | bool | None
type Direction = Literal["request", "response"]


@dataclass(frozen=True, slots=True)
class FieldClass:
    """A field class as declared once in policy: how its tokens look and how it is masked."""

    spec: ClassSpec
    mask: str | None = None  # default mask pattern, e.g. "***-**-{last4}"

    @property
    def name(self) -> str:
        """The class name (``ssn``, ``pan``, ...)."""
        return self.spec.name


@dataclass(frozen=True, slots=True)
class FieldValue:
    """One selected value and where it was found (never logged with the value)."""

    value: Scalar = field(repr=False)
    location: str  # "$.items[3].ssn", "form:ssn", "query:card", "header:X-SSN"


class Outcome(StrEnum):
    """What to do with the field."""

    REPLACE = "replace"  # write ``value`` in its place
    REMOVE = "remove"  # drop the field (JSON: member removed / null in arrays; form/query: dropped)
    DENY = "deny"  # refuse the whole message (403)
    INVALID = "invalid"  # the value is unusable for this rule (400 naming the rule)


@dataclass(frozen=True, slots=True)
class FieldResult:
    """The result for one :class:`FieldValue`."""

    outcome: Outcome
    value: Scalar = field(default=None, repr=False)
    reason: str = ""  # a fixed word or short phrase for logs and errors; never a value

    @classmethod
    def replace(cls, value: Scalar) -> FieldResult:
        """Write ``value`` in place of the original."""
        return cls(Outcome.REPLACE, value)

    @classmethod
    def remove(cls) -> FieldResult:
        """Drop the field."""
        return cls(Outcome.REMOVE)

    @classmethod
    def deny(cls, reason: str) -> FieldResult:
        """Refuse the whole message with 403."""
        return cls(Outcome.DENY, reason=reason)

    @classmethod
    def invalid(cls, reason: str) -> FieldResult:
        """Refuse the whole message with 400 naming the rule."""
        return cls(Outcome.INVALID, reason=reason)


@dataclass(frozen=True, slots=True)
class Subject:
    """Who the message is for: the verified session's claims (or anonymous)."""

    sub: str | None = None
    roles: frozenset[str] = frozenset()
    tenant: str | None = None
    amr: tuple[str, ...] = ()
    acr: str | None = None
    auth_time: int | None = None  # unix seconds of the last (MFA) authentication
    claims: Mapping[str, object] = field(default_factory=dict)

    @property
    def authenticated(self) -> bool:
        """True when a session (or API key) stands behind the message."""
        return self.sub is not None

    @property
    def mfa(self) -> bool:
        """True when the session passed a second factor."""
        return "mfa" in self.amr


class KeyedHasher(Protocol):
    """The keyring's HMAC (purpose ``hash``) as the hash action needs it."""

    def hmac(self, purpose: str, data: bytes, *, version: int | None = None) -> _Digest:
        """HMAC-SHA256 under ``version`` (default: primary) of ``purpose``."""
        ...


class _Digest(Protocol):
    @property
    def version(self) -> int: ...

    @property
    def digest(self) -> bytes: ...


class RateLimiter(Protocol):
    """Counts detokenizations per (subject, class) in a window shared by all replicas."""

    async def take(self, key: str, count: int, *, limit: int, window: float) -> bool:
        """Add ``count`` to ``key``'s window; False (nothing taken) if that would pass ``limit``."""
        ...


class TeeJobs(Protocol):
    """The TEE pool as the ``tee`` action needs it (:class:`tee.jobs.JobRunner`)."""

    async def run(
        self, job: str, values: Sequence[str], *, tenant: str, request_id: str
    ) -> list[str]:
        """Run ``job`` over ``values`` in an attested TEE; one result per value, same order."""
        ...


@dataclass(frozen=True, slots=True)
class ActionContext:
    """Everything an action may use for one message (built per request by the proxy)."""

    route: str
    rule: str  # "request[0]" / "response[2]": names the rule in errors and audit
    direction: Direction
    subject: Subject
    vault: TokenVault
    keys: KeyedHasher
    audit: Auditor
    limiter: RateLimiter
    now: float  # unix seconds; injected, never read from the clock inside actions
    request_id: str
    tenant: str = ""  # the tenant records are made for (session tenant or the route's)
    tee: TeeJobs | None = None  # the TEE pool; None when gateway.yaml has no tee: section


class FieldAction(Protocol):
    """A field action plugin: configured once per rule, applied per message batch."""

    name: ClassVar[str]

    def configure(self, options: Mapping[str, object]) -> None:
        """Validate and keep this rule's options (``class`` arrives as a FieldClass)."""
        ...

    async def apply(self, batch: Sequence[FieldValue], ctx: ActionContext) -> list[FieldResult]:
        """One result per value, same order; raise only when the whole batch cannot be served."""
        ...


@dataclass(frozen=True, slots=True)
class Decision:
    """An authorizer's answer for one record: allow or deny, and a fixed reason word."""

    allow: bool
    reason: str  # a fixed word ("owner", "not_owner", "mfa_required"); never a value

    @classmethod
    def allowed(cls, reason: str) -> Decision:
        """Allow, saying which condition let the subject in."""
        return cls(True, reason)

    @classmethod
    def denied(cls, reason: str) -> Decision:
        """Deny, saying which condition failed."""
        return cls(False, reason)


class Authorizer(Protocol):
    """A custom allow condition (``allow: {authorizer: NAME, options: {...}}``).

    Pure: no IO, no clock (``now`` is handed in). Configured once per rule;
    an exception from ``decide`` fails the message closed.
    """

    name: ClassVar[str]

    def configure(self, options: Mapping[str, object]) -> None:
        """Validate and keep this rule's options; raise ``ValueError`` on a bad one."""
        ...

    def decide(self, subject: Subject, record: RecordInfo, now: float) -> Decision:
        """Allow or deny ``subject`` the value of ``record`` at ``now`` (unix seconds)."""
        ...
