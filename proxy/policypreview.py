"""``tokengate policy test``: what the field rules would do to a sample request and response.

A dry run that writes nothing anywhere: the route is matched and the rules
applied exactly as the gateway would, but against a throwaway keyring and an
in-memory vault in a temporary directory, with the caller given on the
command line. The gateway's own vault, keyring and audit log are never
opened.

Sample responses are written with values in the clear (a tester has no real
tokens): the preview vault treats a value that is not one of its tokens as
what the backend would hold, stores it for the response's owner (``owner``),
then resolves it, so ``allow`` / ``otherwise`` decide as they would in
production. Decisions that would be audited are shown instead.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import unquote

from kms_client.audit_port import AuditValue
from kms_client.config import KeysConfig
from kms_client.opening import open_key_manager
from plugins.base import ActionContext, Subject
from plugins.ratelimit import MemoryRateLimiter
from policy.compile import RouteFields
from policy.message import Message, MessageError
from policy.routing import NoRoute
from proxy.settings import Settings
from tokengate.errors import GatewayError
from vault.api import DetokenizeItem, FormatMismatch, Refused, Revealed, TokenizeItem
from vault.engine import Vault
from vault.memory_store import MemoryVaultStore


@dataclass(frozen=True, slots=True)
class HttpSample:
    """A request or response read from a file in HTTP/1.1 wire form."""

    start: str  # "POST /api/users?x=1 HTTP/1.1" or "HTTP/1.1 200 OK"
    headers: tuple[tuple[str, str], ...]
    body: bytes = field(repr=False)


def parse_sample(raw: bytes) -> HttpSample:
    """Start line, headers, blank line, body; LF or CRLF line ends."""
    text = raw.replace(b"\r\n", b"\n")
    head, sep, body = text.partition(b"\n\n")
    lines = head.decode("utf-8").split("\n")
    if not lines or not lines[0].strip():
        raise ValueError("sample: the first line must be a request or status line")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise ValueError("sample: a header line has no name")
        headers.append((name.strip(), value.strip()))
    return HttpSample(lines[0].strip(), tuple(headers), body if sep else b"")


class PreviewAudit:
    """Keeps the audit events the rules would write, to show them."""

    def __init__(self) -> None:
        self.events: list[dict[str, AuditValue]] = []

    async def emit(self, event: str, /, **fields: AuditValue) -> None:
        """Remember the event instead of persisting it."""
        self.events.append({"event": event, **fields})


class PreviewVault:
    """An in-memory vault that stores clear sample values on first sight (see module doc)."""

    def __init__(self, vault: Vault, *, owner: str | None, tenant: str) -> None:
        self._vault = vault
        self._owner = owner
        self._tenant = tenant

    async def tokenize(self, items: Sequence[TokenizeItem]) -> list[str | FormatMismatch]:
        """Tokens from the in-memory vault."""
        return await self._vault.tokenize(items)

    async def detokenize(self, items: Sequence[DetokenizeItem]) -> list[Revealed | Refused]:
        """Clear sample values are stored for ``owner`` first, then everything is resolved."""
        known = await self._vault.are_tokens(items)
        clear = [i for i, k in zip(items, known, strict=True) if not k]
        made = await self._vault.tokenize(
            [TokenizeItem(i.token, i.spec, self._owner, self._tenant) for i in clear]
        )
        swap = {
            id(item): token
            for item, token in zip(clear, made, strict=True)
            if isinstance(token, str)
        }
        resolved = [DetokenizeItem(swap.get(id(i), i.token), i.spec) for i in items]
        return await self._vault.detokenize(resolved)

    async def delete(self, items: Sequence[DetokenizeItem]) -> int:
        """Erase from the in-memory vault."""
        return await self._vault.delete(items)

    async def are_tokens(self, items: Sequence[DetokenizeItem]) -> list[bool]:
        """Whether these are tokens of the in-memory vault."""
        return await self._vault.are_tokens(items)


@dataclass
class Preview:
    """The outcome of one dry run, ready to print as JSON."""

    route: str | None = None
    request: dict[str, object] | None = None
    response: dict[str, object] | None = None
    refused: dict[str, object] | None = None
    decisions: list[dict[str, AuditValue]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        """Only the parts that happened."""
        out: dict[str, object] = {"route": self.route}
        for key in ("request", "response", "refused"):
            if (value := getattr(self, key)) is not None:
                out[key] = value
        out["decisions"] = self.decisions
        return out


async def preview(
    settings: Settings,
    request: HttpSample,
    response: HttpSample | None,
    *,
    subject: Subject,
    owner: str | None,
) -> Preview:
    """Match ``request`` and apply the route's field rules to it and to ``response``."""
    method, target = _request_line(request.start)
    host = dict((k.lower(), v) for k, v in request.headers).get("host", "localhost")
    path = target.partition("?")[0]
    found = settings.router.match(host.split(":", 1)[0], method, unquote(path))
    result = Preview()
    if isinstance(found, NoRoute):
        result.refused = {"status": 405 if found.allowed else 404, "error": "no route"}
        return result
    result.route = found.route.name
    fields = settings.route_fields.get(found.route.name)
    if fields is None:
        result.request = {"target": target, "note": "no field rules: forwarded untouched"}
        return result
    limit = int(found.route.max_body or settings.gateway.limits.max_body)
    with tempfile.TemporaryDirectory(prefix="tokengate-preview-") as tmp:
        await _run(result, fields, request, response, subject, owner, limit, Path(tmp))
    return result


async def _run(
    result: Preview,
    fields: RouteFields,
    request: HttpSample,
    response: HttpSample | None,
    subject: Subject,
    owner: str | None,
    limit: int,
    tmp: Path,
) -> None:
    audit = PreviewAudit()
    # The throwaway keyring's "development root created" warning is noise here.
    logging.getLogger("kms_client").setLevel(logging.ERROR)
    keys = await open_key_manager(
        KeysConfig(), data_dir=tmp, auditor=audit, production=False, background=False
    )
    try:
        tenant = subject.tenant or fields.tenant or ""
        vault = PreviewVault(Vault(MemoryVaultStore(), keys), owner=owner, tenant=tenant)
        ctx = ActionContext(
            route=result.route or "",
            rule="",
            direction="request",
            subject=subject,
            vault=vault,
            keys=keys,
            audit=audit,
            limiter=MemoryRateLimiter(),
            now=time.time(),
            request_id="preview",
            tenant=tenant,
        )
        await _apply(result, fields, request, response, ctx, limit)
        result.decisions = [e for e in audit.events if str(e["event"]).startswith("token.")]
    finally:
        await keys.close()


async def _apply(
    result: Preview,
    fields: RouteFields,
    request: HttpSample,
    response: HttpSample | None,
    ctx: ActionContext,
    limit: int,
) -> None:
    method, target = _request_line(request.start)
    path, _, query = target.partition("?")
    try:
        if fields.request is not None:
            out = await fields.request.apply(
                Message(headers=request.headers, body=request.body, query=query, limit=limit), ctx
            )
            new_target = f"{path}?{out.query}" if out.query else path
            result.request = _shown(f"{method} {new_target} HTTP/1.1", out.headers, out.body)
        else:
            result.request = _shown(request.start, request.headers, request.body)
        if response is not None and fields.response is not None:
            ctx_out = replace(ctx, direction="response")
            out = await fields.response.apply(
                Message(headers=response.headers, body=response.body, limit=limit), ctx_out
            )
            result.response = _shown(response.start, out.headers, out.body)
    except (MessageError, GatewayError) as e:
        result.refused = {"status": e.status, "error": e.code, "message": str(e)}


def _shown(start: str, headers: Sequence[tuple[str, str]], body: bytes) -> dict[str, object]:
    try:
        text: str = body.decode("utf-8")
    except UnicodeDecodeError:
        text = f"<{len(body)} bytes, not UTF-8>"
    return {"start": start, "headers": [list(h) for h in headers], "body": text}


def _request_line(start: str) -> tuple[str, str]:
    parts = start.split()
    if len(parts) < 2 or not parts[1].startswith("/"):
        raise ValueError("sample: the request line must be 'METHOD /path HTTP/1.1'")
    return parts[0].upper(), parts[1]
