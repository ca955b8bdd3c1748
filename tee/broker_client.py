"""The KMS service's HTTP client for gateways and operators (``tokengate kms serve``).

Gateways use :meth:`BrokerClient.get_tee`, :meth:`BrokerClient.grant` and
:meth:`BrokerClient.revoke` with a ``gateway`` credential; the CLI uses the
registry calls with an ``admin`` credential. Every call:

- sends ``Authorization: Bearer <credential>`` (never logged, never in an
  error message);
- has a total timeout, and uses TLS with the given CA bundle (and client
  certificate for mTLS) for ``https://``;
- answers typed values, or raises one of two errors:
  :class:`~tee.errors.KeyBrokerRefused` when the KMS answered a 4xx (its
  ``status`` and ``code`` are the KMS's: ``unattested``, ``retired``, ...),
  :class:`~tee.errors.KeyBrokerUnavailable` when it could not be reached,
  timed out, failed (5xx) or answered outside the protocol. Both fail the
  caller closed.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

import aiohttp
from yarl import URL

from tee.errors import KeyBrokerRefused, KeyBrokerUnavailable, RegistryError
from tee.registry import TeeEntry
from tee.wire import b64d, b64e
from tokengate.errors import ConfigError

MAX_ANSWER: Final = 1 << 20
KEY_SIZE: Final = 32


class KmsEndpoint(Protocol):
    """Where the KMS is and how to prove who we are (``proxy.teeconfig.TeeKms`` is one)."""

    @property
    def url(self) -> str: ...
    @property
    def credential_env(self) -> str | None: ...
    @property
    def credential_file(self) -> Path | None: ...
    @property
    def ca(self) -> Path | None: ...
    @property
    def client_cert(self) -> Path | None: ...
    @property
    def client_key(self) -> Path | None: ...
    @property
    def timeout(self) -> float: ...


@dataclass(frozen=True, slots=True)
class GrantedKey:
    """The KMS's answer to a grant: the one-time key K2 and what it is bound to."""

    grant_id: str
    key: bytes = field(repr=False)
    expires_at: int


@dataclass(frozen=True, slots=True)
class Revoked:
    """How many sessions and unreleased grants a revocation ended."""

    sessions: int
    grants: int


def read_credential(*, env_name: str | None, file: Path | None, env: Mapping[str, str]) -> str:
    """The credential from an environment variable or a file readable by its owner only."""
    if env_name is not None:
        value = env.get(env_name, "").strip()
        if not value:
            raise ConfigError(f"kms: environment variable {env_name} holds no credential")
        return value
    if file is None:
        raise ConfigError("kms: no credential configured (credential_env or credential_file)")
    try:
        if file.stat().st_mode & 0o077:
            raise ConfigError(f"kms: {file} must be readable by its owner only (chmod 600)")
        value = file.read_text("utf-8").strip()
    except OSError as e:
        raise ConfigError(f"kms: cannot read the credential file {file} ({e.strerror})") from e
    if not value:
        raise ConfigError(f"kms: the credential file {file} is empty")
    return value


def client_tls(
    *, ca: Path | None, cert: Path | None = None, key: Path | None = None
) -> ssl.SSLContext:
    """A TLS 1.2+ client context trusting ``ca`` (else the system store), with mTLS files."""
    try:
        context = ssl.create_default_context(cafile=str(ca) if ca is not None else None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if cert is not None and key is not None:
            context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(f"kms: cannot load the TLS files ({type(e).__name__})") from e
    return context


class BrokerClient:
    """Calls the KMS's registry and broker routes with one credential."""

    def __init__(
        self,
        url: str,
        *,
        credential: str,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 10.0,
    ) -> None:
        parsed = URL(url.rstrip("/"))
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ConfigError("kms: the KMS URL must be http(s)://host[:port]")
        self._base = str(parsed)
        self._credential = credential
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._http: aiohttp.ClientSession | None = None

    @classmethod
    def from_config(
        cls, config: KmsEndpoint, *, base: Path, env: Mapping[str, str] | None = None
    ) -> BrokerClient:
        """A client for the ``tee.kms`` section; relative paths are under ``base``."""

        def resolved(path: Path | None) -> Path | None:
            return None if path is None else path if path.is_absolute() else base / path

        credential = read_credential(
            env_name=config.credential_env,
            file=resolved(config.credential_file),
            env=os.environ if env is None else env,
        )
        context = None
        if config.url.startswith("https://"):
            context = client_tls(
                ca=resolved(config.ca),
                cert=resolved(config.client_cert),
                key=resolved(config.client_key),
            )
        return cls(config.url, credential=credential, ssl_context=context, timeout=config.timeout)

    async def close(self) -> None:
        """Close the connection pool; idempotent."""
        http, self._http = self._http, None
        if http is not None:
            await http.close()

    # ---- gateway calls ----

    async def get_tee(self, tee_id: str) -> TeeEntry:
        """The registry entry of ``tee_id`` (active or retired)."""
        return _entry(await self._call("GET", f"/v1/tees/{_segment(tee_id)}"))

    async def grant(
        self,
        *,
        tee_id: str,
        worker_key: bytes,
        job: str,
        tenant: str,
        request_id: str,
        ttl: int | None = None,
    ) -> GrantedKey:
        """A one-time key for ``job`` on the attested worker ``(tee_id, worker_key)``."""
        body: dict[str, object] = {
            "tee_id": tee_id,
            "worker_key": b64e(worker_key),
            "job": job,
            "tenant": tenant,
            "request_id": request_id,
        }
        if ttl is not None:
            body["ttl"] = ttl
        doc = await self._call("POST", "/v1/broker/grants", body)
        grant_id, expires_at = doc.get("grant_id"), doc.get("expires_at")
        try:
            key = b64d(doc.get("key"))
        except ValueError:
            key = b""
        if (
            not isinstance(grant_id, str)
            or not grant_id
            or len(key) != KEY_SIZE
            or not isinstance(expires_at, int)
            or isinstance(expires_at, bool)
        ):
            raise KeyBrokerUnavailable("kms: grants answered outside the protocol")
        return GrantedKey(grant_id, key, expires_at)

    async def revoke(self, tee_id: str, worker_key: bytes | None = None) -> Revoked:
        """Revoke the sessions and unreleased grants of ``tee_id`` (only ``worker_key``'s)."""
        body: dict[str, object] = {"tee_id": tee_id}
        if worker_key is not None:
            body["worker_key"] = b64e(worker_key)
        doc = await self._call("POST", "/v1/broker/revoke", body)
        sessions, grants = doc.get("revoked_sessions"), doc.get("revoked_grants")
        if not isinstance(sessions, int) or not isinstance(grants, int):
            raise KeyBrokerUnavailable("kms: revoke answered outside the protocol")
        return Revoked(sessions, grants)

    # ---- registry administration ----

    async def list_tees(self) -> list[TeeEntry]:
        """Every registry entry, by id."""
        tees = (await self._call("GET", "/v1/tees")).get("tees")
        if not isinstance(tees, list):
            raise KeyBrokerUnavailable("kms: tees answered outside the protocol")
        return [_entry(t) for t in tees]

    async def register(self, body: Mapping[str, object]) -> TeeEntry:
        """Register a TEE (``{id, platform, measurements, tenants, jobs?, ...}``)."""
        return _entry(await self._call("POST", "/v1/tees", dict(body)))

    async def retire(self, tee_id: str) -> TeeEntry:
        """Retire a TEE (final; its sessions and grants are revoked)."""
        return _entry(await self._call("POST", f"/v1/tees/{_segment(tee_id)}/retire"))

    # ---- transport ----

    async def _call(
        self, method: str, path: str, body: Mapping[str, object] | None = None
    ) -> dict[str, object]:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=self._timeout)
        headers = {"Authorization": f"Bearer {self._credential}"}
        try:
            async with self._http.request(
                method,
                URL(self._base + path, encoded=True),
                json=body,
                headers=headers,
                ssl=self._ssl,
                allow_redirects=False,
            ) as resp:
                raw = await resp.content.read(MAX_ANSWER + 1)
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise KeyBrokerUnavailable(f"kms: {path}: unreachable ({type(e).__name__})") from e
        return _answer(path, status, raw)


def _answer(path: str, status: int, raw: bytes) -> dict[str, object]:
    if len(raw) > MAX_ANSWER:
        raise KeyBrokerUnavailable(f"kms: {path}: answer too large")
    try:
        doc = json.loads(raw)
    except ValueError as e:
        raise KeyBrokerUnavailable(f"kms: {path}: answered {status} without JSON") from e
    if not isinstance(doc, dict):
        raise KeyBrokerUnavailable(f"kms: {path}: answered {status} outside the protocol")
    if 200 <= status < 300:
        return doc
    code = doc.get("error")
    code = code if isinstance(code, str) and code.isidentifier() and len(code) <= 64 else "unknown"
    if 400 <= status < 500:
        raise KeyBrokerRefused(f"kms: {path}: refused ({status} {code})", status=status, code=code)
    raise KeyBrokerUnavailable(f"kms: {path}: failed ({status} {code})")


def _entry(doc: object) -> TeeEntry:
    if not isinstance(doc, dict):
        raise KeyBrokerUnavailable("kms: a registry entry answered outside the protocol")
    try:
        return TeeEntry.from_json(doc)
    except RegistryError as e:
        raise KeyBrokerUnavailable("kms: a registry entry answered outside the protocol") from e


def _segment(tee_id: str) -> str:
    # ids are [A-Za-z0-9_.-]; anything else would change the path, so refuse it here
    if not tee_id or not all(c.isascii() and (c.isalnum() or c in "_.-") for c in tee_id):
        raise KeyBrokerRefused("kms: malformed TEE id", status=400, code="bad_request")
    if tee_id in (".", ".."):
        raise KeyBrokerRefused("kms: malformed TEE id", status=400, code="bad_request")
    return tee_id
