"""The HTTP client the relying party talks to the provider with.

Every call has a connect and a total timeout, follows no redirects (a
discovery, JWKS or token response that redirects is refused, as OIDC
Discovery and RFC 6749 expect), keeps no cookies, ignores proxy environment
variables and ``.netrc``, reads at most ``max_body`` bytes and parses JSON
strictly (duplicate members and NaN refused). Transport failures raise
:class:`~proxy.oidc.errors.OidcUnavailable` (503) with a message naming only
what was being fetched, never a URL query, a secret or the peer's text.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import aiohttp

from proxy.auth.jose import JwsError, json_object
from proxy.oidc.errors import OidcUnavailable

DEFAULT_MAX_BODY: Final = 1024 * 1024


class ProviderHttp:
    """A small aiohttp client for provider calls; create it per worker, ``aclose()`` it at exit."""

    def __init__(
        self,
        *,
        connect_timeout: float,
        request_timeout: float,
        ca_file: Path | None = None,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        self._timeout = aiohttp.ClientTimeout(total=request_timeout, sock_connect=connect_timeout)
        self._ca_file = ca_file
        self._max_body = max_body
        self._session: aiohttp.ClientSession | None = None
        self._lock = asyncio.Lock()

    async def get_json(self, url: str, *, what: str) -> dict[str, object]:
        """GET ``url`` and return its JSON object; anything but 200 is :class:`OidcUnavailable`."""
        status, body = await self._request("GET", url, what=what)
        if status != 200:
            raise OidcUnavailable(
                f"oidc: {what} answered {status}", reason=f"{what} status {status}"
            )
        return _json(body, what)

    async def post_form(
        self, url: str, form: Mapping[str, str], *, headers: Mapping[str, str], what: str
    ) -> tuple[int, dict[str, object] | None]:
        """POST a form; returns ``(status, JSON object or None when the body is not one)``."""
        status, body = await self._request("POST", url, what=what, data=dict(form), headers=headers)
        try:
            return status, json_object(body)
        except JwsError:
            return status, None

    async def aclose(self) -> None:
        """Close the pooled connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        data: dict[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, bytes]:
        session = await self._client()
        try:
            async with session.request(
                method,
                url,
                data=data,
                headers={"Accept": "application/json", **(headers or {})},
                allow_redirects=False,
            ) as resp:
                return resp.status, await self._read(resp, what)
        except (aiohttp.ClientError, TimeoutError, ssl.SSLError, OSError) as e:
            raise OidcUnavailable(
                f"oidc: {what} unreachable", reason=f"{what}: {type(e).__name__}"
            ) from e

    async def _read(self, resp: aiohttp.ClientResponse, what: str) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > self._max_body:
                raise OidcUnavailable(f"oidc: {what} response too large")
            chunks.append(chunk)
        return b"".join(chunks)

    async def _client(self) -> aiohttp.ClientSession:
        if self._session is not None:
            return self._session
        async with self._lock:
            if self._session is None:
                context: ssl.SSLContext | bool = True
                if self._ca_file is not None:
                    context = await asyncio.to_thread(_ssl_context, self._ca_file)
                self._session = aiohttp.ClientSession(
                    timeout=self._timeout,
                    connector=aiohttp.TCPConnector(ssl=context, limit=64),
                    cookie_jar=aiohttp.DummyCookieJar(),
                    trust_env=False,
                )
            return self._session


def _ssl_context(ca_file: Path) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as e:
        raise OidcUnavailable("oidc: cannot load ca_file", reason=type(e).__name__) from e


def _json(body: bytes, what: str) -> dict[str, object]:
    try:
        return json_object(body)
    except JwsError as e:
        raise OidcUnavailable(f"oidc: {what} is not a JSON object", reason=e.reason) from e
