"""The keyring as plain data: purposes, versioned keys, states, one primary each.

Rules (checked when a keyring is built or parsed):
- Every purpose has a kind: ``aead`` (AES-256-GCM keys), ``prf`` (HMAC/HKDF
  keys: index, convergent, hash) or ``signing``. Every key holds 32 bytes of
  material from :mod:`kms_client.rng`, made here and never passed in by a
  caller.
- Every key of a signing purpose names its algorithm: ``EdDSA`` (the material
  is an Ed25519 seed; the default) or ``ES256`` (the material is a P-256
  private scalar in [1, n-1]); keys of other kinds name none. A rotation keeps
  the primary's algorithm unless it is told to switch, so old keys of either
  algorithm keep verifying until they are revoked.
- Versions of a purpose are 1, 2, 3, ... and never reused; the primary is the
  newest ``active`` version and is the only one that encrypts or signs.
- ``active`` and ``decrypt-only`` keys decrypt/verify; ``revoked`` keys keep
  their material but refuse to decrypt (fail closed); ``destroyed`` keys have
  no material left. The primary can be neither revoked nor destroyed: rotate
  first.
- Operations return a new :class:`Keyring`; nothing is mutated in place.
- ``retired_kwks`` lists KWKs replaced by a destroy that must still be
  destroyed in the root backend (finished by the next lifecycle operation
  if the process died in between).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum

from kms_client import rng
from kms_client.errors import KeyStateError

KEY_BYTES = 32
# Order n of the P-256 group (FIPS 186-4 D.1.2.3): an ES256 scalar is in [1, n-1].
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


class KeyState(StrEnum):
    """Lifecycle state of one key version."""

    ACTIVE = "active"
    DECRYPT_ONLY = "decrypt-only"
    REVOKED = "revoked"
    DESTROYED = "destroyed"


class KeyKind(StrEnum):
    """What a purpose's keys are for."""

    AEAD = "aead"
    PRF = "prf"
    SIGNING = "signing"


class SigningAlgorithm(StrEnum):
    """JOSE algorithm of a signing key (RFC 8037 EdDSA over Ed25519, RFC 7518 ES256)."""

    EDDSA = "EdDSA"
    ES256 = "ES256"


USABLE = frozenset({KeyState.ACTIVE, KeyState.DECRYPT_ONLY})


@dataclass(frozen=True)
class KeyVersion:
    """One version of one purpose's key."""

    version: int
    state: KeyState
    created_at: datetime
    changed_at: datetime
    material: bytes | None = field(repr=False)
    algorithm: SigningAlgorithm | None = None

    @classmethod
    def generate(
        cls, version: int, *, now: datetime, algorithm: SigningAlgorithm | None = None
    ) -> KeyVersion:
        """A fresh active key with 32 bytes from the process RNG (a valid scalar for ES256)."""
        now = whole_seconds(now)
        material = rng.random_bytes(KEY_BYTES)
        while algorithm is SigningAlgorithm.ES256 and not _is_p256_scalar(material):
            material = rng.random_bytes(KEY_BYTES)  # rejection sampling: no modulo bias
        return cls(version, KeyState.ACTIVE, now, now, material, algorithm)

    def __post_init__(self) -> None:
        if self.version < 1:
            raise ValueError("kms: key version must be >= 1")
        if (self.material is None) != (self.state is KeyState.DESTROYED):
            raise ValueError("kms: only destroyed keys lack material")
        if self.material is not None and len(self.material) != KEY_BYTES:
            raise ValueError("kms: key material must be 32 bytes")
        if (
            self.algorithm is SigningAlgorithm.ES256
            and self.material is not None
            and not _is_p256_scalar(self.material)
        ):
            raise ValueError("kms: ES256 key material is not a P-256 scalar")


@dataclass(frozen=True)
class PurposeRing:
    """All versions of one purpose, oldest first, and which one is primary."""

    purpose: str
    kind: KeyKind
    primary: int
    keys: tuple[KeyVersion, ...]

    def __post_init__(self) -> None:
        versions = [k.version for k in self.keys]
        if versions != sorted(set(versions)) or not versions:
            raise ValueError(f"kms: purpose '{self.purpose}' has unordered or duplicate versions")
        head = self.get(self.primary)
        if head is None or head.state is not KeyState.ACTIVE:
            raise ValueError(f"kms: primary of purpose '{self.purpose}' is not an active key")
        signing = self.kind is KeyKind.SIGNING
        if any((k.algorithm is not None) != signing for k in self.keys):
            raise ValueError(f"kms: only the signing keys of '{self.purpose}' name an algorithm")

    def get(self, version: int) -> KeyVersion | None:
        """The key with this version, or None."""
        for key in self.keys:
            if key.version == version:
                return key
        return None

    @property
    def primary_key(self) -> KeyVersion:
        """The key that encrypts and signs."""
        key = self.get(self.primary)
        if key is None:  # excluded by __post_init__
            raise KeyStateError(f"kms: purpose '{self.purpose}' has no primary")
        return key

    @property
    def algorithm(self) -> SigningAlgorithm | None:
        """The primary's signing algorithm (None for aead and prf purposes)."""
        return self.primary_key.algorithm

    @property
    def latest(self) -> int:
        """The highest version ever made for this purpose."""
        return self.keys[-1].version


@dataclass(frozen=True)
class RetiredKwk:
    """A KWK the keyring no longer uses that the root must still destroy."""

    version: int
    reference: bytes = field(repr=False)


@dataclass(frozen=True)
class Keyring:
    """The whole keyring: one :class:`PurposeRing` per purpose."""

    purposes: dict[str, PurposeRing]
    retired_kwks: tuple[RetiredKwk, ...] = ()

    def ring(self, purpose: str) -> PurposeRing:
        """The ring of ``purpose``; KeyStateError if the keyring has none."""
        found = self.purposes.get(purpose)
        if found is None:
            raise KeyStateError(f"kms: unknown purpose '{purpose}'")
        return found

    def with_purpose(
        self,
        purpose: str,
        kind: KeyKind,
        *,
        now: datetime,
        algorithm: SigningAlgorithm | None = None,
    ) -> Keyring:
        """Add ``purpose`` with a fresh version 1; KeyStateError if it exists.

        Signing purposes get ``algorithm`` (default EdDSA); other kinds take none.
        """
        if purpose in self.purposes:
            raise KeyStateError(f"kms: purpose '{purpose}' already exists")
        alg = _algorithm_for(purpose, kind, algorithm, default=SigningAlgorithm.EDDSA)
        ring = PurposeRing(purpose, kind, 1, (KeyVersion.generate(1, now=now, algorithm=alg),))
        return replace(self, purposes={**self.purposes, purpose: ring})

    def rotated(
        self, purpose: str, *, now: datetime, algorithm: SigningAlgorithm | None = None
    ) -> tuple[Keyring, int]:
        """New primary version for ``purpose``; the old primary becomes decrypt-only.

        A signing purpose keeps its primary's algorithm unless ``algorithm`` names another.
        """
        ring, now = self.ring(purpose), whole_seconds(now)
        alg = _algorithm_for(purpose, ring.kind, algorithm, default=ring.algorithm)
        new = KeyVersion.generate(ring.latest + 1, now=now, algorithm=alg)
        keys = tuple(
            replace(k, state=KeyState.DECRYPT_ONLY, changed_at=now)
            if k.state is KeyState.ACTIVE
            else k
            for k in ring.keys
        )
        return self._with(replace(ring, primary=new.version, keys=(*keys, new))), new.version

    def revoked(self, purpose: str, version: int, *, now: datetime) -> Keyring:
        """Make ``version`` refuse to decrypt; its material is kept until destroyed."""
        key = self._changeable(purpose, version, "revoke")
        if key.state is KeyState.REVOKED:
            raise KeyStateError(f"kms: version {version} of '{purpose}' is already revoked")
        revoked = replace(key, state=KeyState.REVOKED, changed_at=whole_seconds(now))
        return self._replace_key(purpose, revoked)

    def destroyed(self, purpose: str, version: int, *, now: datetime) -> Keyring:
        """Drop the material of ``version`` for good."""
        key = self._changeable(purpose, version, "destroy")
        gone = replace(key, state=KeyState.DESTROYED, changed_at=whole_seconds(now), material=None)
        return self._replace_key(purpose, gone)

    def with_retired_kwks(self, retired: tuple[RetiredKwk, ...]) -> Keyring:
        """The same keys with another list of KWKs awaiting destruction."""
        return replace(self, retired_kwks=retired)

    def _changeable(self, purpose: str, version: int, verb: str) -> KeyVersion:
        ring = self.ring(purpose)
        key = ring.get(version)
        if key is None:
            raise KeyStateError(f"kms: purpose '{purpose}' has no version {version}")
        if key.state is KeyState.DESTROYED:
            raise KeyStateError(f"kms: version {version} of '{purpose}' is already destroyed")
        if version == ring.primary:
            raise KeyStateError(
                f"kms: cannot {verb} version {version} of '{purpose}': it is the primary;"
                " rotate first"
            )
        return key

    def _replace_key(self, purpose: str, key: KeyVersion) -> Keyring:
        ring = self.ring(purpose)
        keys = tuple(key if k.version == key.version else k for k in ring.keys)
        return self._with(replace(ring, keys=keys))

    def _with(self, ring: PurposeRing) -> Keyring:
        return replace(self, purposes={**self.purposes, ring.purpose: ring})


def _algorithm_for(
    purpose: str,
    kind: KeyKind,
    algorithm: SigningAlgorithm | None,
    *,
    default: SigningAlgorithm | None,
) -> SigningAlgorithm | None:
    if kind is not KeyKind.SIGNING:
        if algorithm is not None:
            raise KeyStateError(f"kms: purpose '{purpose}' holds {kind.value} keys, not signing")
        return None
    return algorithm or default


def _is_p256_scalar(material: bytes) -> bool:
    return 0 < int.from_bytes(material, "big") < P256_ORDER


def whole_seconds(now: datetime) -> datetime:
    """``now`` in UTC without sub-second part: the precision the keyring stores."""
    return now.astimezone(UTC).replace(microsecond=0)


def utc(ts: int) -> datetime:
    """Seconds since the epoch as an aware UTC datetime."""
    return datetime.fromtimestamp(ts, tz=UTC)
