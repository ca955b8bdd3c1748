"""In-process doubles for the gateway's TEE pool tests: sim workers and a KMS broker.

The doubles keep the protocol's real cryptography (simulated evidence signed
by a development key, the binding, the double envelope, the release sealed to
the worker's key) and only skip HTTP, so the pool and the ``tee`` action are
tested against the contract. The end-to-end tests run the real processes.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from audit.events import schema_for
from kms_client.audit_port import AuditValue
from tee.admission import Verification
from tee.attestation import Platform
from tee.binding import report_data
from tee.envelope import (
    Binding,
    open_inner,
    open_outer,
    open_release,
    parse_envelope,
    seal_release,
    seal_response,
)
from tee.errors import JobRefused, TeeError, WorkerError, WorkerRefusal
from tee.registry import TeeEntry
from tee.sim import SimReport, sign_evidence

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
GOOD = bytes(range(48))  # the measurement of the legitimate bundle
CHANGED = bytes(range(1, 49))  # another bundle's


def luhn_job(values: list[str]) -> list[str]:
    """A check job: ``ok`` for digit strings passing Luhn, else ``bad``."""
    out = []
    for v in values:
        digits = v.replace(" ", "").replace("-", "")
        if not digits.isdigit():
            out.append("bad")
            continue
        total = sum(
            (d * 2 - 9 if d * 2 > 9 else d * 2) if i % 2 else d
            for i, d in enumerate(int(c) for c in reversed(digits))
        )
        out.append("ok" if total % 10 == 0 else "bad")
    return out


def brand_job(values: list[str]) -> list[str]:
    """A check job answering compact JSON, like examples/tee_jobs' card_check."""
    return [
        json.dumps({"brand": "visa" if v.startswith("4") else "other", "valid": v.startswith("4")})
        for v in values
    ]


JOBS: dict[str, Callable[[list[str]], list[str]]] = {
    "luhn": luhn_job,
    "brand": brand_job,
    "upper": lambda values: [v.upper() for v in values],
    "fine": lambda values: ["ok"] * len(values),
    "short": lambda values: values[:-1],
}


class RecordingAuditor:
    """Checks every event against the declared schema and keeps it."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, AuditValue]]] = []
        self.fail = False

    async def emit(self, event: str, /, **fields: AuditValue) -> None:
        schema_for(event).validate(fields)
        if self.fail:
            raise OSError("audit sink down")
        self.events.append((event, dict(fields)))

    def find(self, event: str, **match: AuditValue) -> list[dict[str, AuditValue]]:
        """Fields of every ``event`` whose fields include ``match``."""
        return [
            f for e, f in self.events if e == event and all(f.get(k) == v for k, v in match.items())
        ]


@dataclass(frozen=True, slots=True)
class Answer:
    """A worker's attestation answer."""

    platform: str
    evidence: bytes
    public_key: bytes
    generation: int


@dataclass(frozen=True, slots=True)
class GrantAnswer:
    """The KMS's grant."""

    grant_id: str
    key: bytes
    expires_at: int


class KmsRefused(TeeError):
    """The broker double's refusal (the real client raises its own GatewayError)."""

    status = 403


@dataclass
class _Grant:
    binding: Binding
    key: bytes
    released: bool = False


@dataclass
class FakeKms:
    """Registry + key broker, with the real checks that matter to the gateway."""

    entries: dict[str, TeeEntry] = field(default_factory=dict)
    sessions: set[tuple[str, bytes]] = field(default_factory=set)  # (tee_id, key) attested
    grants: dict[str, _Grant] = field(default_factory=dict)
    revoked: list[tuple[str, bytes | None]] = field(default_factory=list)
    granted: list[str] = field(default_factory=list)  # tee ids, in order
    down: bool = False
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def register(self, tee_id: str, measurement: bytes, **extra: object) -> None:
        """An active sim entry accepting ``measurement``."""
        self.entries[tee_id] = TeeEntry(
            id=tee_id,
            platform=Platform(str(extra.get("platform", "sim"))),
            measurements={"measurement": (measurement.hex(),)},
            tenants=("acme", "default"),
            allow_debug=bool(extra.get("allow_debug", False)),
        )

    def retire(self, tee_id: str) -> None:
        """Retire the entry (its sessions are revoked, as the real KMS does)."""
        self.entries[tee_id] = self.entries[tee_id].retired(NOW)
        self.sessions = {s for s in self.sessions if s[0] != tee_id}

    async def get_tee(self, tee_id: str) -> TeeEntry:
        if self.down:
            raise KmsRefused("kms: unreachable", code="kms_unavailable")
        entry = self.entries.get(tee_id)
        if entry is None:
            raise KmsRefused("kms: unknown TEE", code="unknown_tee")
        return entry

    async def revoke(self, tee_id: str, worker_key: bytes | None = None) -> object:
        self.revoked.append((tee_id, worker_key))
        self.sessions = {
            s for s in self.sessions if not (s[0] == tee_id and worker_key in (None, s[1]))
        }
        return {}

    async def grant(
        self,
        *,
        tee_id: str,
        worker_key: bytes,
        job: str,
        tenant: str,
        request_id: str,
        ttl: int,
    ) -> GrantAnswer:
        if self.down:
            raise KmsRefused("kms: unreachable", code="kms_unavailable")
        if (tee_id, worker_key) not in self.sessions:
            raise KmsRefused("kms: unattested", code="unattested")
        grant_id = f"tgr_{next(self._ids)}"
        expires = int(NOW.timestamp()) + ttl
        binding = Binding(tee_id, worker_key, job, tenant, request_id, grant_id, expires)
        key = bytes([len(self.grants) % 256]) * 32
        self.grants[grant_id] = _Grant(binding, key)
        self.granted.append(tee_id)
        return GrantAnswer(grant_id, key, expires)

    def release(self, binding: Binding, session_key: bytes) -> bytes:
        """K2 sealed to the session's key, once, for a grant bound exactly to ``binding``."""
        grant = self.grants.get(binding.grant_id)
        if grant is None or grant.released or grant.binding != binding:
            raise KmsRefused("kms: release refused", code="grant_mismatch")
        if (binding.tee_id, session_key) not in self.sessions:
            raise KmsRefused("kms: release refused", code="unauthorized")
        grant.released = True
        return seal_release(binding, grant.key)


class SimWorker:
    """A sim worker: new key per attestation, evidence over its measurement, jobs on envelopes."""

    def __init__(
        self,
        tee_id: str,
        signer: Ed25519PrivateKey,
        kms: FakeKms,
        *,
        measurement: bytes = GOOD,
        jobs: Mapping[str, Callable[[list[str]], list[str]]] = JOBS,
    ) -> None:
        self.tee_id = tee_id
        self.signer = signer
        self.kms = kms
        self.measurement = measurement
        self.jobs = dict(jobs)
        self.generation = 0
        self.keys: dict[bytes, X25519PrivateKey] = {}
        self.nonces: list[bytes] = []
        self.seen: list[list[str]] = []  # every batch a job received, in order
        self.down = False
        self.replay: bytes | None = None  # answer with evidence for this old nonce instead
        self.debug = False
        self.forge_response = False
        self.refuse: str | None = None  # answer attest with this refusal code (kms_refused, ...)

    async def attest(self, nonce: bytes) -> Answer:
        if self.down:
            raise WorkerError("tee: worker unreachable")
        if self.refuse is not None:
            raise WorkerRefusal("worker: refused", status=403, code=self.refuse)
        self.nonces.append(nonce)
        private = X25519PrivateKey.generate()
        public = private.public_key().public_bytes_raw()
        self.generation += 1
        self.keys[public] = private
        bound = self.replay if self.replay is not None else nonce
        report = SimReport(
            measurement=self.measurement,
            report_data=report_data(bound, public),
            public_key=public,
            nonce=bound,
            debug=self.debug,
        )
        evidence = sign_evidence(self.signer, report, now=NOW)
        # The worker attests its new key to the KMS, which checks the registry itself.
        entry = self.kms.entries.get(self.tee_id)
        if (
            entry is not None
            and entry.active
            and self.measurement.hex() in entry.measurements.get("measurement", ())
        ):
            self.kms.sessions.add((self.tee_id, public))
        return Answer("sim", evidence, public, self.generation)

    async def run_job(self, job: str, envelope: Mapping[str, object]) -> object:
        if self.down:
            raise WorkerError("tee: worker unreachable")
        parsed = parse_envelope(dict(envelope))
        private = self.keys.get(parsed.binding.worker_key)
        if private is None:
            raise JobRefused("worker: the envelope's key is gone", status=410, code="stale_key")
        inner = open_outer(parsed, private)
        wrapped = self.kms.release(parsed.binding, parsed.binding.worker_key)
        k2 = open_release(parsed.binding, wrapped, private)
        values = open_inner(parsed.binding, inner, k2)
        self.seen.append(values)
        if job not in self.jobs:
            return seal_response(parsed.binding, inner.response_key, error="unknown_job")
        results = self.jobs[job](values)
        key = bytes(32) if self.forge_response else inner.response_key
        return seal_response(parsed.binding, key, values=results)


@dataclass
class Lab:
    """Two sim workers, a KMS double and the development key, as the pool tests use them."""

    kms: FakeKms
    signer: Ed25519PrivateKey
    workers: list[SimWorker]
    audit: RecordingAuditor

    @classmethod
    def build(cls, count: int = 2) -> Lab:
        kms = FakeKms()
        signer = Ed25519PrivateKey.generate()
        kms.register("tee-a", GOOD)
        workers = [SimWorker("tee-a", signer, kms) for _ in range(count)]
        return cls(kms, signer, workers, RecordingAuditor())

    def verification(self, *, sim: bool = True) -> Verification:
        return Verification(
            insecure_simulated_tee=sim, sim_key=self.signer.public_key(), now=lambda: NOW
        )


def seen(workers: Sequence[SimWorker]) -> list[str]:
    """Every value any of ``workers`` received in a job, in order per worker."""
    return [v for w in workers for batch in w.seen for v in batch]
