"""The ``sessions:`` section of gateway.yaml: which store, and the session clocks.

``uri`` picks the backend (see :func:`proxy.sessions.factory.open_session_store`):
``memory:`` (one worker only), ``sqlite:<path>`` (the default, relative paths
under the data dir), ``redis://``, ``rediss://``, ``redis+sentinel://``,
``redis+cluster://`` (``rediss+`` for TLS). Production refuses ``memory:`` and
plain-text Redis to another host (:meth:`SessionStoreConfig.production_problems`).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from policy.types import Duration, StrictModel
from proxy.sessions.store import SessionStore, StoreSettings

DEFAULT_URI = "sqlite:sessions/sessions.db"


class SessionStoreConfig(StrictModel):
    """Where sessions live and how long they last."""

    uri: str = Field(
        DEFAULT_URI,
        description="store: memory:, sqlite:<path>, redis[s]://, redis[s]+sentinel://, "
        "redis[s]+cluster://",
    )
    idle_timeout: Duration = Field(1800.0, gt=0, description="end a session unused this long")
    absolute_lifetime: Duration = Field(
        43200.0, gt=0, description="end a session this long after login, however active"
    )
    refresh_grace: Duration = Field(
        10.0, ge=0, le=60, description="a just-rotated refresh token still works this long"
    )
    touch_interval: Duration = Field(
        60.0, ge=0, description="write last_seen at most this often per session and worker"
    )
    key_prefix: str = Field(
        "tokengate:sessions:",
        pattern=r"^[A-Za-z0-9_:.-]{0,64}$",
        description="prefix of every Redis key (no braces: they are Cluster hash tags)",
    )
    timeout: Duration = Field(2.0, gt=0, description="longest wait for one store round trip")
    revoke_replicas: int | None = Field(
        None, ge=0, description="replicas that must acknowledge a revoke (WAIT); default "
        "1 with Sentinel, else 0",
    )  # fmt: skip
    revoke_wait_timeout: Duration = Field(
        1.0, gt=0, description="longest wait for replicas to acknowledge a revoke"
    )

    @model_validator(mode="after")
    def _clocks(self) -> SessionStoreConfig:
        if self.touch_interval > self.idle_timeout / 2:
            raise ValueError("touch_interval must be at most half of idle_timeout")
        return self

    def settings(self) -> StoreSettings:
        """The tunables every backend takes."""
        return StoreSettings(
            idle_timeout=self.idle_timeout,
            absolute_lifetime=self.absolute_lifetime,
            refresh_grace=self.refresh_grace,
            touch_interval=self.touch_interval,
            key_prefix=self.key_prefix,
            timeout=self.timeout,
            revoke_replicas=self.revoke_replicas,
            revoke_wait_timeout=self.revoke_wait_timeout,
        )

    def open(self, *, data_dir: Path, workers: int) -> SessionStore:
        """Build (not yet connect) the configured store."""
        from proxy.sessions.factory import open_session_store

        return open_session_store(
            self.uri, data_dir=data_dir, workers=workers, settings=self.settings()
        )

    def production_problems(self) -> list[str]:
        """Why this store is unfit for ``mode: production`` (empty when fit)."""
        from proxy.sessions.redis_uri import parse_redis_uri

        scheme = urlsplit(self.uri).scheme
        if scheme == "memory":
            return ["sessions.uri: memory: loses every session on restart and serves one worker"]
        if scheme.startswith("redis") and not scheme.startswith("rediss"):
            target = parse_redis_uri(self.uri)
            if not all(_is_loopback(host) for host, _ in target.hosts):
                return ["sessions.uri: plain-text Redis to another host; use rediss://"]
        return []


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
