"""RemoteRootKey: the keyring's root is a tokengate KMS service (``remote:`` root URIs).

The KMS (``tokengate kms serve``) makes, opens and destroys this gateway's
KWKs over authenticated HTTP (docs/tee-protocol.md, "Root operations for
gateways"); the reference stored with the keyring opens only at that KMS, for
this gateway's credential and the KWK's version, until the KWK is destroyed
there. The URI grammar is in :mod:`kms_client.remote_root_config`.

Every call is one POST with ``Authorization: Bearer <credential>``, a connect
and a total timeout, no redirects, no proxy environment, no cookies, and an
answer of at most 64 KiB parsed strictly. Failures are RootErrors naming the
cause and the KMS URL only (never the credential, a key or a reference):

- ``RootUnavailable``: connection refused, DNS, timeout, TLS handshake or
  untrusted certificate, 5xx;
- ``RootAuthError``: 401 / 403 (unknown credential, no ``gateway`` role);
- ``WrongRoot``: 404 ``kwk_unknown``, 410 ``kwk_destroyed``;
- ``RootError``: 409 ``kwk_exists``, any other status, a malformed answer.

``open`` reads the credential and proves it with one ``random`` call, so a
wrong credential or an unreachable KMS stops start-up at once. ``random``
returns the KMS's RNG output: the gateway's DRBG reseeds from it (and, like
with an HSM, refuses output once the KMS has been unreachable for three
reseed intervals).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import ssl
from collections.abc import Mapping
from typing import Final

import aiohttp

from kms_client.errors import RootAuthError, RootError, RootUnavailable, WrongRoot
from kms_client.remote_root_config import RemoteRootConfig

MAX_ANSWER: Final = 64 * 1024
MAX_RANDOM: Final = 1024
_CODE_RE: Final = re.compile(r"[a-z_]{1,40}")
_B64URL_RE: Final = re.compile(r"[A-Za-z0-9_-]*")


class RemoteRootKey:
    """A :class:`kms_client.root.RootBackend` served by a tokengate KMS over HTTPS."""

    def __init__(
        self, config: RemoteRootConfig, *, environ: Mapping[str, str] | None = None
    ) -> None:
        self._config = config
        self._environ = environ
        self._session: aiohttp.ClientSession | None = None
        self._auth: str | None = None
        self._lifecycle = asyncio.Lock()

    @classmethod
    def from_uri(cls, uri: str) -> RemoteRootKey:
        """Build from a ``remote:`` URI (grammar in :mod:`kms_client.remote_root_config`)."""
        return cls(RemoteRootConfig.from_uri(uri))

    @property
    def description(self) -> str:
        return self._config.description

    @property
    def plaintext(self) -> bool:
        """True when the KMS is reached over plain http (refused in production)."""
        return self._config.plaintext

    def __repr__(self) -> str:
        return f"RemoteRootKey({self.description!r})"

    async def open(self) -> None:
        async with self._lifecycle:
            if self._session is not None:
                return
            credential = await asyncio.to_thread(self._config.read_credential, self._environ)
            context = await asyncio.to_thread(self._tls_context)
            self._auth = f"Bearer {credential}"
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(
                    total=self._config.timeout, sock_connect=self._config.connect_timeout
                ),
                connector=aiohttp.TCPConnector(ssl=context, limit=16),
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
            )
        try:
            await self.random(1)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        async with self._lifecycle:
            session, self._session, self._auth = self._session, None, None
            if session is not None:
                await session.close()

    async def create_kwk(self, version: int) -> tuple[bytes, bytes]:
        answer = await self._call("/v1/root/kwks", {"version": version}, version=version)
        key, reference = _bytes(answer, "key", self), _bytes(answer, "reference", self)
        if len(key) != 32 or not reference:
            raise RootError(f"kms: remote root {self.description} gave a bad answer (kwk shape)")
        return key, reference

    async def open_kwk(self, version: int, reference: bytes) -> bytes:
        body = {"version": version, "reference": _b64e(reference)}
        key = _bytes(await self._call("/v1/root/kwks/open", body, version=version), "key", self)
        if len(key) != 32:
            raise RootError(f"kms: remote root {self.description} gave a bad answer (kwk shape)")
        return key

    async def destroy_kwk(self, version: int, reference: bytes) -> None:
        body = {"version": version, "reference": _b64e(reference)}
        await self._call("/v1/root/kwks/destroy", body, version=version)

    async def random(self, n: int) -> bytes:
        if isinstance(n, bool) or not 0 < n <= MAX_RANDOM:
            raise ValueError(f"kms: remote root: random length must be 1..{MAX_RANDOM}")
        data = _bytes(await self._call("/v1/root/random", {"n": n}), "bytes", self)
        if len(data) != n:
            raise RootError(f"kms: remote root {self.description} gave a bad answer (length)")
        return data

    def _tls_context(self) -> ssl.SSLContext | bool:
        cfg = self._config
        if cfg.plaintext:
            return True  # no TLS on http://; never False, which would disable verification
        try:
            context = ssl.create_default_context(cafile=str(cfg.ca) if cfg.ca else None)
            if cfg.cert is not None and cfg.key is not None:
                context.load_cert_chain(str(cfg.cert), str(cfg.key))
        except (OSError, ssl.SSLError) as e:
            raise RootUnavailable(
                f"kms: remote root {self.description}: cannot load its TLS files (ca=, cert=, key=)"
            ) from e
        return context

    async def _call(
        self, path: str, body: Mapping[str, object], *, version: int | None = None
    ) -> dict[str, object]:
        session, auth = self._session, self._auth
        if session is None or auth is None:
            raise RootError(f"kms: remote root {self.description} is not open")
        try:
            async with session.post(
                self._config.url + path,
                data=json.dumps(body).encode(),
                headers={
                    "Authorization": auth,
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                },
                allow_redirects=False,
            ) as resp:
                status, raw = resp.status, await _read(resp, self)
        except aiohttp.ClientConnectorCertificateError as e:
            raise RootUnavailable(
                f"kms: remote root {self.description}: the KMS's TLS certificate is not trusted"
                " (check ca=)"
            ) from e
        except aiohttp.ClientSSLError as e:
            raise RootUnavailable(
                f"kms: remote root {self.description}: TLS handshake failed"
                " (check ca=, cert=, key=)"
            ) from e
        except TimeoutError as e:
            raise RootUnavailable(f"kms: remote root {self.description} timed out") from e
        except (aiohttp.ClientError, OSError) as e:
            raise RootUnavailable(
                f"kms: remote root {self.description} is unreachable ({type(e).__name__})"
            ) from e
        if status != 200:
            raise self._refusal(status, raw, version)
        return _object(raw, self)

    def _refusal(self, status: int, raw: bytes, version: int | None) -> RootError:
        code = _error_code(raw)
        what = f"kwk v{version}" if version is not None else "the request"
        where = f"kms: remote root {self.description}"
        if status in (401, 403):
            return RootAuthError(
                f"{where} refused the credential ({status} {code}; needs the gateway role)"
            )
        if status == 410:
            return WrongRoot(f"{where}: {what} is destroyed")
        if status == 404:
            return WrongRoot(
                f"{where}: {what} is unknown there (made for another credential or by another KMS)"
            )
        if status == 409:
            return RootError(f"{where}: {what} already exists there (another replica made it?)")
        if status >= 500:
            return RootUnavailable(f"{where} answered {status} {code}")
        return RootError(f"{where} refused {what} ({status} {code})")


async def _read(resp: aiohttp.ClientResponse, root: RemoteRootKey) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(16 * 1024):
        size += len(chunk)
        if size > MAX_ANSWER:
            raise RootError(f"kms: remote root {root.description} gave a bad answer (too large)")
        chunks.append(chunk)
    return b"".join(chunks)


def _object(raw: bytes, root: RemoteRootKey) -> dict[str, object]:
    try:
        doc = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as e:
        raise RootError(f"kms: remote root {root.description} gave a bad answer (not JSON)") from e
    if not isinstance(doc, dict):
        raise RootError(f"kms: remote root {root.description} gave a bad answer (not an object)")
    return doc


def _bytes(doc: Mapping[str, object], name: str, root: RemoteRootKey) -> bytes:
    value = doc.get(name)
    if not isinstance(value, str) or not _B64URL_RE.fullmatch(value) or len(value) % 4 == 1:
        raise RootError(f"kms: remote root {root.description} gave a bad answer ('{name}')")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as e:
        raise RootError(f"kms: remote root {root.description} gave a bad answer ('{name}')") from e


def _error_code(raw: bytes) -> str:
    """The answer's ``error`` code if it is a short token; the peer's text is never copied."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return "(no error code)"
    code = doc.get("error") if isinstance(doc, dict) else None
    return code if isinstance(code, str) and _CODE_RE.fullmatch(code) else "(no error code)"


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")
