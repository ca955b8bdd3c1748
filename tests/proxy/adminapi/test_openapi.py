"""The OpenAPI document: valid 3.1, exactly the registered routes and roles, served, honest."""

from __future__ import annotations

from typing import Final, cast

import pytest
from aiohttp import web
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from policy.types import StrictModel
from proxy.adminapi.app import OPERATIONS, add_admin_api
from proxy.adminapi.attest_api import ATTEST_OPERATIONS, add_attestation_api
from proxy.adminapi.attest_body import VerifyBody
from proxy.adminapi.bodies import RevokeAllBody, RevokeBody
from proxy.adminapi.config import AdminApiConfig
from proxy.adminapi.openapi import DOCUMENT, PREFIX
from proxy.adminapi.token_api import TOKEN_OPERATIONS, TokenizeBody, TokensBody, add_token_api
from proxy.adminapi.token_service import VaultTokenService
from proxy.sessions.memory_store import MemorySessionStore
from tests.proxy.adminapi.conftest import Api, new_session
from tests.proxy.adminapi.test_app import V1

Json = dict[str, object]


def _d(value: object) -> Json:
    assert isinstance(value, dict)
    return cast(Json, value)


def _operations() -> dict[tuple[str, str], Json]:
    return {
        (method.upper(), path): _d(op)
        for path, item in _d(DOCUMENT["paths"]).items()
        for method, op in _d(item).items()
    }


def _schema(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}", "components": DOCUMENT["components"]}


def check(name: str, value: object) -> None:
    """Validate ``value`` against the document's schema ``name``."""
    OAS31Validator(_schema(name)).validate(value)


def test_document_is_valid_openapi_3_1() -> None:
    validate(DOCUMENT)
    assert DOCUMENT["openapi"] == "3.1.0"
    scheme = _d(_d(_d(DOCUMENT["components"])["securitySchemes"])["apiKey"])
    assert scheme["type"] == "http"
    assert scheme["scheme"] == "bearer"
    assert DOCUMENT["security"] == [{"apiKey": []}]


def test_every_registered_route_is_documented_and_vice_versa() -> None:
    app = web.Application()
    add_admin_api(
        app,
        config=AdminApiConfig(),
        store=MemorySessionStore(),
        auditor=_NoAuditor(),
    )
    service = VaultTokenService(_NoVault(), dict)  # type: ignore[arg-type]
    add_token_api(app, config=AdminApiConfig(), service=service, auditor=_NoAuditor())
    add_attestation_api(app, config=AdminApiConfig(), auditor=_NoAuditor())
    registered = {
        (r.method, r.resource.canonical)
        for r in app.router.routes()
        if r.resource is not None and r.resource.canonical.startswith(PREFIX)
    }
    assert registered == set(_operations())
    table = {(op.method, op.path) for op in (*OPERATIONS, *TOKEN_OPERATIONS, *ATTEST_OPERATIONS)}
    assert table == registered


def test_documented_roles_and_ids_match_the_route_table() -> None:
    ops = _operations()
    for op in (*OPERATIONS, *TOKEN_OPERATIONS, *ATTEST_OPERATIONS):
        doc = ops[(op.method, op.path)]
        assert doc["operationId"] == op.operation_id
        assert doc["x-tokengate-role"] == op.role.value


def test_every_operation_documents_401_and_403() -> None:
    for doc in _operations().values():
        responses = _d(doc["responses"])
        assert {"200", "401", "403"} <= set(responses)


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("RevokeRequest", RevokeBody),
        ("RevokeAllRequest", RevokeAllBody),
        ("TokenizeRequest", TokenizeBody),
        ("TokensRequest", TokensBody),
        ("AttestationVerifyRequest", VerifyBody),
    ],
)
def test_request_schemas_match_the_body_models(name: str, model: type[StrictModel]) -> None:
    doc = _d(_d(_d(DOCUMENT["components"])["schemas"])[name])
    pyd = model.model_json_schema()
    assert set(_d(doc["properties"])) == set(pyd["properties"])
    assert set(cast(list[str], doc["required"])) == set(pyd.get("required", []))
    assert doc["additionalProperties"] is False


_SGX: Final[Json] = {"platform": "sgx", "evidence": "AAAA"}
_REFUSED: Final[Json] = {
    "source": "s",
    "platform": "nitro",
    "verified_at": "t",
    "evidence_sha256": "0" * 64,
    "verdict": "refused",
    "failed_check": "chain",
    "reason": "r",
}


@pytest.mark.parametrize(
    ("name", "value", "valid"),
    [
        ("RevokeAllRequest", {"confirm": "revoke-all"}, True),
        ("RevokeAllRequest", {"confirm": "yes"}, False),
        ("RevokeAllRequest", {}, False),
        ("RevokeRequest", {"reason": "x"}, True),
        ("RevokeRequest", {"reason": "x\n"}, False),
        ("RevokeRequest", {"other": 1}, False),
        ("Error", {"error": "x", "message": "m", "request_id": "r"}, True),
        ("Error", {"error": "x", "message": "m"}, False),
        ("TokenizeRequest", {"class": "ssn", "values": ["1"]}, True),
        ("TokenizeRequest", {"class": "ssn", "values": []}, False),
        ("TokenizeRequest", {"class": "SSN", "values": ["1"]}, False),
        ("TokenizeRequest", {"class": "ssn", "values": ["1"], "tenant": "a\n"}, False),
        ("TokensRequest", {"class": "ssn", "tokens": ["tok_x"]}, True),
        ("TokensRequest", {"class": "ssn"}, False),
        ("AttestationVerifyRequest", {"platform": "nitro", "evidence": "AAAA"}, True),
        ("AttestationVerifyRequest", {"platform": "tpm", "evidence": "AAAA"}, False),
        ("AttestationVerifyRequest", {"platform": "sim"}, False),
        ("AttestationVerifyRequest", {"platform": "sim", "evidence": "AAAA", "x": 1}, False),
        ("AttestationVerifyRequest", {**_SGX, "measurements": {"mrtd": []}}, False),
        ("AttestationVerifyRequest", {**_SGX, "expect_nonce": "0g"}, False),
        ("AttestationVerdict", _REFUSED, True),
        ("AttestationVerdict", {**_REFUSED, "verdict": "verified"}, False),
    ],
)
def test_schemas_accept_and_refuse(name: str, value: Json, valid: bool) -> None:
    validator = OAS31Validator(_schema(name))
    assert validator.is_valid(value) is valid


async def test_served_answers_match_their_schemas(api: Api) -> None:
    sid = await new_session(api.store, "alice", now=api.clock.t - 10, amr=("pwd",))
    resp = await api.client.get("/.tokengate/admin/openapi.json", headers=api.auth("auditor"))
    assert await resp.json() == DOCUMENT
    resp = await api.client.get(f"{V1}/users/alice/sessions", headers=api.auth("auditor"))
    check("SessionList", await resp.json())
    resp = await api.client.post(f"{V1}/sessions/{sid}/revoke", headers=api.auth("operator"))
    check("SessionRevoked", await resp.json())
    resp = await api.client.post(f"{V1}/users/alice/revoke", headers=api.auth("operator"))
    check("UserRevoked", await resp.json())
    resp = await api.client.post(
        f"{V1}/sessions/revoke-all", headers=api.auth("admin"), json={"confirm": "revoke-all"}
    )
    check("AllRevoked", await resp.json())
    resp = await api.client.post(f"{V1}/sessions/revoke-all", headers=api.auth("auditor"))
    check("Error", await resp.json())


def test_disabled_api_registers_nothing() -> None:
    app = web.Application()
    off = AdminApiConfig(enabled=False)
    add_admin_api(app, config=off, store=MemorySessionStore(), auditor=_NoAuditor())
    service = VaultTokenService(_NoVault(), dict)  # type: ignore[arg-type]
    add_token_api(app, config=off, service=service, auditor=_NoAuditor())
    add_attestation_api(app, config=off, auditor=_NoAuditor())
    assert list(app.router.routes()) == []


class _NoVault:
    """Never called: these tests only look at the registered routes."""


class _NoAuditor:
    """Never called: these tests only look at the registered routes."""

    async def emit(self, event: str, /, **fields: object) -> None:
        raise AssertionError("no request is made")
