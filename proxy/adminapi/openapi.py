"""The OpenAPI 3.1 document of the admin API, written as data.

It is served at ``/.tokengate/admin/openapi.json`` (auditor role and up) and
checked by the tests: it validates as OpenAPI 3.1, names exactly the
registered routes, gives each the role its route table requires
(``x-tokengate-role``), and its request schemas match the body models.
"""

from __future__ import annotations

from typing import Final, cast

from proxy.adminapi.attest_body import MAX_BINDING_HEX, MAX_EVIDENCE
from proxy.adminapi.attest_body import MAX_BODY as ATTEST_MAX_BODY
from proxy.adminapi.bodies import MAX_BODY
from tokengate import __version__

Json = dict[str, object]

PREFIX: Final = "/.tokengate/admin"
API: Final = PREFIX + "/v1"

_ERRORS: Final = {
    "400": "malformed path parameter or body",
    "401": "no, malformed or unknown API key (with WWW-Authenticate: Bearer)",
    "403": "the key's role may not do this",
    "404": "no policy file declares this field class",
    "413": f"body larger than {MAX_BODY} bytes",
    "415": "body that is not application/json",
    "500": "the gateway failed",
    "503": "the session store, the vault or the audit log cannot answer; an unaudited act is "
    "refused",
}


def _ref(kind: str, name: str) -> Json:
    return {"$ref": f"#/components/{kind}/{name}"}


def _path_param(name: str, description: str, schema: Json) -> Json:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
    }


SUB: Final = _path_param(
    "sub",
    "the user id (percent-encode '/' and other reserved characters)",
    {"type": "string", "minLength": 1, "maxLength": 1024},
)
SID: Final = _path_param(
    "sid", "the session id", {"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$"}
)
SID_HASH: Final = _path_param(
    "sid_hash",
    "hex SHA-256 of the session id, as listed",
    {"type": "string", "pattern": "^[0-9a-f]{64}$"},
)


def _operation(
    op_id: str,
    summary: str,
    role: str,
    result: str,
    *,
    params: tuple[Json, ...] = (),
    body: str | None = None,
    body_required: bool = False,
    errors: tuple[str, ...] = ("400", "401", "403", "500", "503"),
) -> Json:
    op: Json = {
        "operationId": op_id,
        "summary": summary,
        "x-tokengate-role": role,
        "responses": {
            "200": {
                "description": "done",
                "content": {"application/json": {"schema": _ref("schemas", result)}},
            },
            **{code: _ref("responses", f"E{code}") for code in errors},
        },
    }
    if params:
        op["parameters"] = list(params)
    if body is not None:
        op["requestBody"] = {
            "required": body_required,
            "content": {"application/json": {"schema": _ref("schemas", body)}},
        }
    return op


_WRITE_ERRORS: Final = ("400", "401", "403", "413", "415", "500", "503")


def _attest_operation() -> Json:
    """verifyAttestation: 200 for both verdicts; its body limit is larger than the others'."""
    op = _operation(
        "verifyAttestation",
        "verify TEE attestation evidence (200 for verified and refused verdicts alike)",
        "auditor",
        "AttestationVerdict",
        body="AttestationVerifyRequest",
        body_required=True,
        errors=_WRITE_ERRORS,
    )
    cast(Json, op["responses"])["413"] = {
        "description": f"body larger than {ATTEST_MAX_BODY} bytes",
        "content": {"application/json": {"schema": _ref("schemas", "Error")}},
    }
    return op


_TOKEN_ERRORS: Final = ("400", "401", "403", "404", "413", "415", "500", "503")

PATHS: Final[Json] = {
    f"{API}/users/{{sub}}/sessions": {
        "get": _operation(
            "listUserSessions", "the live sessions of a user", "auditor", "SessionList",
            params=(SUB,),
        ),
    },
    f"{API}/users/{{sub}}/sessions/{{sid_hash}}/revoke": {
        "post": _operation(
            "revokeListedSession", "revoke one listed session of a user", "operator",
            "SessionRevoked", params=(SUB, SID_HASH), body="RevokeRequest", errors=_WRITE_ERRORS,
        ),
    },
    f"{API}/sessions/{{sid}}/revoke": {
        "post": _operation(
            "revokeSession", "revoke one session by its id", "operator", "SessionRevoked",
            params=(SID,), body="RevokeRequest", errors=_WRITE_ERRORS,
        ),
    },
    f"{API}/users/{{sub}}/revoke": {
        "post": _operation(
            "revokeUserSessions", "revoke every session of a user", "operator", "UserRevoked",
            params=(SUB,), body="RevokeRequest", errors=_WRITE_ERRORS,
        ),
    },
    f"{API}/sessions/revoke-all": {
        "post": _operation(
            "revokeAllSessions", "revoke every session of every user", "admin", "AllRevoked",
            body="RevokeAllRequest", body_required=True, errors=_WRITE_ERRORS,
        ),
    },
    f"{API}/tokens/tokenize": {
        "post": _operation(
            "tokenizeValues", "tokenize values of one field class", "operator", "Tokenized",
            body="TokenizeRequest", body_required=True, errors=_TOKEN_ERRORS,
        ),
    },
    f"{API}/tokens/detokenize": {
        "post": _operation(
            "detokenizeTokens", "the values behind tokens of one field class", "admin",
            "Detokenized", body="TokensRequest", body_required=True, errors=_TOKEN_ERRORS,
        ),
    },
    f"{API}/tokens/delete": {
        "post": _operation(
            "deleteTokens", "erase the records behind tokens (per-value erasure)", "admin",
            "Deleted", body="TokensRequest", body_required=True, errors=_TOKEN_ERRORS,
        ),
    },
    f"{API}/attestation/verify": {
        "post": _attest_operation(),
    },
    f"{PREFIX}/openapi.json": {
        "get": _operation(
            "getOpenApiDocument", "this document", "auditor", "OpenApiDocument",
            errors=("401", "403", "500"),
        ),
    },
}  # fmt: skip

_TIME: Final[Json] = {"type": "string", "format": "date-time"}
_STRINGS: Final[Json] = {"type": "array", "items": {"type": "string"}}
_REASON: Final[Json] = {
    "type": ["string", "null"],
    "maxLength": 256,
    "not": {"pattern": "[\\x00-\\x1f\\x7f]"},  # no control characters (any engine)
    "description": "why, for the audit log",
}


def _object(properties: Json, required: list[str] | None = None) -> Json:
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "required": list(properties) if required is None else required,
    }


_CLASS: Final[Json] = {
    "type": "string",
    "pattern": "^[a-z][a-z0-9_]{0,31}$",
    "description": "a field class declared in a policy file",
}
_TEXT: Final[Json] = {"type": "string", "not": {"pattern": "[\\x00-\\x1f\\x7f]"}}
_RECORD_ID: Final[Json] = {
    "type": ["string", "null"],
    "pattern": "^[0-9a-f]{32}$",
    "description": "audit id of the record (as in the audit log); null if the token is malformed",
}
_ITEMS: Final = {"minItems": 1, "maxItems": 500}

TOKEN_SCHEMAS: Final[Json] = {
    "TokenizeRequest": _object(
        {
            "class": _CLASS,
            "values": {
                "type": "array",
                "items": {"type": "string", "minLength": 1, "maxLength": 4096},
                **_ITEMS,
            },
            "owner": {**_TEXT, "type": ["string", "null"], "minLength": 1, "maxLength": 1024},
            "tenant": {**_TEXT, "maxLength": 256},
        },
        required=["class", "values"],
    ),
    "TokensRequest": _object(
        {
            "class": _CLASS,
            "tokens": {
                "type": "array",
                "items": {"type": "string", "minLength": 1, "maxLength": 256},
                **_ITEMS,
            },
        }
    ),
    "Tokenized": _object(
        {
            "class": {"type": "string"},
            "results": {
                "type": "array",
                "items": {
                    "oneOf": [
                        _object({"token": {"type": "string"}}),
                        _object({"error": {"const": "format_mismatch"}}),
                    ]
                },
            },
        }
    ),
    "Detokenized": _object(
        {
            "class": {"type": "string"},
            "results": {
                "type": "array",
                "items": {
                    "oneOf": [
                        _object(
                            {
                                "value": {"type": "string"},
                                "record_id": _RECORD_ID,
                                "owner": {"type": ["string", "null"]},
                                "tenant": {"type": "string"},
                                "created": _TIME,
                                "expires": {**_TIME, "type": ["string", "null"]},
                            }
                        ),
                        _object(
                            {
                                "error": {"enum": ["malformed", "unknown", "refused"]},
                                "record_id": _RECORD_ID,
                            }
                        ),
                    ]
                },
            },
        }
    ),
    "Deleted": _object(
        {
            "class": {"type": "string"},
            "count": {"type": "integer", "minimum": 1},
            "deleted": {"type": "integer", "minimum": 0, "description": "records that existed"},
        }
    ),
}

_HEX: Final[Json] = {"type": "string", "pattern": "^(?:[0-9a-fA-F]{2})*$"}
_BINDING: Final[Json] = {**_HEX, "type": ["string", "null"], "maxLength": MAX_BINDING_HEX}
_PLATFORM: Final[Json] = {"enum": ["nitro", "sev-snp", "tdx", "sgx", "sim"]}
_VERDICT_COMMON: Final[Json] = {
    "source": {"type": "string"},
    "platform": _PLATFORM,
    "verified_at": {**_TIME, "description": "the time the evidence was verified at"},
    "evidence_sha256": {
        "type": "string",
        "pattern": "^[0-9a-f]{64}$",
        "description": "names the evidence in the audit log (attest.verify)",
    },
}

ATTEST_SCHEMAS: Final[Json] = {
    "AttestationVerifyRequest": _object(
        {
            "platform": {**_PLATFORM, "description": "chooses the verifier, not the evidence"},
            "evidence": {
                "type": "string",
                "contentEncoding": "base64",
                "minLength": 4,
                "maxLength": 4 * (MAX_EVIDENCE // 3),
                "description": "the evidence bytes, standard base64 with padding",
            },
            "expect_nonce": {**_BINDING, "description": "hex nonce the evidence must carry"},
            "expect_report_data": {**_BINDING, "description": "hex report data (Nitro: user_data)"},
            "expect_public_key": {**_BINDING, "description": "hex public key it must bind"},
            "at": {
                **_TIME,
                "type": ["string", "null"],
                "description": "verify as of this RFC 3339 time (default: now)",
            },
            "allow_debug": {"type": "boolean", "description": "accept a debug-mode TEE"},
            "accepted_tcb": {
                "type": "array",
                "maxItems": 16,
                "items": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_]{0,63}$"},
                "description": "TCB statuses accepted besides UpToDate",
            },
            "measurements": {
                "type": ["object", "null"],
                "maxProperties": 64,
                "propertyNames": {"pattern": "^[a-z][a-z0-9_]{0,31}$"},
                "additionalProperties": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 16,
                    "items": {**_HEX, "minLength": 2, "maxLength": 128},
                },
                "description": "name -> accepted hex values; each name must match one",
            },
        },
        required=["platform", "evidence"],
    ),
    "AttestationVerified": _object(
        {
            **_VERDICT_COMMON,
            "verdict": {"const": "verified"},
            "signature_and_chain": {"const": "valid"},
            "measurements": {"type": "object", "additionalProperties": {"type": "string"}},
            "tcb_status": {"type": "string"},
            "debug": {"type": "boolean"},
            "report_data": {"type": "string", "description": "hex"},
            "public_key": {"type": ["string", "null"], "description": "hex"},
            "nonce": {"type": ["string", "null"], "description": "hex"},
            "issued_at": {**_TIME, "type": ["string", "null"]},
            "details": {"type": "object", "additionalProperties": {"type": "string"}},
        }
    ),
    "AttestationRefused": _object(
        {
            **_VERDICT_COMMON,
            "verdict": {"const": "refused"},
            "failed_check": {"type": "string", "description": "chain, signature, window, ..."},
            "reason": {"type": "string"},
        }
    ),
    "AttestationVerdict": {
        "oneOf": [_ref("schemas", "AttestationVerified"), _ref("schemas", "AttestationRefused")]
    },
}

SCHEMAS: Final[Json] = {
    "Error": _object(
        {
            "error": {"type": "string", "description": "stable machine-readable code"},
            "message": {"type": "string", "description": "what went wrong, for people"},
            "request_id": {"type": "string", "description": "X-Request-ID of this request"},
        }
    ),
    "Session": _object(
        {
            "sid_hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "tenant": {"type": ["string", "null"]},
            "roles": _STRINGS,
            "amr": _STRINGS,
            "acr": {"type": ["string", "null"]},
            "mfa": {"type": "boolean", "description": "a second factor was passed"},
            "dpop_bound": {"type": "boolean", "description": "bound to a client key (DPoP)"},
            "auth_time": _TIME,
            "created": _TIME,
            "last_seen": _TIME,
            "expires_at": _TIME,
            "absolute_expiry": _TIME,
        }
    ),
    "SessionList": _object(
        {
            "sub": {"type": "string"},
            "count": {"type": "integer", "minimum": 0},
            "sessions": {"type": "array", "items": _ref("schemas", "Session")},
        }
    ),
    "SessionRevoked": _object(
        {
            "sid_hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "revoked": {"type": "boolean", "description": "false: no such live session"},
        }
    ),
    "UserRevoked": _object(
        {"sub": {"type": "string"}, "revoked": {"type": "integer", "minimum": 0}}
    ),
    "AllRevoked": _object(
        {"revoked_before": {**_TIME, "description": "sessions created until then are revoked"}}
    ),
    "RevokeRequest": _object({"reason": _REASON}, required=[]),
    "RevokeAllRequest": _object(
        {"confirm": {"const": "revoke-all"}, "reason": _REASON}, required=["confirm"]
    ),
    "OpenApiDocument": {"type": "object", "description": "this document"},
    **TOKEN_SCHEMAS,
    **ATTEST_SCHEMAS,
}


def _error(code: str, text: str) -> Json:
    response: Json = {
        "description": text,
        "content": {"application/json": {"schema": _ref("schemas", "Error")}},
    }
    if code in ("401", "403"):
        challenge = {"description": 'Bearer realm="tokengate-admin" (RFC 6750 error)'}
        response["headers"] = {"WWW-Authenticate": {**challenge, "schema": {"type": "string"}}}
    return response


DOCUMENT: Final[Json] = {
    "openapi": "3.1.0",
    "info": {
        "title": "tokengate admin API",
        "version": __version__,
        "description": "Session and token administration and attestation checks on the admin "
        "listener. Every call needs an API key (Authorization: Bearer tga_...); roles: auditor "
        "reads and verifies attestation evidence, operator also revokes a session or a user "
        "and tokenizes values, admin also revokes all, detokenizes and deletes tokens. Every "
        "act is audited first.",
    },
    "paths": PATHS,
    "components": {
        "securitySchemes": {
            "apiKey": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "tga_ admin API key",
                "description": "created with 'tokengate admin key create'",
            }
        },
        "schemas": SCHEMAS,
        "responses": {f"E{code}": _error(code, text) for code, text in _ERRORS.items()},
    },
    "security": [{"apiKey": []}],
}
