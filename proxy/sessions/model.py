"""Session state as plain, immutable values.

A :class:`Session` is what the store knows about one signed-in browser or
client: who (``sub``, ``tenant``, ``roles``), how strongly (``amr``, ``acr``,
``auth_time``, MFA flags), the optional DPoP key binding (``cnf_jkt``) and its
clocks (``created``, ``last_seen``, ``absolute_expiry``, ``idle_timeout``).
Times are POSIX seconds (floats) of the gateway's clock; ``auth_time`` is whole
seconds because it goes into JWTs as a NumericDate.

Identifiers come from :func:`kms_client.rng.random_bytes`, the project's one
RNG: a session id carries 256 bits, a refresh-token family id 128 bits, both
base64url without padding.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Final, Literal

from kms_client.rng import random_bytes

SID_BYTES: Final = 32
FAMILY_BYTES: Final = 16
_SID_RE: Final = re.compile(r"^[A-Za-z0-9_-]{43}$")
_FAMILY_RE: Final = re.compile(r"^[A-Za-z0-9_-]{22}$")


def b64url(raw: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def new_sid() -> str:
    """A fresh 256-bit session id."""
    return b64url(random_bytes(SID_BYTES))


def new_family_id() -> str:
    """A fresh 128-bit refresh-token family id."""
    return b64url(random_bytes(FAMILY_BYTES))


def is_sid(value: str) -> bool:
    """Whether ``value`` has the shape of a session id (checked before it names a key)."""
    return bool(_SID_RE.fullmatch(value))  # fullmatch: "$" would accept a trailing newline


def is_family_id(value: str) -> bool:
    """Whether ``value`` has the shape of a family id."""
    return bool(_FAMILY_RE.fullmatch(value))


@dataclass(frozen=True, slots=True)
class SessionGrant:
    """What a login (backend assertion, OIDC) or a passed MFA step hands to ``create``."""

    sub: str
    tenant: str | None = None
    roles: tuple[str, ...] = ()
    amr: tuple[str, ...] = ()
    acr: str | None = None
    auth_time: int | None = None  # default: the creation time
    cnf_jkt: str | None = None  # RFC 7638 thumbprint of the client's DPoP key
    mfa_enrolled: bool = False  # the user has a second factor: step up, never re-enrol
    mfa_time: float | None = None  # when a second factor was last passed in this session

    def __post_init__(self) -> None:
        if not self.sub or len(self.sub) > 1024:
            raise ValueError("sessions: sub must be 1..1024 characters")
        if self.cnf_jkt is not None and len(self.cnf_jkt) != 43:
            raise ValueError("sessions: cnf_jkt is not a SHA-256 thumbprint")


@dataclass(frozen=True, slots=True)
class Session:
    """One session as stored; see the module docstring for the fields."""

    sid: str
    sub: str
    tenant: str | None
    roles: tuple[str, ...]
    amr: tuple[str, ...]
    acr: str | None
    auth_time: int
    created: float
    last_seen: float
    absolute_expiry: float
    idle_timeout: float
    family_id: str
    cnf_jkt: str | None = None
    mfa_enrolled: bool = False
    mfa_time: float | None = None

    @property
    def mfa(self) -> bool:
        """Whether a second factor was passed in this session."""
        return self.mfa_time is not None

    @property
    def idle_expiry(self) -> float:
        """When the session ends unless it is seen again."""
        return self.last_seen + self.idle_timeout

    @property
    def expires_at(self) -> float:
        """The earlier of the idle and the absolute expiry."""
        return min(self.idle_expiry, self.absolute_expiry)

    def alive(self, now: float) -> bool:
        """Neither idle nor past its absolute lifetime at ``now``."""
        return now < self.expires_at


@dataclass(frozen=True, slots=True)
class NewSession:
    """A created session and its first refresh token (plaintext exists only here)."""

    session: Session
    refresh_token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class RefreshResult:
    """The outcome of presenting a valid refresh token.

    ``rotated``: a new refresh token was minted; ``refresh_token`` replaces the
    presented one. ``grace``: the presented token was rotated a moment ago by a
    concurrent request; the session is returned, ``refresh_token`` is None and
    the client keeps the successor it already received.
    """

    session: Session
    outcome: Literal["rotated", "grace"]
    refresh_token: str | None = field(default=None, repr=False)
