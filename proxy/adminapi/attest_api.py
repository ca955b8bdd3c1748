"""``add_attestation_api``: verify TEE attestation evidence on the admin listener.

``POST /.tokengate/admin/v1/attestation/verify`` (auditor and up: it reads
and changes nothing, and auditors are who checks attestation) takes
:class:`~proxy.adminapi.attest_body.VerifyBody` and answers the
:class:`~tee.report.Verdict` as JSON, plus the evidence's SHA-256 (the name it
has in the audit log). Rules:

- 200 for both verdicts: ``verdict`` says ``verified`` or ``refused`` and a
  refusal names its ``failed_check``; 400/413/415 for a malformed request;
- the platform in the body chooses the verifier, never the evidence;
- ``sim`` evidence is refused (check ``platform``) unless the gateway's config
  allows the simulated TEE (``sim_key`` returns its development key; a key
  that cannot be read refuses too);
- every verdict is audited (``attest.verify``) before it is answered; one
  that cannot be recorded is not given (503);
- verification runs in a thread (certificate chains and DCAP TCB evaluation
  are CPU work), at most :data:`CONCURRENCY` at a time per gateway worker.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.auditor import Auditor
from proxy.adminapi.acts import Actor
from proxy.adminapi.app import ConfigSource, LiveKeys, guarded
from proxy.adminapi.attest_body import MAX_BODY, VerifyBody, VerifyRequest, verify_request
from proxy.adminapi.bodies import read_body
from proxy.adminapi.keys import Role
from proxy.adminapi.openapi import API
from proxy.adminapi.recorder import ActRecorder
from proxy.teeconfig import TeeConfig
from proxy.teesetup import verification_of
from tee.attestation import Platform
from tee.errors import EvidenceRefused
from tee.report import Verdict, check_evidence
from tokengate.errors import ConfigError

CONCURRENCY: Final = 2
SOURCE: Final = "admin-api"
log = logging.getLogger("tokengate.adminapi")


@dataclass(frozen=True, slots=True)
class AttestOperation:
    """The route: method, path, OpenAPI operationId, weakest role."""

    method: str
    path: str
    operation_id: str
    role: Role


VERIFY: Final = AttestOperation(
    "POST", f"{API}/attestation/verify", "verifyAttestation", Role.AUDITOR
)
ATTEST_OPERATIONS: Final = (VERIFY,)

SimKey = Callable[[], Ed25519PublicKey | None]
Clock = Callable[[], datetime]


def _no_sim() -> Ed25519PublicKey | None:
    return None


def _now() -> datetime:
    return datetime.now(UTC)


class AttestationChecker:
    """Verifies one request's evidence off the event loop and audits the verdict."""

    def __init__(self, auditor: Auditor, *, sim_key: SimKey, clock: Clock) -> None:
        self._record = ActRecorder(auditor)
        self._sim_key = sim_key
        self._clock = clock
        self._slots = asyncio.Semaphore(CONCURRENCY)

    def now(self) -> datetime:
        """The default verification time."""
        return self._clock()

    def _check(self, req: VerifyRequest) -> Verdict:
        """The verdict (in a worker thread: verifiers and the sim key file are blocking)."""
        sim_key = None
        if req.platform is Platform.SIM:
            try:
                sim_key = self._sim_key()
            except ConfigError:  # allowed, but its key cannot be read: fail closed
                log.warning("admin: the simulated TEE's development key cannot be read")
                refused = EvidenceRefused("platform", "the simulated TEE's key cannot be read")
                return Verdict(req.platform, req.at, refused=refused, source=SOURCE)
        return check_evidence(
            req.platform,
            req.evidence,
            expect=req.expect,
            policy=req.policy,
            at=req.at,
            source=SOURCE,
            sim_key=sim_key,
        )

    async def verify(self, actor: Actor, req: VerifyRequest) -> tuple[Verdict, str]:
        """The verdict on ``req`` and the evidence's SHA-256, once the verdict is recorded."""
        async with self._slots:
            verdict = await asyncio.to_thread(self._check, req)
        digest = hashlib.sha256(req.evidence).hexdigest()
        claims = verdict.claims
        await self._record.emit(
            "attest.verify",
            platform=req.platform.value,
            verdict="verified" if verdict.verified else "refused",
            check=verdict.refused.check if verdict.refused else None,
            evidence_sha256=digest,
            evidence_bytes=len(req.evidence),
            verified_at=req.at.isoformat(),
            tcb_status=claims.tcb_status if claims else None,
            debug=claims.debug if claims else None,
            measurements=[f"{k}={v}" for k, v in sorted(claims.measurements.items())]
            if claims
            else None,
            **actor.fields(),
        )
        return verdict, digest


async def _verify(
    request: web.Request, actor: Actor, rid: str, checker: AttestationChecker
) -> web.Response:
    body = await read_body(request, VerifyBody, limit=MAX_BODY)
    verdict, digest = await checker.verify(actor, verify_request(body, now=checker.now()))
    answer = {**verdict.as_dict(), "evidence_sha256": digest}
    headers = {"Cache-Control": "no-store", "X-Request-ID": rid}
    return web.json_response(answer, headers=headers)


def simulated_key(tee: TeeConfig | None, data_dir: Path) -> Ed25519PublicKey | None:
    """The development key when the ``tee:`` section sets ``insecure_simulated_tee``, else None.

    The same key the pool verifies simulated workers with (``tee.sim_key``),
    read from its file on each call (blocking: call it in a thread);
    ConfigError when the file cannot be read.
    """
    if tee is None:
        return None
    return verification_of(tee, data_dir).sim_key


def add_attestation_api(
    app: web.Application,
    *,
    config: ConfigSource,
    auditor: Auditor,
    sim_key: SimKey = _no_sim,
    clock: Clock = _now,
) -> None:
    """Register the verification route on ``app`` (nothing when the admin API is disabled).

    Call after :func:`~proxy.adminapi.app.add_admin_api` with the same
    ``config`` and ``auditor``. ``sim_key`` is called (in a worker thread) on
    every ``sim`` request: the simulated TEE's development public key when the
    config sets ``insecure_simulated_tee``, else None (then sim evidence is
    refused); a ConfigError from it refuses the evidence too.
    """
    keys = LiveKeys(config)
    if keys.current() is None:
        return
    checker = AttestationChecker(auditor, sim_key=sim_key, clock=clock)
    app.router.add_route(VERIFY.method, VERIFY.path, _handler(keys, auditor, checker))


def _handler(
    keys: LiveKeys, auditor: Auditor, checker: AttestationChecker
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def run(request: web.Request, actor: Actor, rid: str) -> web.StreamResponse:
        return await _verify(request, actor, rid, checker)

    return guarded(VERIFY.operation_id, VERIFY.role, keys, auditor, run)
