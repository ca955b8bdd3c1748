"""The simulated TEE: evidence signed by a development key, for machines without TEE hardware.

WARNING: a simulated TEE proves nothing about the machine it runs on. Anyone
who can read the development key under the data dir can forge its evidence.
It exists so ``tokengate demo`` and the tests can run the whole TEE flow; the
gateway refuses it unless the config says ``insecure_simulated_tee: true``,
and ``mode: production`` refuses that setting at start-up.

Evidence: ``tokengate-sim-evidence/1`` as canonical JSON (sorted keys, no
spaces) of ``{format, platform: "sim", measurement, report_data, public_key,
nonce, issued_at, debug}`` (bytes as lowercase hex, ``issued_at`` in unix
seconds), then a newline, then the Ed25519 signature (hex) over the JSON
bytes. The verifier accepts evidence issued at most ``max_age`` seconds
before ``now`` (and not more than ``skew`` after it).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kms_client.atomic_file import locked, write_atomic
from tee.attestation import Claims, Expectation, Platform, Policy, check_binding, check_measurements
from tee.errors import EvidenceRefused
from tokengate.errors import ConfigError

FORMAT = "tokengate-sim-evidence/1"
_SIGNATURE = re.compile(rb"[0-9a-f]{128}")  # one spelling only: no malleable encodings
KEY_FILE = "tee/sim-attestation.key"


def load_or_create_key(data_dir: Path) -> Ed25519PrivateKey:
    """WARNING: the development key that signs simulated evidence (created 0600 on first use)."""
    path = data_dir / KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with locked(path):  # two workers starting together create one key
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise EvidenceRefused("root", "the simulated TEE key is not an Ed25519 key")
            return key
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_atomic(path, pem)
        return key


def load_public_key(path: Path, *, setting: str) -> Ed25519PublicKey:
    """The development public key of simulated evidence from a PEM file (public or private).

    ConfigError naming ``setting`` when the file is missing or not an Ed25519 key.
    """
    try:
        pem = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{setting}: cannot read {path} ({e.strerror or e})") from e
    try:
        if b"PRIVATE KEY" in pem:
            private = serialization.load_pem_private_key(pem, password=None)
            if isinstance(private, Ed25519PrivateKey):
                return private.public_key()
        else:
            public = serialization.load_pem_public_key(pem)
            if isinstance(public, Ed25519PublicKey):
                return public
    except ValueError as e:
        raise ConfigError(f"{setting}: {path} is not a PEM key") from e
    raise ConfigError(f"{setting}: {path} is not an Ed25519 key")


@dataclass(frozen=True, slots=True)
class SimReport:
    """What a simulated worker asserts about itself."""

    measurement: bytes
    report_data: bytes = b""
    public_key: bytes = b""
    nonce: bytes = b""
    debug: bool = False


def sign_evidence(key: Ed25519PrivateKey, report: SimReport, *, now: datetime) -> bytes:
    """Simulated evidence for ``report`` issued at ``now``."""
    body = _canonical(
        {
            "format": FORMAT,
            "platform": "sim",
            "measurement": report.measurement.hex(),
            "report_data": report.report_data.hex(),
            "public_key": report.public_key.hex(),
            "nonce": report.nonce.hex(),
            "issued_at": int(now.timestamp()),
            "debug": report.debug,
        }
    )
    return body + b"\n" + key.sign(body).hex().encode()


class SimVerifier:
    """Verifies simulated evidence against the development public key."""

    platform: ClassVar[Platform] = Platform.SIM

    def __init__(
        self, public_key: Ed25519PublicKey, *, max_age: float = 300.0, skew: float = 30.0
    ) -> None:
        self._key = public_key
        self._max_age = max_age
        self._skew = skew

    def verify(
        self, evidence: bytes, *, expect: Expectation, now: datetime, policy: Policy
    ) -> Claims:
        """The simulated claims, or EvidenceRefused naming the check."""
        doc = self._signed_document(evidence)
        issued = datetime.fromtimestamp(_int(doc, "issued_at"), UTC)
        age = (now - issued).total_seconds()
        if age > self._max_age or age < -self._skew:
            raise EvidenceRefused("window", "simulated evidence is outside its validity window")
        fields = {k: _hex(doc, k) for k in ("measurement", "report_data", "public_key", "nonce")}
        debug = doc.get("debug")
        if not isinstance(debug, bool):
            raise EvidenceRefused("format", "debug must be true or false")
        if debug and not policy.allow_debug:
            raise EvidenceRefused("debug", "the simulated TEE runs in debug mode")
        check_binding("nonce", expect.nonce, fields["nonce"])
        check_binding("report_data", expect.report_data, fields["report_data"])
        check_binding("public_key", expect.public_key, fields["public_key"])
        measurements = {"measurement": fields["measurement"].hex()}
        check_measurements(measurements, policy)
        return Claims(
            platform=Platform.SIM,
            measurements=measurements,
            report_data=fields["report_data"],
            public_key=fields["public_key"] or None,
            nonce=fields["nonce"] or None,
            tcb_status="UpToDate",
            debug=debug,
            issued_at=issued,
            details={"warning": "simulated TEE: no hardware guarantee"},
        )

    def _signed_document(self, evidence: bytes) -> dict[str, object]:
        body, sep, sig = evidence.rpartition(b"\n")
        if not sep or not _SIGNATURE.fullmatch(sig):
            raise EvidenceRefused("format", "simulated evidence has no signature line")
        try:
            self._key.verify(bytes.fromhex(sig.decode("ascii")), body)
        except (InvalidSignature, ValueError, UnicodeDecodeError) as e:
            raise EvidenceRefused("signature", "simulated evidence signature is invalid") from e
        try:
            doc = json.loads(body)
        except ValueError as e:
            raise EvidenceRefused("format", "simulated evidence is not JSON") from e
        if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("platform") != "sim":
            raise EvidenceRefused("format", f"not {FORMAT} evidence")
        if _canonical(doc) != body:
            raise EvidenceRefused("format", "simulated evidence is not in canonical form")
        return doc


def _canonical(doc: dict[str, object]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _int(doc: dict[str, object], name: str) -> int:
    value = doc.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise EvidenceRefused("format", f"{name} must be an integer")
    return value


def _hex(doc: dict[str, object], name: str) -> bytes:
    value = doc.get(name)
    if not isinstance(value, str):
        raise EvidenceRefused("format", f"{name} must be hex")
    try:
        return bytes.fromhex(value)
    except ValueError as e:
        raise EvidenceRefused("format", f"{name} must be hex") from e
