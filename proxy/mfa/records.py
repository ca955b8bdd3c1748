"""What the MFA store keeps per subject: plain frozen records, no secrets in the clear.

A TOTP enrolment holds only the secret's keyring ciphertext (purpose
``mfa-secrets``, context bound to the subject); recovery codes are keyed
digests; WebAuthn credentials are public keys and counters; challenges are
random values with an expiry. Each subject has at most one pending and one
active TOTP enrolment, one recovery code set, any number of WebAuthn
credentials, and one open challenge per ceremony.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from proxy.auth.totp import TotpParams


class Ceremony(StrEnum):
    """The WebAuthn ceremony a challenge belongs to."""

    REGISTER = "register"
    AUTHENTICATE = "authenticate"


@dataclass(frozen=True)
class TotpEnrolment:
    """A TOTP credential; ``confirmed_at`` is None while it is pending."""

    subject: str
    ciphertext: bytes = field(repr=False)
    params: TotpParams
    created_at: datetime
    confirmed_at: datetime | None = None
    last_step: int | None = None


@dataclass(frozen=True)
class RecoveryCodeSet:
    """The unused recovery code digests of a subject and the key version that made them."""

    subject: str
    key_version: int
    digests: tuple[bytes, ...] = field(repr=False)
    created_at: datetime


@dataclass(frozen=True)
class WebAuthnCredential:
    """A registered WebAuthn credential (public material only)."""

    subject: str
    credential_id: bytes
    public_key: bytes = field(repr=False)
    sign_count: int
    user_handle: bytes = field(repr=False)
    aaguid: str
    created_at: datetime
    last_used_at: datetime | None = None
