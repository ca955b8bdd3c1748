"""Signed checkpoints over a writer's chain.

Rules:
- A checkpoint covers one entry: ``seq`` and ``hash`` are that entry's,
  ``count`` is the number of entries it covers (``seq + 1``), ``ts`` the
  checkpoint time, ``kid`` the signing key's RFC 7638 thumbprint and ``final``
  is true only for the closing checkpoint written at shutdown.
- The signed message is the canonical JSON of
  ``{"type": CHECKPOINT_TYPE, "writer", "seq", "hash", "count", "ts", "kid", "final"}``;
  ``type`` keeps these signatures from meaning anything else. ``final`` is
  signed so that a truncated chain cannot be passed off as closed.
- In the chain, a checkpoint is the entry right after the one it covers
  (event ``audit.checkpoint``, same ``ts``, fields ``covers_seq``,
  ``covers_hash``, ``count``, ``kid``, ``final``, ``sig``).
- In the second sink it is one line: the canonical JSON of the signed object
  plus ``sig`` (unpadded base64url of the 64-byte Ed25519 signature).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.canonical import JsonValue, canonical_json
from audit.entry import HEX_SHA256, TIMESTAMP, WRITER, Entry
from audit.errors import AuditFormatError, AuditUnavailableError
from audit.keys import b64url, b64url_decode
from audit.schema import AuditValue
from audit.signer import CheckpointSigner

CHECKPOINT_EVENT = "audit.checkpoint"
CHECKPOINT_TYPE = "tokengate.audit.checkpoint/v1"
SIGNATURE_BYTES = 64
_RECORD_KEYS = frozenset({"type", "writer", "seq", "hash", "count", "ts", "kid", "final", "sig"})


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One signed checkpoint."""

    writer: str
    seq: int
    hash: str
    count: int
    ts: str
    kid: str
    final: bool
    sig: str

    def signed_object(self) -> dict[str, JsonValue]:
        """The object whose canonical JSON is signed."""
        return {
            "type": CHECKPOINT_TYPE,
            "writer": self.writer,
            "seq": self.seq,
            "hash": self.hash,
            "count": self.count,
            "ts": self.ts,
            "kid": self.kid,
            "final": self.final,
        }

    def message(self) -> bytes:
        """The exact bytes the signature covers."""
        return canonical_json(self.signed_object())

    def record_line(self) -> bytes:
        """The line written to the second (checkpoint) sink."""
        return canonical_json({**self.signed_object(), "sig": self.sig}) + b"\n"

    def entry_fields(self) -> dict[str, AuditValue]:
        """The fields of the chain entry that carries this checkpoint."""
        return {
            "covers_seq": self.seq,
            "covers_hash": self.hash,
            "count": self.count,
            "kid": self.kid,
            "final": self.final,
            "sig": self.sig,
        }

    def verify(self, keys: Mapping[str, Ed25519PublicKey]) -> str | None:
        """None when the signature is valid under ``keys[kid]``, else the reason."""
        key = keys.get(self.kid)
        if key is None:
            return "signed by an unknown key"
        try:
            key.verify(b64url_decode(self.sig), self.message())
        except (InvalidSignature, ValueError):
            return "signature does not verify"
        return None


def sign_checkpoint(
    signer: CheckpointSigner, *, writer: str, covered: Entry, ts: str, final: bool
) -> Checkpoint:
    """A checkpoint over ``covered``, signed by ``signer``; a failing signer refuses."""
    unsigned = Checkpoint(
        writer, covered.seq, covered.hash, covered.seq + 1, ts, signer.kid, final, sig=""
    )
    try:
        signature = signer.sign(unsigned.message())
    except Exception as e:  # any signer failure means no checkpoint: fail closed
        raise AuditUnavailableError("audit: checkpoint signer failed") from e
    if not isinstance(signature, bytes) or len(signature) != SIGNATURE_BYTES:
        raise AuditUnavailableError("audit: checkpoint signer returned a malformed signature")
    return Checkpoint(
        writer, covered.seq, covered.hash, covered.seq + 1, ts, signer.kid, final, b64url(signature)
    )


def checkpoint_from_entry(entry: Entry) -> Checkpoint:
    """The checkpoint a chain entry carries; AuditFormatError when its fields are malformed."""
    f = entry.fields
    if set(f) != {"covers_seq", "covers_hash", "count", "kid", "final", "sig"}:
        raise AuditFormatError("audit: checkpoint entry has the wrong fields")
    return _checked(
        {
            "writer": entry.writer,
            "seq": f["covers_seq"],
            "hash": f["covers_hash"],
            "count": f["count"],
            "ts": entry.ts,
            "kid": f["kid"],
            "final": f["final"],
            "sig": f["sig"],
        }
    )


def parse_checkpoint_record(data: bytes) -> Checkpoint:
    """A second-sink record line; AuditFormatError when malformed or not canonical."""
    raw = data[:-1] if data.endswith(b"\n") else data
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise AuditFormatError("audit: checkpoint record is not utf-8 json") from e
    if not isinstance(obj, dict) or set(obj) != _RECORD_KEYS or obj["type"] != CHECKPOINT_TYPE:
        raise AuditFormatError("audit: line is not a checkpoint record")
    cp = _checked(obj)
    if cp.record_line() != raw + b"\n":
        raise AuditFormatError("audit: checkpoint record is not canonical json")
    return cp


def _checked(v: Mapping[str, object]) -> Checkpoint:
    """A Checkpoint from untrusted values, each type- and shape-checked."""
    writer, seq, digest, count = v["writer"], v["seq"], v["hash"], v["count"]
    ts, kid, final, sig = v["ts"], v["kid"], v["final"], v["sig"]
    if not isinstance(writer, str) or not WRITER.match(writer):
        raise AuditFormatError("audit: checkpoint has a bad writer")
    if type(seq) is not int or seq < 0 or type(count) is not int:
        raise AuditFormatError("audit: checkpoint has a bad seq or count")
    if not isinstance(digest, str) or not HEX_SHA256.match(digest):
        raise AuditFormatError("audit: checkpoint has a bad hash")
    if not isinstance(ts, str) or not TIMESTAMP.match(ts):
        raise AuditFormatError("audit: checkpoint has a bad ts")
    if not isinstance(kid, str) or not isinstance(final, bool) or not isinstance(sig, str):
        raise AuditFormatError("audit: checkpoint has a bad kid, final or sig")
    return Checkpoint(writer, seq, digest, count, ts, kid, final, sig)
