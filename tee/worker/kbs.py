"""The worker's side of the KMS key broker: attest a key, then release one-time keys with it.

Rules (docs/tee-protocol.md, "Key broker"):
- ``attest(key)``: ``POST /v1/broker/challenge {tee_id}`` gives a nonce; the
  worker answers ``POST /v1/broker/attest`` with evidence binding that nonce
  and ``key`` (tee.binding). The KMS's session is kept per public key, in
  memory, and presented as ``Authorization: Bearer <session>``.
- ``release(binding, key)``: ``POST /v1/broker/release {grant_id, job,
  tenant, request_id}`` with the session of ``binding.worker_key``; the
  answer is K2 sealed to that key (tee.envelope.open_release). A key without
  a live session is attested first; a 401 (session expired or revoked) makes
  one more attempt with a fresh session, no more.
- Every call has a timeout. Refusals keep the KMS's ``error`` code; nothing
  here logs or raises keys, sessions, evidence or values.
- Plain HTTP is accepted only to a loopback KMS; anything else needs https.
  :func:`worker_tls` makes the client TLS context: the KMS's CA, and the
  worker's client certificate and key (both or neither) for a KMS that
  requires mTLS (``listen.tls.client_ca``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import aiohttp
from yarl import URL

from tee.binding import NONCE_SIZE
from tee.broker_client import client_tls
from tee.envelope import Binding, open_release
from tee.errors import KeyBrokerRefused, KeyBrokerUnavailable
from tee.wire import b64d, b64e
from tee.worker.attester import Attester
from tee.worker.keys import WorkerKey

log = logging.getLogger("tokengate.tee.worker")
SESSION_MARGIN = 5.0  # seconds: a session this close to expiry is renewed before use
MAX_ANSWER = 256 * 1024


class KeyBroker(Protocol):
    """What the worker needs from the KMS."""

    async def attest(self, key: WorkerKey) -> None:
        """Open an attestation session for ``key`` (the KMS learns the key first)."""
        ...

    async def release(self, binding: Binding, key: WorkerKey) -> bytes:
        """The one-time key K2 the KMS releases for ``binding`` to ``key``."""
        ...

    def forget(self, keep: Iterable[bytes]) -> None:
        """Drop the sessions of every key not in ``keep`` (their keys are gone)."""
        ...


@dataclass(frozen=True, slots=True)
class _Session:
    token: str = field(repr=False)
    expires_at: int


def check_kms_url(url: str) -> URL:
    """``url`` parsed; plain http only to a loopback host."""
    parsed = URL(url)
    if parsed.scheme not in {"http", "https"} or not parsed.host:
        raise ValueError("kms: the KMS URL must be http(s)://host[:port]")
    if parsed.scheme == "http" and not _loopback(parsed.host):
        raise ValueError("kms: plain http is only allowed to a loopback KMS; use https")
    return parsed


def worker_tls(
    *, ca: Path | None = None, cert: Path | None = None, key: Path | None = None
) -> ssl.SSLContext | None:
    """The TLS context toward the KMS (None: the system's defaults).

    ``ca`` replaces the system trust store; ``cert`` and ``key`` (both or
    neither: ValueError) are presented to a KMS that requires client
    certificates. Unreadable files raise ConfigError (never their content).
    """
    if (cert is None) != (key is None):
        raise ValueError("kms: a client certificate needs its key (--kms-cert with --kms-key)")
    if ca is None and cert is None:
        return None
    return client_tls(ca=ca, cert=cert, key=key)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class KbsClient:
    """Talks to ``tokengate kms serve`` on behalf of one worker (one TEE id)."""

    def __init__(
        self,
        base_url: str,
        *,
        tee_id: str,
        attester: Attester,
        http: aiohttp.ClientSession,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 10.0,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._base = check_kms_url(base_url)
        self._tee_id = tee_id
        self._attester = attester
        self._http = http
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._now = now
        self._sessions: dict[bytes, _Session] = {}
        self._lock = asyncio.Lock()

    async def attest(self, key: WorkerKey) -> None:
        """Challenge, evidence for (nonce, key), session: the KMS now knows ``key``."""
        challenge = await self._post("/v1/broker/challenge", {"tee_id": self._tee_id})
        nonce_text = challenge.get("nonce")
        try:
            nonce = b64d(nonce_text)
        except ValueError as e:
            raise KeyBrokerUnavailable("kms: challenge answered without a nonce") from e
        if len(nonce) != NONCE_SIZE:
            raise KeyBrokerUnavailable("kms: challenge answered with a nonce of the wrong size")
        evidence = self._attester.evidence(nonce, key.public, now=datetime.now(UTC))
        answer = await self._post(
            "/v1/broker/attest",
            {
                "tee_id": self._tee_id,
                "nonce": nonce_text,
                "public_key": b64e(key.public),
                "evidence": b64e(evidence),
            },
        )
        token, expires_at = answer.get("session"), answer.get("expires_at")
        if not isinstance(token, str) or not token or not isinstance(expires_at, int):
            raise KeyBrokerUnavailable("kms: attest answered without a session")
        self._sessions[key.public] = _Session(token, expires_at)
        log.info("tee worker: attested key generation %d to the KMS", key.generation)

    async def release(self, binding: Binding, key: WorkerKey) -> bytes:
        """K2 for ``binding``, released to ``key``'s session (attesting first if needed)."""
        body = {
            "grant_id": binding.grant_id,
            "job": binding.job,
            "tenant": binding.tenant,
            "request_id": binding.request_id,
        }
        session = await self._session(key)
        try:
            answer = await self._post("/v1/broker/release", body, bearer=session.token)
        except KeyBrokerRefused as e:
            if e.status != 401:
                raise
            self._sessions.pop(key.public, None)  # expired or revoked: one fresh attempt
            session = await self._session(key)
            answer = await self._post("/v1/broker/release", body, bearer=session.token)
        try:
            wrapped = b64d(answer.get("wrapped"))
        except ValueError as e:
            raise KeyBrokerUnavailable("kms: release answered without a wrapped key") from e
        return open_release(binding, wrapped, key.private)

    def forget(self, keep: Iterable[bytes]) -> None:
        """Drop the sessions of keys the worker no longer holds."""
        kept = set(keep)
        for public in [p for p in self._sessions if p not in kept]:
            del self._sessions[public]

    async def _session(self, key: WorkerKey) -> _Session:
        async with self._lock:
            session = self._sessions.get(key.public)
            if session is None or session.expires_at - SESSION_MARGIN <= self._now():
                await self.attest(key)
                session = self._sessions[key.public]
            return session

    async def _post(
        self, path: str, body: Mapping[str, object], *, bearer: str | None = None
    ) -> dict[str, object]:
        headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else {}
        try:
            async with self._http.post(
                URL(str(self._base).rstrip("/") + path),
                json=body,
                headers=headers,
                ssl=self._ssl,
                timeout=self._timeout,
            ) as resp:
                raw = await resp.content.read(MAX_ANSWER + 1)
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise KeyBrokerUnavailable(f"kms: {path}: unreachable ({type(e).__name__})") from e
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
        code = code if isinstance(code, str) and code.isidentifier() else "unknown"
        if 400 <= status < 500:
            raise KeyBrokerRefused(
                f"kms: {path}: refused ({status} {code})", status=status, code=code
            )
        raise KeyBrokerUnavailable(f"kms: {path}: failed ({status} {code})")
