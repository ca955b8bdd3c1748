"""Who is calling the KMS: an ``Authorization: Bearer`` credential checked against digests.

A credential is ``tgk_`` followed by the unpadded lowercase base32 of 32
random bytes (256 bits). The KMS stores only its hex SHA-256 (a fast hash is
right: nobody can guess a 256-bit random value, and a slow hash would only cost
every request). Each credential has an ``id`` (written to the audit log) and
roles: ``admin`` (TEE registry) and ``gateway`` (grants, revoke, registry read,
root operations).

Lookup is constant-time over the table: the presented value is hashed once and
compared with :func:`hmac.compare_digest` against every stored digest, with no
early exit. The presented credential never leaves this module: failures answer
a fixed JSON body (401 ``unauthorized``, 403 ``forbidden``) that echoes nothing.

Routes call :func:`authenticate` (and :func:`require_role`); both raise
aiohttp HTTP exceptions carrying the JSON body, so they work in any handler
whatever middleware the app has. The table lives in the app under
:data:`CREDENTIALS`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from kms_client.rng import random_bytes

CREDENTIAL_PREFIX: Final = "tgk_"
CREDENTIAL_BYTES: Final = 32
CREDENTIAL_RE: Final = re.compile(r"tgk_[a-z2-7]{52}")
ROLES: Final = frozenset({"admin", "gateway"})


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller: its credential id (for audit) and its roles."""

    id: str
    roles: frozenset[str]


@dataclass(frozen=True, slots=True)
class Credential:
    """One configured credential: id, roles and the hex SHA-256 of the secret."""

    id: str
    roles: frozenset[str]
    sha256: str


def new_credential() -> str:
    """A fresh credential (shown once to its holder; only its digest is stored)."""
    body = base64.b32encode(random_bytes(CREDENTIAL_BYTES)).decode("ascii").rstrip("=").lower()
    return CREDENTIAL_PREFIX + body


def credential_digest(credential: str) -> str:
    """The hex SHA-256 stored for ``credential``."""
    return hashlib.sha256(credential.encode("utf-8", "surrogatepass")).hexdigest()


class CredentialTable:
    """The configured credentials, looked up in constant time by what a caller presents."""

    def __init__(self, credentials: Iterable[Credential]) -> None:
        self._entries = tuple(credentials)
        self._digests = tuple(bytes.fromhex(c.sha256) for c in self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, presented: str) -> Caller | None:
        """The caller whose digest matches ``presented``, else None; compares against all."""
        digest = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()
        found = -1
        for i, stored in enumerate(self._digests):
            match = hmac.compare_digest(stored, digest)  # no early exit: check every entry
            found = i if match else found
        if found < 0:
            return None
        entry = self._entries[found]
        return Caller(id=entry.id, roles=entry.roles)


CREDENTIALS: Final = web.AppKey("kms_credentials", CredentialTable)


def _json_error(cls: type[web.HTTPException], code: str, message: str) -> web.HTTPException:
    body = json.dumps({"error": code, "message": message})
    headers = {"WWW-Authenticate": "Bearer"} if cls is web.HTTPUnauthorized else None
    return cls(text=body, content_type="application/json", headers=headers)


def unauthorized() -> web.HTTPException:
    """The 401 answer (fixed body) for a missing, malformed or unknown credential."""
    return _json_error(
        web.HTTPUnauthorized, "unauthorized", "kms: a valid credential is required (Bearer tgk_...)"
    )


def parse_bearer(values: list[str]) -> str | None:
    """The credential the ``Authorization`` header values carry, or None when unusable."""
    if len(values) != 1:
        return None
    scheme, _, token = values[0].strip().partition(" ")
    token = token.strip(" ")
    if scheme.lower() != "bearer" or not CREDENTIAL_RE.fullmatch(token):
        return None
    return token


async def authenticate(request: web.Request) -> Caller:
    """The caller the request's bearer credential names; raises a 401 JSON answer otherwise."""
    table = request.app.get(CREDENTIALS)
    token = parse_bearer(request.headers.getall("Authorization", []))
    if table is None or token is None:
        raise unauthorized()
    caller = table.lookup(token)
    if caller is None:
        raise unauthorized()
    return caller


def forbidden(role: str) -> web.HTTPException:
    """The 403 answer (fixed body) for a caller without ``role`` (e.g. ``admin or gateway``)."""
    return _json_error(web.HTTPForbidden, "forbidden", f"kms: this call needs the {role} role")


def require_role(caller: Caller, role: str) -> None:
    """Raise a 403 JSON answer unless ``caller`` holds ``role``."""
    if role not in caller.roles:
        raise forbidden(role)
