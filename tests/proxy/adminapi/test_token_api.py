"""The admin token routes: a real Vault (SQLite file, real keyring) behind the real audit log.

Roles (operator tokenizes, only admin detokenizes and deletes), audit-first
acts with record id hashes and never a value or a token, refusal when the
audit log cannot record, strict bodies.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from audit import AuditLog
from audit.errors import AuditError
from audit.schema import AuditValue
from kms_client.manager import KeyManager
from proxy.adminapi.keys import new_api_key
from proxy.adminapi.token_api import add_token_api
from proxy.adminapi.token_service import VaultTokenService
from tests.kms_client.support import open_manager
from tests.proxy.adminapi.conftest import ROLES, events, key_config
from tests.proxy.adminapi.test_app import V1
from vault.api import ClassSpec, FormatKind, TokenFormat, TokenizeItem
from vault.engine import Vault
from vault.sqlite_store import SqliteVault

CLASSES = {
    "email": ClassSpec("email"),
    "ssn": ClassSpec("ssn", TokenFormat(FormatKind.SSN, keep_last=4)),
}
VALUES = ["alice@example.com", "bob@example.com", "carol@example.com"]


@dataclass
class TokenApi:
    client: TestClient[web.Request, web.Application]
    keys: dict[str, str]
    data_dir: Path
    vault: Vault

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    async def post(self, action: str, role: str, body: object) -> tuple[int, dict[str, Any]]:
        resp = await self.client.post(f"{V1}/tokens/{action}", headers=self.auth(role), json=body)
        data = await resp.json()
        assert isinstance(data, dict)
        return resp.status, data


class FailingOn:
    """The real audit log, except that entries matching ``event``/``result`` fail to persist."""

    def __init__(self, log: AuditLog, event: str, result: str) -> None:
        self.log, self.event, self.result = log, event, result

    async def emit(self, event: str, /, **fields: AuditValue) -> None:
        if event == self.event and fields.get("result") == self.result:
            raise AuditError("audit: sink down")
        await self.log.emit(event, **fields)


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[KeyManager]:
    m = await open_manager(tmp_path / "keys")
    yield m
    await m.close()


@pytest.fixture
async def vault(tmp_path: Path, manager: KeyManager) -> AsyncIterator[Vault]:
    store = SqliteVault(tmp_path / "vault.db", timeout=2.0)
    await store.open()
    yield Vault(store, manager)
    await store.close()


async def _serve(vault: Vault, auditor: object, data_dir: Path) -> AsyncIterator[TokenApi]:
    keys = {role: new_api_key() for role in ROLES}
    app = web.Application()
    service = VaultTokenService(vault, lambda: CLASSES)
    add_token_api(app, config=key_config(keys), service=service, auditor=auditor)  # type: ignore[arg-type]
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield TokenApi(client, keys, data_dir, vault)


@pytest.fixture
async def api(vault: Vault, audit_log: AuditLog, data_dir: Path) -> AsyncIterator[TokenApi]:
    async for a in _serve(vault, audit_log, data_dir):
        yield a


def _audit_text(data_dir: Path) -> str:
    return "".join(p.read_text() for p in (data_dir / "audit").glob("*.jsonl"))


async def test_operator_tokenizes_admin_detokenizes_and_it_is_audited(api: TokenApi) -> None:
    status, made = await api.post(
        "tokenize", "operator", {"class": "email", "values": VALUES, "owner": "u1", "tenant": "t"}
    )
    assert status == 200, made
    tokens = [r["token"] for r in made["results"]]
    assert all(isinstance(t, str) and t.startswith("tok_") for t in tokens)

    status, shown = await api.post("detokenize", "admin", {"class": "email", "tokens": tokens})
    assert status == 200, shown
    results = shown["results"]
    assert isinstance(results, list)
    assert [r["value"] for r in results] == VALUES
    assert {(r["owner"], r["tenant"]) for r in results} == {("u1", "t")}
    ids = [r["record_id"] for r in results]

    log = events(api.data_dir, "admin.token_")
    assert [(e, f["result"]) for e, f in log] == [
        ("admin.token_tokenize", "requested"),
        ("admin.token_tokenize", "ok"),
        ("admin.token_detokenize", "requested"),
        ("admin.token_detokenize", "ok"),
    ]
    assert log[1][1]["tokenized"] == 3
    assert log[1][1]["actor"] == "apikey:operator"
    assert log[3][1]["record_ids"] == ids
    assert log[3][1]["revealed"] == 3
    text = _audit_text(api.data_dir)
    for secret in [*VALUES, *tokens]:
        assert str(secret) not in text


@pytest.mark.parametrize(
    ("action", "role", "allowed"),
    [
        ("tokenize", "auditor", False),
        ("tokenize", "operator", True),
        ("tokenize", "admin", True),
        ("detokenize", "auditor", False),
        ("detokenize", "operator", False),
        ("detokenize", "admin", True),
        ("delete", "auditor", False),
        ("delete", "operator", False),
        ("delete", "admin", True),
    ],
)
async def test_role_table(api: TokenApi, action: str, role: str, allowed: bool) -> None:
    [token] = await api.vault.tokenize([TokenizeItem("x@example.com", CLASSES["email"], None, "")])
    assert isinstance(token, str)
    body: dict[str, object] = (
        {"class": "email", "values": ["y@example.com"]}
        if action == "tokenize"
        else {"class": "email", "tokens": [token]}
    )
    status, data = await api.post(action, role, body)
    if allowed:
        assert status == 200, data
    else:
        assert status == 403
        assert data["error"] == "forbidden"
        refusals = [f for e, f in events(api.data_dir) if e == "admin.auth_failed"]
        assert refusals[-1]["reason"] == "insufficient_role"
        assert refusals[-1]["key_name"] == role
    if action != "tokenize":  # the record is still there unless an admin deleted it
        _, check = await api.post("detokenize", "admin", {"class": "email", "tokens": [token]})
        gone = action == "delete" and allowed
        assert ("error" in check["results"][0]) is gone


async def test_without_a_key_nothing_happens(api: TokenApi) -> None:
    resp = await api.client.post(
        f"{V1}/tokens/tokenize", json={"class": "email", "values": ["a@example.com"]}
    )
    assert resp.status == 401
    assert "WWW-Authenticate" in resp.headers
    assert [e for e, _ in events(api.data_dir)] == ["admin.auth_failed"]


async def test_delete_erases_and_names_the_records(api: TokenApi) -> None:
    _, made = await api.post("tokenize", "operator", {"class": "email", "values": VALUES})
    tokens = [r["token"] for r in made["results"]]
    status, data = await api.post("delete", "admin", {"class": "email", "tokens": tokens[:2]})
    assert status == 200, data
    assert data == {"class": "email", "count": 2, "deleted": 2}
    _, shown = await api.post("detokenize", "admin", {"class": "email", "tokens": tokens})
    results = shown["results"]
    assert isinstance(results, list)
    assert [r.get("error") for r in results] == ["unknown", "unknown", None]
    assert results[2]["value"] == VALUES[2]
    deletes = [f for e, f in events(api.data_dir) if e == "admin.token_delete"]
    assert [f["result"] for f in deletes] == ["requested", "ok"]
    assert deletes[0]["record_ids"] == [r["record_id"] for r in results[:2]]
    assert deletes[1]["deleted"] == 2


async def test_per_item_outcomes(api: TokenApi) -> None:
    status, made = await api.post(
        "tokenize", "operator", {"class": "ssn", "values": ["123-45-6789", "nope"]}
    )
    assert status == 200
    results = made["results"]
    assert isinstance(results, list)
    assert results[1] == {"error": "format_mismatch"}
    ssn_token = results[0]["token"]
    assert ssn_token.endswith("6789")
    assert ssn_token != "123-45-6789"
    status, shown = await api.post(
        "detokenize", "admin", {"class": "ssn", "tokens": [ssn_token, "garbage", "000-00-0000"]}
    )
    assert status == 200
    out = shown["results"]
    assert isinstance(out, list)
    assert out[0]["value"] == "123-45-6789"
    assert out[1] == {"error": "malformed", "record_id": None}
    assert out[2]["error"] == "unknown"
    # a token of another class does not open under this one
    _, wrong = await api.post("detokenize", "admin", {"class": "email", "tokens": [ssn_token]})
    assert "value" not in wrong["results"][0]


async def test_unknown_class_is_404_and_audited_as_failed(api: TokenApi) -> None:
    status, data = await api.post("tokenize", "operator", {"class": "iban", "values": ["x"]})
    assert status == 404
    assert data["error"] == "unknown_class"
    log = [f for e, f in events(api.data_dir) if e == "admin.token_tokenize"]
    assert [(f["result"], f.get("error")) for f in log] == [
        ("requested", None),
        ("failed", "unknown_class"),
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"class": "Email", "values": ["x"]},
        {"class": "email", "values": []},
        {"class": "email", "values": ["x"] * 501},
        {"class": "email", "values": [""]},
        {"class": "email", "values": ["x"], "extra": 1},
        {"class": "email", "values": ["x"], "tenant": "a\nb"},
        {"field_class": "email", "values": ["x"]},
        {"values": ["x"]},
    ],
)
async def test_bad_bodies_are_refused(api: TokenApi, body: dict[str, object]) -> None:
    status, data = await api.post("tokenize", "operator", body)
    assert status in (400, 413)
    assert data["error"] in ("bad_request", "payload_too_large")
    assert not [e for e, _ in events(api.data_dir) if e.startswith("admin.token_")]


async def test_audit_down_refuses_before_the_vault_is_touched(
    vault: Vault, audit_log: AuditLog, data_dir: Path
) -> None:
    async for api in _serve(vault, audit_log, data_dir):
        await audit_log.close()
        status, data = await api.post("tokenize", "operator", {"class": "email", "values": VALUES})
        assert status == 503
        assert data["error"] == "audit_unavailable"
    assert await vault._store.scan(after=None, limit=10) == []


async def test_no_reveal_without_its_audit_entry(
    vault: Vault, audit_log: AuditLog, data_dir: Path
) -> None:
    auditor = FailingOn(audit_log, "admin.token_detokenize", "ok")
    async for api in _serve(vault, auditor, data_dir):
        _, made = await api.post("tokenize", "operator", {"class": "email", "values": VALUES})
        tokens = [r["token"] for r in made["results"]]
        status, data = await api.post("detokenize", "admin", {"class": "email", "tokens": tokens})
        assert status == 503
        assert data["error"] == "audit_unavailable"
        assert not any(v in str(data) for v in VALUES)
