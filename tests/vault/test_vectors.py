"""Known-answer vectors: the committed file, re-made by the code and re-checked from DESIGN's formulas."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from typing import Any

import pytest

from tests.vault.support import Clock, design_inner_value, design_outer_body, fixed_keys
from tests.vault.vector_maker import PATH, build_vectors, record_from_json, spec_from_json
from vault.api import DetokenizeItem, FormatKind, RecordInfo, Revealed
from vault.engine import Vault
from vault.formats import luhn_ok
from vault.memory_store import MemoryVaultStore
from vault.record import RECORD_VERSION, decode_meta

VECTORS: dict[str, Any] = json.loads(PATH.read_text())
CASES = VECTORS["cases"]


def test_the_code_makes_exactly_the_committed_vectors() -> None:
    assert build_vectors() == VECTORS


def test_vectors_match_the_record_version() -> None:
    assert VECTORS["record_version"] == RECORD_VERSION


def token_secret(case: dict[str, Any]) -> bytes | None:
    """S from the token text alone (None: the record carries a data key)."""
    kind, token = case["spec"]["kind"], case["token"]
    if kind in ("opaque", "deterministic"):
        return base64.b32decode(token.split("_", 1)[1][1:].upper())
    if kind == "uuid":
        return uuid.UUID(token).bytes
    return None


def index_version(case: dict[str, Any]) -> int:
    kind, token = case["spec"]["kind"], case["token"]
    if kind in ("opaque", "deterministic"):
        return "abcdefghijklmnopqrstuvwxyz234567".index(token.split("_", 1)[1][0]) + 1
    return int(VECTORS["untagged_index_version"])


@pytest.mark.parametrize("case", CASES, ids=[c["spec"]["name"] for c in CASES])
def test_each_vector_follows_the_design_formulas(case: dict[str, Any]) -> None:
    """An independent reading: hashlib/HMAC, HKDF and AES-GCM straight from DESIGN.md."""
    keys = {k: bytes.fromhex(v) for k, v in VECTORS["keys"].items()}
    record = record_from_json(case["record"])
    token = case["token"]
    index_key = keys[f"index/{index_version(case)}"]
    assert record.id == hmac.new(index_key, token.encode(), hashlib.sha256).digest()
    body = design_outer_body(keys[f"tokenize/{record.key_version}"], record)
    secret = token_secret(case)
    if secret is None:
        secret, body = body[:32], body[32:]
    assert design_inner_value(secret, case["spec"]["name"], record.id, body) == case["value"]
    created = int(VECTORS["clock"])
    ttl = case["spec"]["ttl"]
    deterministic = case["spec"]["kind"] == "deterministic"
    assert decode_meta(record.meta) == RecordInfo(
        case["spec"]["name"],
        case["spec"]["kind"],
        None if deterministic else case["owner"],
        case["tenant"],
        created,
        None if ttl is None else created + ttl,
        RECORD_VERSION,
    )


def test_deterministic_vector_secret_is_the_convergent_hmac() -> None:
    case = next(c for c in CASES if c["spec"]["kind"] == "deterministic")
    t, c, p = case["tenant"].encode(), case["spec"]["name"].encode(), case["value"].encode()
    data = len(t).to_bytes(4, "big") + t + len(c).to_bytes(4, "big") + c + p
    s = hmac.new(bytes.fromhex(VECTORS["keys"]["convergent/1"]), data, hashlib.sha256).digest()[:20]
    assert token_secret(case) == s


def test_shaped_vectors_keep_their_promises() -> None:
    by_name = {c["spec"]["name"]: c["token"] for c in CASES}
    assert not luhn_ok(by_name["card"].replace(" ", ""))
    assert luhn_ok(by_name["card-valid"].replace("-", ""))
    assert by_name["ssn"].startswith("9")
    assert by_name["ssn-area"][3:5] == "00"


def test_rewrap_vector_moves_outer_and_keeps_inner() -> None:
    keys = {k: bytes.fromhex(v) for k, v in VECTORS["keys"].items()}
    old = record_from_json(CASES[VECTORS["rewrap"]["case"]]["record"])
    new = record_from_json(VECTORS["rewrap"]["record"])
    assert (new.id, new.meta, new.key_version) == (old.id, old.meta, 2)
    assert design_outer_body(keys["tokenize/2"], new) == design_outer_body(keys["tokenize/1"], old)


async def test_the_engine_reads_every_vector() -> None:
    store = MemoryVaultStore(now=Clock())
    records = [record_from_json(c["record"]) for c in CASES]
    assert await store.put_new(records) == [True] * len(records)
    vault = Vault(
        store,
        fixed_keys(index=VECTORS["index_primary"]),
        now=Clock(),
        untagged_index_version=VECTORS["untagged_index_version"],
    )
    out = await vault.detokenize(
        [DetokenizeItem(c["token"], spec_from_json(c["spec"])) for c in CASES]
    )
    assert [r.value for r in out if isinstance(r, Revealed)] == [c["value"] for c in CASES]
    assert {c["spec"]["kind"] for c in CASES} == {k.value for k in FormatKind}
