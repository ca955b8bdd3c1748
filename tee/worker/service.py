"""What the worker does for each RPC, without HTTP: info, attest, run a job.

Rules (docs/tee-protocol.md, "Worker RPC" and "The double envelope"):
- ``attest`` makes a new key pair (generation + 1), attests it to the KMS
  first, then answers evidence binding the new key and the caller's nonce.
  Rotations are serialized.
- A job envelope is refused in clear (``WorkerRefusal``) before any key is
  used when it is malformed (400 ``bad_envelope``), names another job than
  the path or one the bundle lacks (400 ``unknown_job``), another TEE (403
  ``wrong_tee``), a key the worker no longer holds (410 ``stale_key``) or has
  expired (410 ``expired``), or when layer 1 does not open (400
  ``bad_envelope``).
- Once layer 1 is open the worker holds R, and every outcome is sealed to R
  (HTTP 200), so only the gateway that made the envelope can read it and
  nobody can forge it: ``{"values": [...]}`` or ``{"error": code}`` with code
  ``release_refused``, ``kms_unavailable``, ``bad_envelope`` (layer 2),
  ``job_failed``, ``job_timeout`` or ``bad_result``.
- Jobs run in a bounded thread pool with a timeout. A job's exception is
  logged by type only: its message could quote a value. Values, keys and
  results are never logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from tee.binding import NONCE_SIZE
from tee.bundle import Bundle, Job
from tee.envelope import (
    Binding,
    Envelope,
    Inner,
    open_inner,
    open_outer,
    parse_envelope,
    seal_response,
)
from tee.errors import EnvelopeError, KeyBrokerRefused, KeyBrokerUnavailable, WorkerRefusal
from tee.wire import b64d, b64e
from tee.worker.attester import Attester
from tee.worker.kbs import KeyBroker
from tee.worker.keys import KeyRing, WorkerKey

log = logging.getLogger("tokengate.tee.worker")


class Worker:
    """One worker process: its TEE id, bundle, keys, attester and KMS client."""

    def __init__(
        self,
        *,
        tee_id: str,
        bundle: Bundle,
        attester: Attester,
        broker: KeyBroker,
        keys: KeyRing | None = None,
        job_timeout: float = 30.0,
        max_concurrency: int = 4,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.tee_id = tee_id
        self.bundle = bundle
        self._attester = attester
        self._broker = broker
        self._keys = keys if keys is not None else KeyRing()
        self._job_timeout = job_timeout
        self._now = now
        self._rotate = asyncio.Lock()
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="tee-job")

    def close(self) -> None:
        """Stop taking jobs; a job still running in a thread is not waited for."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def info(self) -> dict[str, object]:
        """``GET /v1/info``: identity, measurement, jobs, current key (nothing secret)."""
        key = self._keys.current
        return {
            "tee_id": self.tee_id,
            "platform": self._attester.platform.value,
            "measurement": self._attester.measurement.hex(),
            "jobs": sorted(self.bundle.jobs),
            "public_key": b64e(key.public),
            "generation": key.generation,
        }

    async def attest(self, body: object) -> dict[str, object]:
        """``POST /v1/attest``: a new key pair, attested to the KMS, and evidence for the caller."""
        if not isinstance(body, dict) or set(body) != {"nonce"}:
            raise WorkerRefusal("worker: attest takes {nonce}")
        try:
            nonce = b64d(body["nonce"])
        except ValueError as e:
            raise WorkerRefusal("worker: the nonce must be base64url") from e
        if len(nonce) != NONCE_SIZE:
            raise WorkerRefusal(f"worker: the nonce must be {NONCE_SIZE} bytes")
        async with self._rotate:
            key = self._keys.rotate()
            self._broker.forget(k.public for k in self._keys.live())
            log.info("tee worker: new key generation %d", key.generation)
            try:  # the KMS knows the new key before anyone else
                await self._broker.attest(key)
            except KeyBrokerRefused as e:
                log.warning("tee worker: the KMS refused to attest this worker (%s)", e.code)
                raise WorkerRefusal(
                    f"worker: the KMS refused to attest this worker ({e.code})",
                    status=403,
                    code="kms_refused",
                ) from e
            evidence = self._attester.evidence(nonce, key.public, now=datetime.now(UTC))
        return {
            "platform": self._attester.platform.value,
            "evidence": b64e(evidence),
            "public_key": b64e(key.public),
            "generation": key.generation,
        }

    async def run_job(self, job: str, body: object) -> dict[str, object]:
        """``POST /v1/jobs/{job}``: the sealed response, or WorkerRefusal before R is known."""
        envelope, key, response_key, inner = self._open_outer(job, body)
        binding = envelope.binding
        started = time.monotonic()
        outcome = "ok"
        try:
            values = await self._open_inner(binding, key, inner)
            results = await self._run(self.bundle.jobs[job], values)
        except _Sealed as e:
            outcome = e.code
            return seal_response(binding, response_key, error=e.code)
        finally:
            log.info(
                "tee worker: job %s tenant %s request %s: %s in %.1f ms",
                job,
                binding.tenant,
                binding.request_id,
                outcome,
                (time.monotonic() - started) * 1000,
            )
        return seal_response(binding, response_key, values=results)

    def _open_outer(self, job: str, body: object) -> tuple[Envelope, WorkerKey, bytes, Inner]:
        try:
            envelope = parse_envelope(body)
        except EnvelopeError as e:
            raise WorkerRefusal("worker: malformed envelope", code="bad_envelope") from e
        binding = envelope.binding
        if binding.job != job or job not in self.bundle.jobs:
            raise WorkerRefusal("worker: no such job in this bundle", code="unknown_job")
        if binding.tee_id != self.tee_id:
            raise WorkerRefusal(
                "worker: the envelope is for another TEE", status=403, code="wrong_tee"
            )
        key = self._keys.find(binding.worker_key)
        if key is None:
            raise WorkerRefusal("worker: the envelope's key is gone", status=410, code="stale_key")
        if binding.expires_at <= self._now():
            raise WorkerRefusal("worker: the envelope has expired", status=410, code="expired")
        try:
            inner = open_outer(envelope, key.private)
        except EnvelopeError as e:
            raise WorkerRefusal("worker: the envelope does not open", code="bad_envelope") from e
        return envelope, key, inner.response_key, inner

    async def _open_inner(self, binding: Binding, key: WorkerKey, inner: Inner) -> list[str]:
        try:
            k2 = await self._broker.release(binding, key)
        except KeyBrokerRefused as e:
            log.warning("tee worker: the KMS refused release (%s)", e.code)
            raise _Sealed("release_refused") from e
        except KeyBrokerUnavailable as e:
            log.warning("tee worker: the KMS is unavailable (%s)", e)
            raise _Sealed("kms_unavailable") from e
        except EnvelopeError as e:
            log.warning("tee worker: the released key does not open")
            raise _Sealed("release_refused") from e
        try:
            return open_inner(binding, inner, k2)
        except EnvelopeError as e:
            raise _Sealed("bad_envelope") from e

    async def _run(self, fn: Job, values: list[str]) -> list[str]:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._job_timeout):
                results = await loop.run_in_executor(self._pool, fn, list(values))
        except TimeoutError as e:
            log.warning("tee worker: a job ran longer than %.1f s", self._job_timeout)
            raise _Sealed("job_timeout") from e
        except Exception as e:  # the bundle's code failed: never its message (values)
            log.warning("tee worker: a job raised %s", type(e).__name__)
            raise _Sealed("job_failed") from e
        if (
            not isinstance(results, list)
            or len(results) != len(values)
            or not all(isinstance(r, str) for r in results)
        ):
            log.warning("tee worker: a job returned something other than one string per value")
            raise _Sealed("bad_result")
        return results


class _Sealed(Exception):  # internal control flow: never escapes run_job
    """An outcome after layer 1 opened: answered sealed to R as ``{"error": code}``."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code
