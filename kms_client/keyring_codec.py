"""Canonical JSON encoding of a :class:`~kms_client.keyring.Keyring` (the plaintext the KWK wraps).

The encoding is only ever stored encrypted (see :mod:`kms_client.envelope`).
Parsing is strict: any unknown field, wrong type or broken rule raises
:class:`~kms_client.errors.KeyringError` without echoing the content.

Signing keys carry an ``algorithm`` member only when it is not the default
``EdDSA``: a keyring made before ES256 keys existed encodes to the same bytes
and still parses (its signing keys are EdDSA), and one encoding stays
canonical (an explicit ``"algorithm": "EdDSA"`` is refused). A reader that
predates the member refuses a keyring holding an ES256 key (fail closed)
rather than misreading it.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import cast

from kms_client.errors import KeyringError
from kms_client.keyring import (
    KeyKind,
    Keyring,
    KeyState,
    KeyVersion,
    PurposeRing,
    RetiredKwk,
    SigningAlgorithm,
    utc,
)

FORMAT = "tokengate-keyring/1"
_KEY_FIELDS = frozenset({"version", "state", "created_at", "changed_at", "material"})
_DEFAULT_ALGORITHM = SigningAlgorithm.EDDSA

type _Json = dict[str, object]


def encode(keyring: Keyring) -> bytes:
    """Canonical bytes (sorted keys, no whitespace) of ``keyring``."""
    doc = {
        "format": FORMAT,
        "purposes": {name: _ring(ring) for name, ring in sorted(keyring.purposes.items())},
        "retired_kwks": [
            {"version": r.version, "reference": _b64(r.reference)} for r in keyring.retired_kwks
        ],
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")


def decode(data: bytes) -> Keyring:
    """Parse bytes made by :func:`encode`; KeyringError on anything else."""
    try:
        doc = _obj(json.loads(data), {"format", "purposes", "retired_kwks"})
        if doc["format"] != FORMAT:
            raise KeyringError("kms: keyring has an unknown format")
        purposes = {
            str(name): _parse_ring(str(name), ring) for name, ring in _obj(doc["purposes"]).items()
        }
        retired = tuple(
            RetiredKwk(_int(r["version"]), _unb64(r["reference"]))
            for r in (_obj(x, {"version", "reference"}) for x in _list(doc["retired_kwks"]))
        )
        return Keyring(purposes, retired)
    except KeyringError:
        raise
    except (ValueError, KeyError, TypeError, binascii.Error) as e:
        raise KeyringError("kms: keyring content is malformed") from e


def _ring(ring: PurposeRing) -> _Json:
    return {
        "kind": ring.kind.value,
        "primary": ring.primary,
        "keys": [_key(k) for k in ring.keys],
    }


def _key(k: KeyVersion) -> _Json:
    doc: _Json = {
        "version": k.version,
        "state": k.state.value,
        "created_at": int(k.created_at.timestamp()),
        "changed_at": int(k.changed_at.timestamp()),
        "material": None if k.material is None else _b64(k.material),
    }
    if k.algorithm is not None and k.algorithm is not _DEFAULT_ALGORITHM:
        doc["algorithm"] = k.algorithm.value
    return doc


def _parse_ring(name: str, raw: object) -> PurposeRing:
    doc = _obj(raw, {"kind", "primary", "keys"})
    kind = KeyKind(_str(doc["kind"]))
    keys = tuple(_parse_key(kind, x) for x in _list(doc["keys"]))
    return PurposeRing(name, kind, _int(doc["primary"]), keys)


def _parse_key(kind: KeyKind, raw: object) -> KeyVersion:
    k = _obj(raw)
    if set(k) not in (_KEY_FIELDS, _KEY_FIELDS | {"algorithm"}):
        raise ValueError("unexpected object shape")
    algorithm = None
    if kind is KeyKind.SIGNING:
        algorithm = SigningAlgorithm(_str(k.get("algorithm", _DEFAULT_ALGORITHM.value)))
        if "algorithm" in k and algorithm is _DEFAULT_ALGORITHM:
            raise ValueError("non-canonical algorithm member")
    elif "algorithm" in k:
        raise ValueError("only signing keys name an algorithm")
    return KeyVersion(
        version=_int(k["version"]),
        state=KeyState(_str(k["state"])),
        created_at=utc(_int(k["created_at"])),
        changed_at=utc(_int(k["changed_at"])),
        material=None if k["material"] is None else _unb64(k["material"]),
        algorithm=algorithm,
    )


def _obj(raw: object, fields: set[str] | None = None) -> _Json:
    if not isinstance(raw, dict) or (fields is not None and set(raw) != fields):
        raise ValueError("unexpected object shape")
    return cast(_Json, raw)


def _list(raw: object) -> list[object]:
    if not isinstance(raw, list):
        raise TypeError("expected a list")
    return raw


def _str(raw: object) -> str:
    if not isinstance(raw, str):
        raise TypeError("expected a string")
    return raw


def _int(raw: object) -> int:
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise TypeError("expected an integer")
    return raw


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(raw: object) -> bytes:
    if not isinstance(raw, str):
        raise TypeError("expected base64 text")
    return base64.b64decode(raw, validate=True)
