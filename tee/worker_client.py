"""The client the gateway pool and the CLI use to talk to a worker (docs/tee-protocol.md).

Over loopback TCP or a unix socket (``unix:/path``); every call has a
timeout. Errors say whose fault it was:

- :class:`~tee.errors.WorkerError` (503): the worker could not be reached,
  timed out, or answered outside the protocol (the pool evicts it).
- :class:`~tee.errors.WorkerRefusal` (``info`` / ``attest``) and
  :class:`~tee.errors.JobRefused` (``run_job``): the worker answered a JSON
  error; ``status`` and ``code`` are the worker's (``stale_key``,
  ``expired``, ``kms_refused``, ...).

Nothing the worker answers is trusted here: evidence is verified by the
caller (tee.admission) and job answers are opened under R (tee.envelope).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

import aiohttp

from tee.address import WorkerAddress
from tee.binding import NONCE_SIZE
from tee.errors import JobRefused, WorkerError, WorkerRefusal
from tee.wire import b64d, b64e

MAX_ANSWER = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """``GET /v1/info`` as the worker states it (unverified)."""

    tee_id: str
    platform: str
    measurement: str  # hex
    jobs: tuple[str, ...]
    public_key: bytes
    generation: int


@dataclass(frozen=True, slots=True)
class AttestResult:
    """``POST /v1/attest``: evidence for a new key pair (verify it with tee.admission)."""

    platform: str  # as claimed: the verifier comes from the registry, not from here
    evidence: bytes = field(repr=False)
    public_key: bytes
    generation: int


class WorkerClient:
    """One worker's RPC client; owns its HTTP connection pool (close it, or ``async with``)."""

    def __init__(
        self,
        address: str | WorkerAddress,
        *,
        timeout: float = 10.0,
        attest_timeout: float = 30.0,
    ) -> None:
        self.address = (
            address if isinstance(address, WorkerAddress) else WorkerAddress.parse(address)
        )
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        # Attesting includes the worker's own round trip to the KMS.
        self._attest_timeout = aiohttp.ClientTimeout(total=attest_timeout)
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection pool."""
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def info(self) -> WorkerInfo:
        """The worker's identity, measurement, jobs and current key (as claimed)."""
        doc = await self._call("GET", "/v1/info", None, self._timeout, WorkerRefusal)
        try:
            jobs = doc["jobs"]
            if not isinstance(jobs, list) or not all(isinstance(j, str) for j in jobs):
                raise TypeError("jobs")
            return WorkerInfo(
                tee_id=_str(doc, "tee_id"),
                platform=_str(doc, "platform"),
                measurement=_str(doc, "measurement"),
                jobs=tuple(jobs),
                public_key=b64d(doc["public_key"]),
                generation=_int(doc, "generation"),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise WorkerError(f"tee: worker {self.address}: info outside the protocol") from e

    async def attest(self, nonce: bytes) -> AttestResult:
        """Evidence binding ``nonce`` and a NEW worker key pair (the worker rotates its key)."""
        if len(nonce) != NONCE_SIZE:
            raise ValueError(f"tee: the nonce must be {NONCE_SIZE} bytes")
        doc = await self._call(
            "POST", "/v1/attest", {"nonce": b64e(nonce)}, self._attest_timeout, WorkerRefusal
        )
        try:
            return AttestResult(
                platform=_str(doc, "platform"),
                evidence=b64d(doc["evidence"]),
                public_key=b64d(doc["public_key"]),
                generation=_int(doc, "generation"),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise WorkerError(f"tee: worker {self.address}: attest outside the protocol") from e

    async def run_job(self, job: str, envelope: Mapping[str, object]) -> dict[str, object]:
        """POST ``envelope`` to ``/v1/jobs/{job}``; the sealed response (open it under R)."""
        if not job or "/" in job:
            raise ValueError("tee: a job name has no slash")
        return await self._call("POST", f"/v1/jobs/{job}", envelope, self._timeout, JobRefused)

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            connector: aiohttp.BaseConnector
            if self.address.unix is not None:
                connector = aiohttp.UnixConnector(path=str(self.address.unix))
            else:
                connector = aiohttp.TCPConnector()
            self._http = aiohttp.ClientSession(
                base_url=self.address.base_url, connector=connector, trust_env=False
            )
        return self._http

    async def _call(
        self,
        method: str,
        path: str,
        body: Mapping[str, object] | None,
        limit: aiohttp.ClientTimeout,
        refusal: type[WorkerRefusal] | type[JobRefused],
    ) -> dict[str, object]:
        where = f"tee: worker {self.address}: {method} {path.split('/')[2]}"
        try:
            async with self._session().request(
                method, path, json=body, timeout=limit, allow_redirects=False
            ) as resp:
                raw = await resp.content.read(MAX_ANSWER + 1)
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise WorkerError(f"{where}: unreachable ({type(e).__name__})") from e
        if len(raw) > MAX_ANSWER:
            raise WorkerError(f"{where}: answer too large")
        try:
            doc = json.loads(raw)
        except ValueError as e:
            raise WorkerError(f"{where}: answered {status} without JSON") from e
        if not isinstance(doc, dict):
            raise WorkerError(f"{where}: answered {status} outside the protocol")
        if status == 200:
            return doc
        code = doc.get("error")
        if 400 <= status < 500 and isinstance(code, str) and code.isidentifier():
            raise refusal(f"{where}: refused ({status} {code})", status=status, code=code)
        raise WorkerError(f"{where}: failed ({status})")


def _str(doc: Mapping[str, object], name: str) -> str:
    value = doc[name]
    if not isinstance(value, str):
        raise TypeError(name)
    return value


def _int(doc: Mapping[str, object], name: str) -> int:
    value = doc[name]
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(name)
    return value
