"""Where a worker listens and where the gateway reaches it: ``unix:/path`` or ``HOST:PORT``.

One spelling for both sides (``tokengate tee worker --listen`` and the pool's
worker addresses). ``http://HOST:PORT`` is accepted as a synonym of
``HOST:PORT``; IPv6 hosts are bracketed (``[::1]:8700``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from tokengate.errors import ConfigError


@dataclass(frozen=True, slots=True)
class WorkerAddress:
    """A unix socket path, or a TCP host and port."""

    unix: Path | None = None
    host: str = ""
    port: int = 0

    @classmethod
    def parse(cls, text: str) -> WorkerAddress:
        """Parse ``unix:/path``, ``HOST:PORT``, ``[v6]:PORT`` or ``http://HOST:PORT``."""
        if text.startswith("unix:"):
            path = text.removeprefix("unix:")
            if not path:
                raise ConfigError("tee: a unix address needs a path (unix:/run/worker.sock)")
            return cls(unix=Path(path))
        rest = text.removeprefix("http://").rstrip("/")
        host, sep, port = rest.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"tee: {text!r} is not unix:/path or HOST:PORT")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        return cls(host=host, port=int(port))

    @property
    def is_loopback(self) -> bool:
        """A unix socket or a loopback host (the only places a worker listens by default)."""
        if self.unix is not None or self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def base_url(self) -> str:
        """The HTTP base URL a client uses (a unix socket's host part is a placeholder)."""
        if self.unix is not None:
            return "http://worker"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def __str__(self) -> str:
        if self.unix is not None:
            return f"unix:{self.unix}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"
