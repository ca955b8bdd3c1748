"""Field rules on the request path: the body filter of one request on a field-rule route.

Rules:
- The request is buffered within the route's body limit, transformed (its
  tokens committed to the vault before anything goes upstream), and sent on
  with the rewritten target, headers and body; the proof then covers the new
  body's digest.
- A response is rewritten when the route has response rules and it is either
  a success or a body of a kind the rules read. An error page of another kind
  passes untouched: the backend holds tokens only, so not detokenizing it
  reveals nothing. A 2xx body the rules cannot read fails closed (502).
- The same ActionContext (caller, tenant, vault, clock) serves both
  directions; the transformer names the rule on every call.
- A rewritten body drops the sender's digests of the old bytes. A rewritten
  response is also made uncacheable (``Cache-Control: no-store``, no
  ``ETag``/``Last-Modified``): it holds what this caller may see, and a
  shared cache must never hand it to another.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace

from multidict import CIMultiDict

from plugins.base import ActionContext, Subject
from policy.bodies.errors import BodyError
from policy.bodies.mediatype import body_kind, parse_media_type
from policy.compile import RouteFields
from policy.message import Message
from proxy.auth.access_token import AccessClaims
from proxy.fieldsetup import FieldRuntime


def subject_of(claims: AccessClaims | None) -> Subject:
    """The caller as field rules see it: the session's claims, or anonymous."""
    if claims is None:
        return Subject()
    return Subject(
        sub=claims.sub,
        roles=frozenset(claims.roles),
        tenant=claims.tenant,
        amr=claims.amr,
        acr=claims.acr,
        auth_time=claims.auth_time,
        claims={"sid": claims.sid, "acr": claims.acr, "tenant": claims.tenant},
    )


def action_context(
    runtime: FieldRuntime,
    fields: RouteFields,
    *,
    route: str,
    claims: AccessClaims | None,
    request_id: str,
) -> ActionContext:
    """The per-request context of every field action on this route."""
    tenant = claims.tenant if claims is not None and claims.tenant else fields.tenant
    return ActionContext(
        route=route,
        rule="",
        direction="request",
        subject=subject_of(claims),
        vault=runtime.vault,
        keys=runtime.keys,
        audit=runtime.audit,
        limiter=runtime.limiter,
        now=time.time(),
        request_id=request_id,
        tenant=tenant or "",
        tee=runtime.tee,
    )


class FieldFilter:
    """The :class:`~proxy.forward.BodyFilter` of one request on a route with field rules."""

    __slots__ = ("_ctx", "_fields", "_limit")

    def __init__(self, fields: RouteFields, ctx: ActionContext, *, limit: int) -> None:
        self._fields = fields
        self._ctx = ctx
        self._limit = limit

    @property
    def response_limit(self) -> int:
        """Response bodies are held to the same limit as requests, received and decoded."""
        return self._limit

    async def on_request(
        self, headers: CIMultiDict[str], target: str, body: bytes | None
    ) -> tuple[str, bytes | None]:
        """Transform the request; the new target and body (tokens already committed)."""
        rules = self._fields.request
        if rules is None:
            return target, body
        path, sep, query = target.partition("?")
        message = Message(
            headers=tuple(headers.items()),
            body=(body or b"") if rules.needs_body else b"",
            query=query,
            limit=self._limit,
        )
        out = await rules.apply(message, self._ctx)
        _replace_headers(headers, out.headers)
        if out.body_changed:
            _drop(headers, _BODY_DIGESTS)
        if out.query != query:
            target = f"{path}?{out.query}" if out.query else path
        elif sep and not query:
            target = f"{path}?"
        if body is None:
            return target, None
        return target, out.body if out.body_changed else body

    def wants_response(self, status: int, headers: Mapping[str, str]) -> bool:
        """Rewrite successes always; other answers only when the rules can read them."""
        rules = self._fields.response
        if rules is None:
            return False
        if 200 <= status < 300 or not rules.needs_body:
            return True
        try:
            kind = body_kind(parse_media_type(headers.get("Content-Type", "")))
        except BodyError:
            return False
        return kind is not None and kind in rules.body_kinds

    async def on_response(self, status: int, headers: CIMultiDict[str], body: bytes) -> bytes:
        """Transform the response body and headers."""
        rules = self._fields.response
        if rules is None:
            return body
        message = Message(
            headers=tuple(headers.items()),
            body=body if rules.needs_body else b"",
            limit=self._limit,
        )
        out = await rules.apply(message, replace(self._ctx, direction="response"))
        _replace_headers(headers, out.headers)
        if not out.body_changed:
            return body
        _drop(headers, (*_BODY_DIGESTS, *_VALIDATORS))
        headers["Cache-Control"] = "no-store"
        return out.body


_BODY_DIGESTS = ("Content-Digest", "Repr-Digest", "Digest", "Content-MD5")
_VALIDATORS = ("ETag", "Last-Modified")


def _drop(headers: CIMultiDict[str], names: tuple[str, ...]) -> None:
    for name in names:
        headers.popall(name, None)


def _replace_headers(headers: CIMultiDict[str], new: tuple[tuple[str, str], ...]) -> None:
    if tuple(headers.items()) == new:
        return
    headers.clear()
    headers.extend(new)
