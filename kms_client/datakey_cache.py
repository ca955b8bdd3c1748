"""A bounded cache of KMS data keys, so envelope encryption does not call the KMS per message.

Rules:
- An encryption data key is reused only for the same encryption context and
  only while all three bounds hold: younger than ``max_age`` seconds, fewer
  than ``max_uses`` messages, and at most ``max_bytes`` plaintext bytes in
  total (counting the message about to be encrypted). A key that fails a
  bound is evicted and a fresh one is generated: a leaked data key exposes
  at most one bounded batch of messages.
- A message larger than ``max_bytes`` on its own gets a fresh, uncached key.
- Decrypted data keys are cached per (ciphertext digest, context) for at most
  ``max_age`` seconds.
- At most ``capacity`` entries per kind; the least recently used goes first.
- Metrics count hits, misses and evictions (with the reason) and show the
  number of entries; labels are the cache name, operation and reason only,
  never a context value, key id or key material.
- The cache belongs to one event loop and is not thread-safe. Two concurrent
  misses for one context may each generate a key; both stay within bounds.
- Python cannot wipe ``bytes``: evicted keys become garbage, not zeroes.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from tokengate.errors import ConfigError


@dataclass(frozen=True)
class DataKey:
    """A 256-bit data key and its KMS-encrypted form (store only ``ciphertext``)."""

    plaintext: bytes = field(repr=False)
    ciphertext: bytes
    key_id: str


class DataKeySource(Protocol):
    """A KMS that makes and opens data keys under an encryption context."""

    async def generate_data_key(self, context: Mapping[str, str]) -> DataKey:
        """A fresh data key bound to ``context``."""
        ...

    async def decrypt_data_key(self, ciphertext: bytes, context: Mapping[str, str]) -> bytes:
        """The plaintext of a data key made under ``context``."""
        ...


class DataKeyCacheMetrics:
    """Prometheus series for data-key caches, registered once per registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.hits = Counter(
            "tokengate_datakey_cache_hits_total",
            "Data keys served from the cache.",
            ["cache", "op"],
            registry=registry,
        )
        self.misses = Counter(
            "tokengate_datakey_cache_misses_total",
            "Data keys fetched from the KMS because the cache had none usable.",
            ["cache", "op"],
            registry=registry,
        )
        self.evictions = Counter(
            "tokengate_datakey_cache_evictions_total",
            "Cached data keys dropped, by reason (age, uses, bytes, capacity, clear).",
            ["cache", "reason"],
            registry=registry,
        )
        self.entries = Gauge(
            "tokengate_datakey_cache_entries",
            "Data keys held in the cache.",
            ["cache"],
            registry=registry,
        )


@functools.cache
def default_metrics() -> DataKeyCacheMetrics:
    """The series on the process-wide default registry (created on first use)."""
    return DataKeyCacheMetrics(REGISTRY)


@dataclass
class _Entry:
    key: DataKey
    created: float
    uses: int = 0
    nbytes: int = 0


@dataclass
class _Plain:
    plaintext: bytes = field(repr=False)
    created: float


_ENCRYPT: Final = "encrypt"
_DECRYPT: Final = "decrypt"


def _context_key(context: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(context.items()))


class CachingDataKeys:
    """Data keys from ``source``, reused within age, use and byte bounds."""

    def __init__(
        self,
        source: DataKeySource,
        *,
        max_age: float = 300.0,
        max_uses: int = 1000,
        max_bytes: int = 1 << 30,
        capacity: int = 1024,
        name: str = "default",
        now: Callable[[], float] = time.monotonic,
        metrics: DataKeyCacheMetrics | None = None,
    ) -> None:
        if max_age <= 0 or max_uses < 1 or max_bytes < 1 or capacity < 1:
            raise ConfigError(
                "kms: datakey cache: max_age, max_uses, max_bytes, capacity must be > 0"
            )
        self._source = source
        self._max_age = max_age
        self._max_uses = max_uses
        self._max_bytes = max_bytes
        self._capacity = capacity
        self._name = name
        self._now = now
        self._metrics = metrics or default_metrics()
        self._enc: OrderedDict[tuple[tuple[str, str], ...], _Entry] = OrderedDict()
        self._dec: OrderedDict[tuple[bytes, tuple[tuple[str, str], ...]], _Plain] = OrderedDict()
        self._update_gauge()

    async def for_encrypt(self, context: Mapping[str, str], nbytes: int) -> DataKey:
        """A data key to encrypt one message of ``nbytes`` plaintext bytes under ``context``."""
        if nbytes < 0:
            raise ValueError("kms: datakey cache: negative message size")
        ck = _context_key(context)
        entry = None if nbytes > self._max_bytes else self._enc.get(ck)
        if entry is not None:
            reason = self._spent(entry, nbytes)
            if reason is None:
                entry.uses += 1
                entry.nbytes += nbytes
                self._enc.move_to_end(ck)
                self._metrics.hits.labels(cache=self._name, op=_ENCRYPT).inc()
                return entry.key
            del self._enc[ck]
            self._evicted(reason)
        self._metrics.misses.labels(cache=self._name, op=_ENCRYPT).inc()
        key = await self._source.generate_data_key(dict(context))
        if nbytes <= self._max_bytes:
            self._enc[ck] = _Entry(key, self._now(), uses=1, nbytes=nbytes)
            self._trim(self._enc)
        return key

    async def for_decrypt(self, ciphertext: bytes, context: Mapping[str, str]) -> bytes:
        """The plaintext of a data key, from the cache if opened less than ``max_age`` ago."""
        ck = (hashlib.sha256(ciphertext).digest(), _context_key(context))
        plain = self._dec.get(ck)
        if plain is not None:
            if self._now() - plain.created < self._max_age:
                self._dec.move_to_end(ck)
                self._metrics.hits.labels(cache=self._name, op=_DECRYPT).inc()
                return plain.plaintext
            del self._dec[ck]
            self._evicted("age")
        self._metrics.misses.labels(cache=self._name, op=_DECRYPT).inc()
        plaintext = await self._source.decrypt_data_key(ciphertext, dict(context))
        self._dec[ck] = _Plain(plaintext, self._now())
        self._trim(self._dec)
        return plaintext

    def clear(self) -> None:
        """Drop every cached key (at seal or after a key-state change)."""
        n = len(self._enc) + len(self._dec)
        self._enc.clear()
        self._dec.clear()
        if n:
            self._metrics.evictions.labels(cache=self._name, reason="clear").inc(n)
        self._update_gauge()

    def __len__(self) -> int:
        return len(self._enc) + len(self._dec)

    def _spent(self, entry: _Entry, nbytes: int) -> str | None:
        if self._now() - entry.created >= self._max_age:
            return "age"
        if entry.uses >= self._max_uses:
            return "uses"
        if entry.nbytes + nbytes > self._max_bytes:
            return "bytes"
        return None

    def _trim[K, V](self, entries: OrderedDict[K, V]) -> None:
        while len(entries) > self._capacity:
            entries.popitem(last=False)
            self._evicted("capacity")
        self._update_gauge()

    def _evicted(self, reason: str) -> None:
        self._metrics.evictions.labels(cache=self._name, reason=reason).inc()
        self._update_gauge()

    def _update_gauge(self) -> None:
        self._metrics.entries.labels(cache=self._name).set(len(self))
