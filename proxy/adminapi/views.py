"""The admin API's handlers: check path parameters and body, act, answer JSON.

Each takes a :class:`Call` (the request, who is calling, the audited session
administration) built by :mod:`proxy.adminapi.app` after the key and its role
were checked. Answers carry ``Cache-Control: no-store``: listings name users.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from aiohttp import web

from proxy.adminapi.acts import Actor, SessionAdmin
from proxy.adminapi.bodies import RevokeAllBody, RevokeBody, read_body
from proxy.adminapi.errors import BadRequest
from proxy.adminapi.listing import (
    is_session_id,
    is_sid_hash,
    is_sub,
    rfc3339,
    session_view,
)
from proxy.adminapi.listing import sid_hash as hash_sid
from proxy.adminapi.openapi import DOCUMENT


@dataclass(frozen=True, slots=True)
class Call:
    """One authorized admin request."""

    request: web.Request
    actor: Actor
    admin: SessionAdmin
    request_id: str


View = Callable[[Call], Awaitable[web.Response]]


def answer(call: Call, body: Mapping[str, object]) -> web.Response:
    """A 200 JSON answer that no cache keeps."""
    headers = {"Cache-Control": "no-store", "X-Request-ID": call.request_id}
    return web.json_response(dict(body), headers=headers)


def _sub(call: Call) -> str:
    sub = call.request.match_info["sub"]
    if not is_sub(sub):
        raise BadRequest("admin: sub must be 1..1024 characters without control characters")
    return sub


async def list_sessions(call: Call) -> web.Response:
    """GET users/{sub}/sessions."""
    sub = _sub(call)
    sessions = await call.admin.list_sessions(call.actor, sub)
    views = [session_view(s) for s in sessions]
    return answer(call, {"sub": sub, "count": len(views), "sessions": views})


async def revoke_session(call: Call) -> web.Response:
    """POST sessions/{sid}/revoke."""
    sid = call.request.match_info["sid"]
    if not is_session_id(sid):
        raise BadRequest("admin: sid is not a session id")
    body = await read_body(call.request, RevokeBody)
    revoked = await call.admin.revoke_session(call.actor, sid, reason=body.reason)
    return answer(call, {"sid_hash": hash_sid(sid), "revoked": revoked})


async def revoke_listed(call: Call) -> web.Response:
    """POST users/{sub}/sessions/{sid_hash}/revoke."""
    sub = _sub(call)
    hashed = call.request.match_info["sid_hash"]
    if not is_sid_hash(hashed):
        raise BadRequest("admin: sid_hash must be 64 lowercase hex digits")
    body = await read_body(call.request, RevokeBody)
    revoked = await call.admin.revoke_listed(call.actor, sub, hashed, reason=body.reason)
    return answer(call, {"sid_hash": hashed, "revoked": revoked})


async def revoke_user(call: Call) -> web.Response:
    """POST users/{sub}/revoke."""
    sub = _sub(call)
    body = await read_body(call.request, RevokeBody)
    count = await call.admin.revoke_user(call.actor, sub, reason=body.reason)
    return answer(call, {"sub": sub, "revoked": count})


async def revoke_all(call: Call) -> web.Response:
    """POST sessions/revoke-all (body {"confirm": "revoke-all"})."""
    body = await read_body(call.request, RevokeAllBody)
    cutoff = await call.admin.revoke_all(call.actor, reason=body.reason)
    return answer(call, {"revoked_before": rfc3339(cutoff)})


async def openapi(call: Call) -> web.Response:
    """GET openapi.json."""
    return answer(call, DOCUMENT)
