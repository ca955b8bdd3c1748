"""The KMS's registry and key-broker routes (docs/tee-protocol.md, "KMS service").

| route | who |
| --- | --- |
| ``POST /v1/tees`` | admin |
| ``GET /v1/tees``, ``GET /v1/tees/{id}`` | admin or gateway |
| ``POST /v1/tees/{id}/retire`` | admin |
| ``POST /v1/broker/challenge``, ``POST /v1/broker/attest`` | anyone (evidence decides) |
| ``POST /v1/broker/grants``, ``POST /v1/broker/revoke`` | gateway |
| ``POST /v1/broker/release`` | an attestation session (``Bearer tgs_...``) |

Credentials are checked by :mod:`kms.auth`; a refused credential or role is
audited (``kms.refuse``) before the 401/403 goes out. Bodies are read by
:mod:`kms.bodies`; errors become JSON in :mod:`kms.middleware`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from kms import bodies
from kms.auditing import KmsAudit
from kms.auth import Caller, authenticate, forbidden
from kms.broker import Broker
from kms.tees import TeeAdmin
from tee.binding import NONCE_SIZE, PUBLIC_KEY_SIZE
from tee.wire import b64e

type Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ADMIN: Final = frozenset({"admin"})
GATEWAY: Final = frozenset({"gateway"})
READERS: Final = frozenset({"admin", "gateway"})


@dataclass(frozen=True, slots=True)
class BrokerRoutes:
    """The handlers, over the broker, the registry admin and the audit log."""

    broker: Broker
    tees: TeeAdmin
    audit: KmsAudit
    max_body: int

    def add_to(self, app: web.Application) -> None:
        """Register every route on ``app``."""
        app.router.add_post("/v1/tees", self.register)
        app.router.add_get("/v1/tees", self.list_tees)
        app.router.add_get("/v1/tees/{tee_id}", self.get_tee)
        app.router.add_post("/v1/tees/{tee_id}/retire", self.retire)
        app.router.add_post("/v1/broker/challenge", self.challenge)
        app.router.add_post("/v1/broker/attest", self.attest)
        app.router.add_post("/v1/broker/grants", self.grant)
        app.router.add_post("/v1/broker/release", self.release)
        app.router.add_post("/v1/broker/revoke", self.revoke)

    # ---- registry ----

    async def register(self, request: web.Request) -> web.StreamResponse:
        caller = await self._caller(request, ADMIN, "register")
        body = await self._body(
            request,
            allowed={
                "id",
                "platform",
                "measurements",
                "tenants",
                "jobs",
                "allow_debug",
                "accepted_tcb",
            },
            required={"id", "platform", "measurements", "tenants"},
        )
        entry = await self.tees.register(caller.id, body)
        return web.json_response(entry.to_json(), status=201)

    async def list_tees(self, request: web.Request) -> web.StreamResponse:
        await self._caller(request, READERS, "read")
        return web.json_response({"tees": [e.to_json() for e in await self.tees.entries()]})

    async def get_tee(self, request: web.Request) -> web.StreamResponse:
        caller = await self._caller(request, READERS, "read")
        entry = await self.tees.get(caller.id, _path_id(request))
        return web.json_response(entry.to_json())

    async def retire(self, request: web.Request) -> web.StreamResponse:
        caller = await self._caller(request, ADMIN, "retire")
        entry = await self.tees.retire(caller.id, _path_id(request))
        return web.json_response(entry.to_json())

    # ---- broker ----

    async def challenge(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request, allowed={"tee_id"}, required={"tee_id"})
        nonce, expires_at = await self.broker.challenge(bodies.tee_id(body))
        return web.json_response({"nonce": b64e(nonce), "expires_at": expires_at})

    async def attest(self, request: web.Request) -> web.StreamResponse:
        fields = {"tee_id", "nonce", "public_key", "evidence"}
        body = await self._body(request, allowed=fields, required=fields)
        session, expires_at = await self.broker.attest(
            bodies.tee_id(body),
            bodies.raw_bytes(body, "nonce", size=NONCE_SIZE),
            bodies.raw_bytes(body, "public_key", size=PUBLIC_KEY_SIZE),
            bodies.raw_bytes(body, "evidence", limit=self.max_body),
        )
        return web.json_response({"session": session, "expires_at": expires_at})

    async def grant(self, request: web.Request) -> web.StreamResponse:
        caller = await self._caller(request, GATEWAY, "grant")
        required = {"tee_id", "worker_key", "job", "tenant", "request_id"}
        body = await self._body(request, allowed=required | {"ttl"}, required=required)
        grant_id, key, expires_at = await self.broker.grant(
            caller.id,
            tee_id=bodies.tee_id(body),
            worker_key=bodies.raw_bytes(body, "worker_key", size=PUBLIC_KEY_SIZE),
            job=bodies.label(body, "job"),
            tenant=bodies.label(body, "tenant"),
            request_id=bodies.request_id(body),
            ttl=bodies.optional_int(body, "ttl"),
        )
        return web.json_response({"grant_id": grant_id, "key": b64e(key), "expires_at": expires_at})

    async def release(self, request: web.Request) -> web.StreamResponse:
        fields = {"grant_id", "job", "tenant", "request_id"}
        body = await self._body(request, allowed=fields, required=fields)
        wrapped = await self.broker.release(
            bodies.session_token(request),
            grant_id=bodies.grant_id(body),
            job=bodies.label(body, "job"),
            tenant=bodies.label(body, "tenant"),
            request_id=bodies.request_id(body),
        )
        return web.json_response({"wrapped": b64e(wrapped)})

    async def revoke(self, request: web.Request) -> web.StreamResponse:
        caller = await self._caller(request, GATEWAY, "revoke")
        body = await self._body(request, allowed={"tee_id", "worker_key"}, required={"tee_id"})
        key = None
        if body.get("worker_key") is not None:
            key = bodies.raw_bytes(body, "worker_key", size=PUBLIC_KEY_SIZE)
        sessions, grants = await self.broker.revoke(caller.id, bodies.tee_id(body), key)
        return web.json_response({"revoked_sessions": sessions, "revoked_grants": grants})

    # ---- helpers ----

    async def root_caller(self, request: web.Request) -> Caller:
        """The caller of a remote-root route (role gateway); 401/403 audited like the rest."""
        return await self._caller(request, GATEWAY, "root")

    async def _caller(self, request: web.Request, roles: frozenset[str], op: str) -> Caller:
        """The authenticated caller holding one of ``roles``; refusals are audited."""
        try:
            caller = await authenticate(request)
        except web.HTTPException:
            await self.audit.refusal(op, "unauthorized")
            raise
        if not caller.roles & roles:
            await self.audit.refusal(op, "forbidden", actor=caller.id)
            raise forbidden(" or ".join(sorted(roles)))
        return caller

    async def _body(
        self, request: web.Request, *, allowed: set[str], required: set[str]
    ) -> bodies.Body:
        return await bodies.read_body(
            request, limit=self.max_body, allowed=frozenset(allowed), required=frozenset(required)
        )


def _path_id(request: web.Request) -> str:
    return bodies.tee_id({"tee_id": request.match_info["tee_id"]})
