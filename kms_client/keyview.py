"""The unsealed keyring in memory: the request path, with no IO at all.

Built once per keyring version from a :class:`~kms_client.keyring.Keyring`;
replaced whole (never mutated) when the keyring changes, so a request sees
one consistent keyring. Ciphertexts name their key version, so a decryption
looks up exactly one key; revoked, destroyed and unknown versions, wrong
purposes, contexts or any altered byte all raise the one opaque
:class:`~kms_client.errors.DecryptionError`. Misuse by a caller (unknown
purpose, wrong kind) raises :class:`~kms_client.errors.KeyStateError`.
Encryptions are counted per key version for usage-based rotation; past the
GCM limit for random nonces (2^32 per key) encryption refuses.
"""

from __future__ import annotations

import hmac as hmac_mod
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kms_client import aead
from kms_client.config import MAX_NONCE_ENCRYPTIONS
from kms_client.errors import DecryptionError, KeyStateError
from kms_client.hkdf import hkdf_sha256
from kms_client.keyring import USABLE, KeyKind, Keyring, KeyState, PurposeRing
from kms_client.signing import KeySigner

type UsageKey = tuple[str, int]


@dataclass(frozen=True)
class KeyedDigest:
    """An HMAC-SHA256 output and the key version that made it."""

    version: int
    digest: bytes


@dataclass(frozen=True)
class DerivedKey:
    """Key material derived from a keyring key, with the version it came from."""

    version: int
    key: bytes = field(repr=False)


@dataclass(frozen=True)
class _Entry:
    state: KeyState
    material: bytes = field(repr=False)
    cipher: AESGCM | None = field(repr=False)
    signer: KeySigner | None = field(repr=False)


@dataclass(frozen=True)
class _Purpose:
    kind: KeyKind
    primary: int
    latest: int
    entries: Mapping[int, _Entry]


class KeyView:
    """Read-only, fast access to the keys of one keyring version."""

    def __init__(self, keyring: Keyring, *, known_usage: Mapping[UsageKey, int]) -> None:
        self._purposes = {name: _build(ring) for name, ring in keyring.purposes.items()}
        self._known = dict(known_usage)
        self._pending: Counter[UsageKey] = Counter()
        self._lock = threading.Lock()

    def primary_version(self, purpose: str) -> int:
        """The version that encrypts or signs for ``purpose``."""
        return self._purpose(purpose, None).primary

    def encrypt(self, purpose: str, plaintext: bytes, *, context: bytes) -> bytes:
        """AES-256-GCM under the primary of an aead purpose (format in :mod:`kms_client.aead`)."""
        p = self._purpose(purpose, KeyKind.AEAD)
        entry = p.entries[p.primary]
        key = (purpose, p.primary)
        with self._lock:
            if self._known.get(key, 0) + self._pending[key] >= MAX_NONCE_ENCRYPTIONS:
                raise KeyStateError(f"kms: key '{purpose}' v{p.primary} is used up; rotate it")
            self._pending[key] += 1
        if entry.cipher is None:  # excluded by _build for aead purposes
            raise KeyStateError(f"kms: purpose '{purpose}' cannot encrypt")
        return aead.encrypt(entry.cipher, p.primary, purpose, plaintext, context=context)

    def decrypt(self, purpose: str, ciphertext: bytes, *, context: bytes) -> bytes:
        """Decrypt with exactly the version the ciphertext names; one opaque error otherwise."""
        p = self._purpose(purpose, KeyKind.AEAD)
        entry = p.entries.get(aead.version_of(ciphertext))
        if entry is None or entry.state not in USABLE or entry.cipher is None:
            raise DecryptionError
        return aead.decrypt(entry.cipher, purpose, ciphertext, context=context)

    def hmac(self, purpose: str, data: bytes, *, version: int | None = None) -> KeyedDigest:
        """HMAC-SHA256 under ``version`` (default: the primary) of a prf purpose."""
        p = self._purpose(purpose, KeyKind.PRF)
        v, entry = self._usable(purpose, p, version)
        return KeyedDigest(v, hmac_mod.digest(entry.material, data, "sha256"))

    def derive_key(
        self,
        purpose: str,
        *,
        salt: bytes,
        info: bytes,
        version: int | None = None,
        length: int = 32,
    ) -> DerivedKey:
        """WARNING: raw key material for a caller's own cipher (the vault's per-record keys).

        HKDF-SHA256(ikm = key ``version`` of an aead or prf purpose, salt, info), ``length``
        1 to 8160 bytes (:func:`kms_client.hkdf.hkdf_sha256`).
        The caller must bind ``info`` to its own format and never log the result.
        """
        p = self._purpose(purpose, None)
        if p.kind is KeyKind.SIGNING:
            raise KeyStateError(f"kms: purpose '{purpose}' holds signing keys")
        v, entry = self._usable(purpose, p, version)
        return DerivedKey(v, hkdf_sha256(entry.material, salt=salt, info=info, length=length))

    def signer(self, purpose: str) -> KeySigner:
        """The primary signer of a signing purpose."""
        p = self._purpose(purpose, KeyKind.SIGNING)
        signer = p.entries[p.primary].signer
        if signer is None:  # excluded by _build for signing purposes
            raise KeyStateError(f"kms: purpose '{purpose}' cannot sign")
        return signer

    def verifiers(self, purpose: str) -> list[KeySigner]:
        """Signers whose public keys still verify: the primary first, then older usable ones."""
        p = self._purpose(purpose, KeyKind.SIGNING)
        order = [p.primary, *sorted((v for v in p.entries if v != p.primary), reverse=True)]
        return [
            s
            for v in order
            if p.entries[v].state in USABLE and (s := p.entries[v].signer) is not None
        ]

    def jwks(self, purpose: str) -> dict[str, list[dict[str, str]]]:
        """The public JWKS of a signing purpose: current and still-valid previous keys."""
        return {"keys": [s.public_jwk() for s in self.verifiers(purpose)]}

    def is_newer(self, purpose: str, version: int) -> bool:
        """True if ``version`` is newer than any this keyring has (another replica made it)."""
        p = self._purposes.get(purpose)
        return p is not None and version > p.latest

    def take_usage(self) -> dict[UsageKey, int]:
        """Encryptions counted since the last call (moved to the store by the manager)."""
        with self._lock:
            taken = dict(self._pending)
            self._pending.clear()
        return taken

    def record_totals(self, totals: Mapping[UsageKey, int], taken: Mapping[UsageKey, int]) -> None:
        """Totals the store returned for the counts ``take_usage`` handed out."""
        with self._lock:
            for key, total in totals.items():
                self._known[key] = max(self._known.get(key, 0), total)
            for key, count in taken.items():
                if key not in totals:  # not persisted: keep counting it locally
                    self._pending[key] += count

    def known_usage(self) -> dict[UsageKey, int]:
        """Totals known from the store plus local, not yet persisted counts."""
        with self._lock:
            keys = set(self._known) | set(self._pending)
            return {k: self._known.get(k, 0) + self._pending[k] for k in keys}

    def _purpose(self, purpose: str, kind: KeyKind | None) -> _Purpose:
        p = self._purposes.get(purpose)
        if p is None:
            raise KeyStateError(f"kms: unknown purpose '{purpose}'")
        if kind is not None and p.kind is not kind:
            raise KeyStateError(f"kms: purpose '{purpose}' holds {p.kind.value} keys, not {kind}")
        return p

    def _usable(self, purpose: str, p: _Purpose, version: int | None) -> tuple[int, _Entry]:
        v = p.primary if version is None else version
        entry = p.entries.get(v)
        if entry is None or entry.state not in USABLE:
            raise DecryptionError
        return v, entry


def _build(ring: PurposeRing) -> _Purpose:
    entries: dict[int, _Entry] = {}
    for key in ring.keys:
        if key.material is None:
            continue
        cipher = AESGCM(key.material) if ring.kind is KeyKind.AEAD else None
        signer = (
            KeySigner.from_material(ring.purpose, key.version, key.material, key.algorithm)
            if key.algorithm is not None  # set for exactly the keys of signing purposes
            else None
        )
        entries[key.version] = _Entry(key.state, key.material, cipher, signer)
    return _Purpose(ring.kind, ring.primary, ring.latest, entries)
