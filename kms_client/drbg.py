"""An HKDF-SHA256 deterministic random bit generator with entropy augmentation.

With an HSM (or a cloud KMS) configured as root, tokengate mixes the root's
own RNG into its randomness without a root call per token: a local DRBG is
seeded from OS entropy and root entropy and reseeded from both on a schedule.

Construction (``E`` = 48 bytes of OS entropy, ``A`` = additional input such as
root RNG output, ``frame(A)`` = 4-byte big-endian length || A):

    instantiate:  K = HKDF-SHA256(salt="tokengate/drbg/v1", ikm=E || frame(A),
                                  info="tokengate/drbg/v1/instantiate" || P, L=32);  c = 0
    generate(n):  per chunk of m <= 4096 bytes:
                  c = c + 1
                  T = HKDF-Expand-SHA256(K, info="tokengate/drbg/v1/generate"
                                             || be64(c) || be32(m), L=32+m)
                  K = T[:32];  output T[32:]
    reseed(A):    K = HKDF-SHA256(salt=K, ikm=E || frame(A),
                                  info="tokengate/drbg/v1/reseed", L=32);  c = 0

Rules:
- The state is the key ``K`` and the counter ``c``. Every generate replaces
  ``K`` by one-way derivation before returning (backtracking resistance: a
  later state compromise reveals no earlier output).
- A reseed hashes the old ``K`` with fresh inputs: a weak input never lowers
  the state's entropy, and fresh OS (and root) entropy makes the output
  unpredictable again after a compromise (prediction resistance from the next
  reseed on).
- Before a generate, the DRBG reseeds inline from OS entropy alone when the
  policy's interval, byte budget or request budget is spent. OS entropy is
  local and cheap; the root is never called from ``generate``.
- Root entropy enters only through :meth:`HkdfDrbg.augment`, driven by
  :class:`DrbgReseeder` on its own cadence (at start-up and every
  ``interval`` seconds), never per call.
- When the policy sets ``augment_max_age`` (a root RNG is configured),
  ``generate`` refuses with :class:`DrbgError` if the last successful root
  reseed is older than that, or never happened: no silent fallback to OS-only
  randomness while the HSM is unreachable.
- A forked child reseeds from OS entropy before its first output, so parent
  and child never share a stream.
- All state changes hold one lock: the generator is thread-safe.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand
from prometheus_client import Counter

from kms_client.errors import KmsError
from tokengate.errors import ConfigError, GatewayError

log = logging.getLogger(__name__)

_LABEL = b"tokengate/drbg/v1"
_INFO_INSTANTIATE = _LABEL + b"/instantiate"
_INFO_GENERATE = _LABEL + b"/generate"
_INFO_RESEED = _LABEL + b"/reseed"
_OS_ENTROPY_BYTES = 48
_CHUNK = 4096
_MIN_ROOT_ENTROPY = 32

RESEEDS = Counter(
    "tokengate_drbg_reseeds_total",
    "DRBG reseeds by entropy source (os: OS entropy only; root: OS plus root RNG).",
    ["source"],
)
AUGMENT_FAILURES = Counter(
    "tokengate_drbg_augment_failures_total",
    "Failed attempts to fetch root RNG output for a DRBG reseed.",
)

EntropySource = Callable[[int], Awaitable[bytes | None]]
"""An async source of root randomness, e.g. ``RootBackend.random``."""


class DrbgError(KmsError):
    """The DRBG cannot produce output it can vouch for (stale or missing root entropy)."""

    status = 503
    code = "rng_unavailable"


@dataclass(frozen=True)
class ReseedPolicy:
    """When the DRBG reseeds on its own and how fresh root entropy must be."""

    interval: float = 60.0
    """Seconds after which the next generate first reseeds from OS entropy."""
    max_bytes: int = 1 << 20
    """Output bytes after which the next generate first reseeds from OS entropy."""
    max_requests: int = 1 << 16
    """Generate calls after which the next one first reseeds from OS entropy."""
    augment_max_age: float | None = None
    """Seconds a root reseed stays valid; None when no root RNG is configured."""

    def __post_init__(self) -> None:
        if self.interval <= 0 or self.max_bytes <= 0 or self.max_requests <= 0:
            raise ConfigError("kms: drbg: reseed interval and budgets must be positive")
        if self.augment_max_age is not None and self.augment_max_age <= 0:
            raise ConfigError("kms: drbg: augment_max_age must be positive")


def _frame(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def _hkdf(salt: bytes, ikm: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=SHA256(), length=32, salt=salt, info=info).derive(ikm)


class HkdfDrbg:
    """Thread-safe HKDF-SHA256 DRBG; see the module docstring for its rules."""

    def __init__(
        self,
        *,
        policy: ReseedPolicy | None = None,
        entropy: Callable[[int], bytes] = os.urandom,
        now: Callable[[], float] = time.monotonic,
        personalization: bytes = b"",
        name: str = "hkdf-drbg",
    ) -> None:
        self.name = name
        """Short description for logs and health output (``kms_client.rng.RandomSource``)."""
        self._policy = policy or ReseedPolicy()
        self._entropy = entropy
        self._now = now
        self._lock = threading.Lock()
        self._key = _hkdf(_LABEL, self._fresh(b""), _INFO_INSTANTIATE + personalization)
        self._counter = 0
        self._bytes = 0
        self._seeded_at = now()
        self._augmented_at: float | None = None
        self._pid = os.getpid()

    @property
    def policy(self) -> ReseedPolicy:
        """The reseed policy this generator follows."""
        return self._policy

    def generate(self, n: int) -> bytes:
        """``n`` random bytes; reseeds from OS entropy first when the policy says so."""
        if n < 0:
            raise ValueError("kms: drbg: negative length")
        with self._lock:
            self._check_augmented()
            if self._reseed_due(n):
                self._reseed_locked(b"")
                RESEEDS.labels(source="os").inc()
            out = bytearray()
            while len(out) < n:
                m = min(_CHUNK, n - len(out))
                self._counter += 1
                info = _INFO_GENERATE + self._counter.to_bytes(8, "big") + m.to_bytes(4, "big")
                block = HKDFExpand(algorithm=SHA256(), length=32 + m, info=info).derive(self._key)
                self._key = block[:32]
                out += block[32:]
            self._bytes += n
            return bytes(out)

    def random_bytes(self, n: int) -> bytes:
        """Same as :meth:`generate`; makes the DRBG a ``kms_client.rng.RandomSource``."""
        return self.generate(n)

    def reseed(self, additional: bytes = b"") -> None:
        """Mix fresh OS entropy (and ``additional``) into the state now."""
        with self._lock:
            self._reseed_locked(additional)
        RESEEDS.labels(source="os").inc()

    def augment(self, root_entropy: bytes) -> None:
        """Reseed from OS entropy plus ``root_entropy`` (>= 32 bytes of root RNG output)."""
        if len(root_entropy) < _MIN_ROOT_ENTROPY:
            raise DrbgError(f"kms: drbg: root entropy too short ({len(root_entropy)} bytes)")
        with self._lock:
            self._reseed_locked(root_entropy)
            self._augmented_at = self._now()
        RESEEDS.labels(source="root").inc()

    def _fresh(self, additional: bytes) -> bytes:
        entropy = self._entropy(_OS_ENTROPY_BYTES)
        if len(entropy) != _OS_ENTROPY_BYTES:
            raise DrbgError("kms: drbg: os entropy source returned a short read")
        return entropy + _frame(additional)

    def _reseed_locked(self, additional: bytes) -> None:
        self._key = _hkdf(self._key, self._fresh(additional), _INFO_RESEED)
        self._counter = 0
        self._bytes = 0
        self._seeded_at = self._now()
        self._pid = os.getpid()

    def _reseed_due(self, n: int) -> bool:
        p = self._policy
        return (
            self._pid != os.getpid()
            or self._now() - self._seeded_at >= p.interval
            or self._bytes + n > p.max_bytes
            or self._counter >= p.max_requests
        )

    def _check_augmented(self) -> None:
        max_age = self._policy.augment_max_age
        if max_age is None:
            return
        if self._augmented_at is None:
            raise DrbgError("kms: drbg: no root entropy yet (augmentation required)")
        if self._now() - self._augmented_at > max_age:
            raise DrbgError("kms: drbg: root entropy is stale (last root reseed too old)")


class DrbgReseeder:
    """Feeds root RNG output into a DRBG at start-up and every ``interval`` seconds.

    This is the only place that calls the root for randomness. Failures are
    counted and logged; the DRBG's ``augment_max_age`` turns a long outage into
    refused output instead of silent OS-only operation.
    """

    def __init__(
        self,
        drbg: HkdfDrbg,
        source: EntropySource,
        *,
        interval: float = 300.0,
        nbytes: int = 48,
    ) -> None:
        if interval <= 0:
            raise ConfigError("kms: drbg: reseeder interval must be positive")
        if nbytes < _MIN_ROOT_ENTROPY:
            raise ConfigError("kms: drbg: reseeder must fetch at least 32 bytes")
        max_age = drbg.policy.augment_max_age
        if max_age is not None and max_age <= interval:
            raise ConfigError("kms: drbg: augment_max_age must exceed the reseeder interval")
        self._drbg = drbg
        self._source = source
        self._interval = interval
        self._nbytes = nbytes
        self._task: asyncio.Task[None] | None = None

    async def augment_once(self) -> None:
        """Fetch root randomness and reseed the DRBG with it; raise DrbgError on failure."""
        try:
            data = await self._source(self._nbytes)
        except GatewayError as e:
            AUGMENT_FAILURES.inc()
            raise DrbgError(f"kms: drbg: root rng failed: {e}") from e
        except Exception as e:
            # Anything else from a root client (a library bug, a dropped link) is
            # still only "no root entropy now": staleness then fails output closed.
            AUGMENT_FAILURES.inc()
            raise DrbgError(f"kms: drbg: root rng failed ({type(e).__name__})") from e
        if data is None:
            AUGMENT_FAILURES.inc()
            raise DrbgError("kms: drbg: root has no rng")
        self._drbg.augment(data)

    async def run(self) -> None:
        """Augment every ``interval`` seconds until cancelled."""
        while True:
            try:
                await self.augment_once()
            except DrbgError as e:
                log.warning("%s", e)
            await asyncio.sleep(self._interval)

    async def start(self) -> None:
        """Augment once (raising if the root cannot), then keep augmenting in a named task."""
        await self.augment_once()
        self._task = asyncio.create_task(self._run_after_first(), name="tokengate-drbg-reseeder")

    async def stop(self) -> None:
        """Cancel the background task; idempotent."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        await asyncio.wait([task])

    async def _run_after_first(self) -> None:
        await asyncio.sleep(self._interval)
        await self.run()
