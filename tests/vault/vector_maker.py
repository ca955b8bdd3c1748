"""Known-answer vectors for tokens and vault records (tests/vault/vectors/records_v1.json).

Everything is fixed: key material (``support.fixed_material``), the RNG
(``support.StreamRng`` with the seed below), the clock. The vectors pin the
token layouts, the canonical metadata and both AES-GCM layers, so any change
to them fails ``test_vectors.py``; such a change must bump
``vault.record.RECORD_VERSION`` and add a new vectors file, never rewrite
this one. To regenerate (only for a new version)::

    .venv/bin/python -m tests.vault.vector_maker tests/vault/vectors/records_v<N>.json
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from tests.vault.support import T0, Clock, StreamRng, fixed_keys, fixed_material
from vault.api import ClassSpec, FormatKind, TokenFormat, TokenizeItem
from vault.crypto import record_id, rewrap
from vault.engine import Vault
from vault.memory_store import MemoryVaultStore
from vault.record import RECORD_VERSION
from vault.store import StoredRecord

SEED = b"tokengate/vault-vectors"
REWRAP_SEED = b"tokengate/vault-vectors/rewrap"
INDEX_PRIMARY = 2  # tagged tokens name index v2 ('b'); untagged formats use v1
UNTAGGED_INDEX = 1
PATH = Path(__file__).parent / "vectors" / f"records_v{RECORD_VERSION}.json"

CASES: list[tuple[ClassSpec, str, str | None, str]] = [
    (ClassSpec("email"), "alice@example.com", "alice", "acme"),
    (ClassSpec("note", TokenFormat(prefix="n-1"), ttl=3600), "héllo, wörld ✓", None, ""),
    (
        ClassSpec("email-eq", TokenFormat(FormatKind.DETERMINISTIC, prefix="eq")),
        "bob@example.com",
        "bob",
        "acme",
    ),
    (ClassSpec("user-id", TokenFormat(FormatKind.UUID)), "user 42", "alice", "acme"),
    (
        ClassSpec("account", TokenFormat(FormatKind.NUMERIC, keep_last=2)),
        "9876543210",
        "alice",
        "acme",
    ),
    (
        ClassSpec("card", TokenFormat(FormatKind.PAN, keep_first=6, keep_last=4)),
        "4111 1111 1111 1111",
        "alice",
        "acme",
    ),
    (
        ClassSpec("card-valid", TokenFormat(FormatKind.PAN, luhn_valid=True)),
        "5555-5555-5555-4444",
        "alice",
        "acme",
    ),
    (ClassSpec("ssn", TokenFormat(FormatKind.SSN, keep_last=4)), "123-45-6789", "alice", "acme"),
    (
        ClassSpec("ssn-area", TokenFormat(FormatKind.SSN, keep_first=3)),
        "123456789",
        "alice",
        "acme",
    ),
]


def spec_json(spec: ClassSpec) -> dict[str, Any]:
    f = spec.format
    return {
        "name": spec.name,
        "ttl": spec.ttl,
        "kind": f.kind.value,
        "prefix": f.prefix,
        "keep_first": f.keep_first,
        "keep_last": f.keep_last,
        "luhn_valid": f.luhn_valid,
        "on_mismatch": f.on_mismatch,
    }


def spec_from_json(d: dict[str, Any]) -> ClassSpec:
    fmt = TokenFormat(
        FormatKind(d["kind"]),
        d["prefix"],
        d["keep_first"],
        d["keep_last"],
        d["luhn_valid"],
        d["on_mismatch"],
    )
    return ClassSpec(d["name"], fmt, d["ttl"])


def record_json(record: StoredRecord) -> dict[str, Any]:
    return {
        "id": record.id.hex(),
        "key_version": record.key_version,
        "outer": record.outer.hex(),
        "meta": record.meta.hex(),
        "expires": record.expires,
    }


def record_from_json(d: dict[str, Any]) -> StoredRecord:
    return StoredRecord(
        bytes.fromhex(d["id"]),
        d["key_version"],
        bytes.fromhex(d["outer"]),
        bytes.fromhex(d["meta"]),
        d["expires"],
    )


async def _build() -> dict[str, Any]:
    keys = fixed_keys(index=INDEX_PRIMARY)
    store = MemoryVaultStore(now=Clock())
    vault = Vault(
        store, keys, now=Clock(T0), rng=StreamRng(SEED), untagged_index_version=UNTAGGED_INDEX
    )
    cases: list[dict[str, Any]] = []
    for spec, value, owner, tenant in CASES:
        (token,) = await vault.tokenize([TokenizeItem(value, spec, owner, tenant)])
        assert isinstance(token, str)
        tagged = spec.format.kind in (FormatKind.OPAQUE, FormatKind.DETERMINISTIC)
        rid = record_id(keys, INDEX_PRIMARY if tagged else UNTAGGED_INDEX, token)
        record = (await store.get_many([rid]))[rid]
        cases.append(
            {
                "spec": spec_json(spec),
                "value": value,
                "owner": owner,
                "tenant": tenant,
                "token": token,
            }
            | {"record": record_json(record)}
        )
    first = record_from_json(cases[0]["record"])
    moved = rewrap(fixed_keys(tokenize=2, index=INDEX_PRIMARY), first, StreamRng(REWRAP_SEED))
    return {
        "record_version": RECORD_VERSION,
        "about": "tokengate vault known-answer vectors; see tests/vault/vector_maker.py",
        "keys": {
            f"{p}/{v}": fixed_material(p, v).hex()
            for p, v in (
                ("tokenize", 1),
                ("tokenize", 2),
                ("index", 1),
                ("index", 2),
                ("convergent", 1),
            )
        },
        "rng_seed": SEED.decode(),
        "clock": T0,
        "index_primary": INDEX_PRIMARY,
        "untagged_index_version": UNTAGGED_INDEX,
        "cases": cases,
        "rewrap": {"case": 0, "rng_seed": REWRAP_SEED.decode(), "record": record_json(moved)},
    }


def build_vectors() -> dict[str, Any]:
    """The vectors as the current code makes them."""
    return asyncio.run(_build())


def main(argv: list[str]) -> None:
    """Write the vectors to ``argv[0]`` (default: this version's file)."""
    path = Path(argv[0]) if argv else PATH
    path.write_text(json.dumps(build_vectors(), indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
