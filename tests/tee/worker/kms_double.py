"""A test double of the KMS key broker, beside the real one (kms/): challenge, attest, grant, release.

It implements only what the worker needs, per docs/tee-protocol.md, and
verifies simulated evidence with the real verifier and binding
(tee.sim, tee.binding) so a worker that binds wrongly fails here too. The
real service is exercised by the integration test with `tokengate kms serve`.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tee.attestation import Policy
from tee.binding import expectation
from tee.envelope import Binding, seal_release
from tee.errors import EvidenceRefused
from tee.sim import SimVerifier
from tee.wire import b64d, b64e


@dataclass
class Grant:
    binding: Binding
    key: bytes
    released: bool = False


@dataclass
class KmsDouble:
    sim_key: Ed25519PublicKey
    measurement: str  # hex: the only accepted one
    tee_id: str = "tee-1"
    retired: bool = False
    nonces: dict[str, str] = field(default_factory=dict)  # b64 nonce -> tee_id
    sessions: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # token -> (tee, key)
    grants: dict[str, Grant] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    fail_next: int = 0  # answer 500 to the next n calls

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/broker/challenge", self.challenge)
        app.router.add_post("/v1/broker/attest", self.attest)
        app.router.add_post("/v1/broker/release", self.release)
        return app

    def attested_keys(self) -> set[bytes]:
        return {key for _, key in self.sessions.values()}

    def grant(
        self,
        *,
        worker_key: bytes,
        job: str,
        tenant: str = "acme",
        request_id: str = "req-1",
        ttl: int = 60,
    ) -> Grant:
        """What `POST /v1/broker/grants` does for a gateway (refuses an unattested key)."""
        if (self.tee_id, worker_key) not in set(self.sessions.values()):
            raise PermissionError("unattested")
        grant_id = "tgr_" + os.urandom(8).hex()
        binding = Binding(
            self.tee_id, worker_key, job, tenant, request_id, grant_id, int(time.time()) + ttl
        )
        self.grants[grant_id] = Grant(binding, os.urandom(32))
        return self.grants[grant_id]

    @staticmethod
    def _error(status: int, code: str) -> web.Response:
        return web.json_response({"error": code, "message": code}, status=status)

    async def _body(self, request: web.Request, name: str) -> dict[str, object] | web.Response:
        self.calls.append(name)
        if self.fail_next:
            self.fail_next -= 1
            return self._error(500, "internal_error")
        body = await request.json()
        assert isinstance(body, dict)
        return body

    async def challenge(self, request: web.Request) -> web.Response:
        body = await self._body(request, "challenge")
        if isinstance(body, web.Response):
            return body
        if body.get("tee_id") != self.tee_id:
            return self._error(404, "unknown_tee")
        if self.retired:
            return self._error(403, "retired")
        nonce = b64e(os.urandom(32))
        self.nonces[nonce] = self.tee_id
        return web.json_response({"nonce": nonce, "expires_at": int(time.time()) + 60})

    async def attest(self, request: web.Request) -> web.Response:
        body = await self._body(request, "attest")
        if isinstance(body, web.Response):
            return body
        if self.retired:
            return self._error(403, "retired")
        if self.nonces.pop(str(body["nonce"]), None) != body["tee_id"]:
            return self._error(403, "attestation_refused")
        key = b64d(body["public_key"])
        policy = Policy(measurements={"measurement": frozenset({self.measurement})})
        try:
            SimVerifier(self.sim_key).verify(
                b64d(body["evidence"]),
                expect=expectation("sim", b64d(body["nonce"]), key),
                now=datetime.now(UTC),
                policy=policy,
            )
        except EvidenceRefused:
            return self._error(403, "attestation_refused")
        token = "tgs_" + os.urandom(16).hex()
        self.sessions[hashlib.sha256(token.encode()).hexdigest()] = (self.tee_id, key)
        return web.json_response({"session": token, "expires_at": int(time.time()) + 600})

    async def release(self, request: web.Request) -> web.Response:
        body = await self._body(request, "release")
        if isinstance(body, web.Response):
            return body
        auth = request.headers.get("Authorization", "")
        session = self.sessions.get(
            hashlib.sha256(auth.removeprefix("Bearer ").encode()).hexdigest()
        )
        if not auth.startswith("Bearer ") or session is None:
            return self._error(401, "unauthorized")
        grant = self.grants.get(str(body.get("grant_id")))
        if grant is None:
            return self._error(404, "unknown_grant")
        b = grant.binding
        if session != (b.tee_id, b.worker_key) or (
            body.get("job"),
            body.get("tenant"),
            body.get("request_id"),
        ) != (b.job, b.tenant, b.request_id):
            return self._error(403, "grant_mismatch")
        if grant.released:
            return self._error(409, "already_released")
        grant.released = True
        return web.json_response({"wrapped": b64e(seal_release(b, grant.key))})
