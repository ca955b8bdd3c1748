"""The payload of an AWS Nitro attestation document: shape checks, no trust decisions.

Rules, from the AWS NSM specification (aws-nitro-enclaves-nsm-api,
docs/attestation_process.md); any violation is ``EvidenceRefused("format")``:
- a map with exactly module_id, digest, timestamp, pcrs, certificate, cabundle
  and optionally public_key, user_data, nonce; an optional field that is null
  counts as absent (the NSM itself emits nulls, as the real samples show);
- module_id non-empty text; digest exactly ``SHA384``; timestamp a positive
  integer of milliseconds since the epoch (up to year 9999, what a datetime holds);
- pcrs: 1..32 entries, integer indices 0..31, each 48 bytes (SHA-384);
- certificate and every cabundle entry 1..1024 bytes, cabundle non-empty (root first);
- public_key 1..1024 bytes, user_data and nonce 0..512 bytes.
Nothing here is trusted until :mod:`tee.nitro` has checked chain and signature.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tee.errors import EvidenceRefused

_REQUIRED = frozenset({"module_id", "digest", "timestamp", "pcrs", "certificate", "cabundle"})
_OPTIONAL = frozenset({"public_key", "user_data", "nonce"})
_PCR_BYTES = 48  # SHA-384
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_MS = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class NitroDocument:
    """The payload of a Nitro attestation document, shape-checked but not yet trusted."""

    module_id: str
    issued_at: datetime
    pcrs: dict[int, bytes]
    certificate: bytes
    cabundle: list[bytes]
    public_key: bytes | None
    user_data: bytes | None
    nonce: bytes | None


def parse_document(item: object) -> NitroDocument:
    """Check the decoded payload against the NSM specification; ``format`` otherwise."""
    if not isinstance(item, dict) or not all(isinstance(k, str) for k in item):
        raise EvidenceRefused("format", "payload is not a map of text keys")
    keys = set(item)
    if not keys >= _REQUIRED or not keys <= _REQUIRED | _OPTIONAL:
        raise EvidenceRefused("format", "payload fields are not the nitro fields")
    module_id, digest, ms = item["module_id"], item["digest"], item["timestamp"]
    if not isinstance(module_id, str) or not module_id:
        raise EvidenceRefused("format", "module_id is not a non-empty text")
    if digest != "SHA384":
        raise EvidenceRefused("format", "digest is not SHA384")
    if type(ms) is not int or not 0 < ms <= _MAX_MS:
        raise EvidenceRefused("format", "timestamp is not a positive time before year 10000")
    return NitroDocument(
        module_id=module_id,
        issued_at=_EPOCH + timedelta(milliseconds=ms),
        pcrs=_pcrs(item["pcrs"]),
        certificate=_sized(item["certificate"], "certificate", 1, 1024),
        cabundle=_bundle(item["cabundle"]),
        public_key=_optional(item.get("public_key"), "public_key", 1, 1024),
        user_data=_optional(item.get("user_data"), "user_data", 0, 512),
        nonce=_optional(item.get("nonce"), "nonce", 0, 512),
    )


def _pcrs(value: object) -> dict[int, bytes]:
    """1..32 PCRs, indices 0..31, each 48 bytes (the SHA-384 digest)."""
    if not isinstance(value, dict) or not 1 <= len(value) <= 32:
        raise EvidenceRefused("format", "pcrs is not a map of 1 to 32 entries")
    pcrs: dict[int, bytes] = {}
    for index, pcr in value.items():
        if type(index) is not int or not 0 <= index < 32:
            raise EvidenceRefused("format", "pcr index is not 0..31")
        pcrs[index] = _sized(pcr, f"pcr{index}", _PCR_BYTES, _PCR_BYTES)
    return pcrs


def _bundle(value: object) -> list[bytes]:
    """At least one DER certificate, the root first."""
    if not isinstance(value, list) or not value:
        raise EvidenceRefused("format", "cabundle is not a non-empty array")
    return [_sized(der, "cabundle entry", 1, 1024) for der in value]


def _sized(value: object, what: str, low: int, high: int) -> bytes:
    """``value`` is a byte string of ``low``..``high`` bytes."""
    if not isinstance(value, bytes) or not low <= len(value) <= high:
        raise EvidenceRefused("format", f"{what} is not {low}..{high} bytes")
    return value


def _optional(value: object, what: str, low: int, high: int) -> bytes | None:
    """An optional byte string; null counts as absent."""
    return None if value is None else _sized(value, what, low, high)
