"""The control socket: ``tokengate kms unseal|seal|status`` talking to running gateways.

Each gateway process listens on its own unix socket ``<control_dir>/kms-<pid>.sock``
(directory 0700, socket 0600: only the gateway's own user can connect), so the
CLI reaches every worker. One request per connection, one JSON line each way:

- ``{"op": "status"}`` -> ``{"ok": true, "sealed": ..., "keyring_version": ...}``
- ``{"op": "unseal", "shares": ["tgshare1-..."], "actor": "..."}`` (shares only
  for ``local:shamir`` roots)
- ``{"op": "seal", "actor": "..."}``

Errors come back as ``{"ok": false, "error": "<kms message>"}``: the messages
of kms errors name causes, never secrets. Shares are parsed here and handed to
the root; they are not logged or echoed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

from kms_client.manager import KeyManager
from kms_client.shamir import Share
from tokengate.errors import GatewayError

log = logging.getLogger(__name__)

MAX_REQUEST = 64 * 1024
TIMEOUT = 30.0

type Reply = dict[str, object]


# AF_UNIX paths are limited to 107 bytes on Linux; leave room for "kms-<pid>.sock".
_MAX_DIR_LENGTH = 80


def default_control_dir(data_dir: Path) -> Path:
    """Where control sockets live unless ``keys.control_dir`` says otherwise.

    Under the data dir when the path is short enough for a unix socket; else a
    per-user directory under the system temp dir, named by a digest of the
    data dir so the CLI finds the same one.
    """
    preferred = (data_dir / "kms" / "control").absolute()
    if len(str(preferred)) <= _MAX_DIR_LENGTH:
        return preferred
    digest = hashlib.sha256(str(data_dir.absolute()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"tokengate-{os.getuid()}" / digest


class ControlServer:
    """Serves the control protocol for one KeyManager."""

    def __init__(self, manager: KeyManager, directory: Path) -> None:
        self._manager = manager
        self.path = directory / f"kms-{os.getpid()}.sock"
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen on the socket (0600 in a 0700 directory)."""
        await asyncio.to_thread(self._prepare)
        self._server = await asyncio.start_unix_server(
            self._handle, path=str(self.path), limit=MAX_REQUEST
        )
        await asyncio.to_thread(os.chmod, self.path, 0o600)

    async def close(self) -> None:
        """Stop listening and remove the socket file."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self.path.unlink)

    def _prepare(self) -> None:
        if self.path.parent.parent.name.startswith("tokengate-"):
            self.path.parent.parent.mkdir(mode=0o700, exist_ok=True)
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # In a shared temp dir, refuse a directory someone else made for us.
        for directory in (self.path.parent, self.path.parent.parent):
            if directory.name.startswith("tokengate-") and directory.stat().st_uid != os.getuid():
                raise OSError(f"kms: control directory {directory} is not ours")
        os.chmod(self.path.parent, 0o700)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), TIMEOUT)
            reply = await self._answer(line)
        except (TimeoutError, ValueError, asyncio.LimitOverrunError):
            reply = {"ok": False, "error": "kms: control request unreadable"}
        writer.write(json.dumps(reply).encode("utf-8") + b"\n")
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    async def _answer(self, line: bytes) -> Reply:
        request = json.loads(line)
        if not isinstance(request, dict):
            raise ValueError("not an object")
        op, actor = request.get("op"), request.get("actor")
        actor = actor if isinstance(actor, str) else None
        try:
            if op == "unseal":
                raw = request.get("shares")
                shares = None
                if isinstance(raw, list) and raw:
                    shares = [Share.parse(str(s), position=i + 1) for i, s in enumerate(raw)]
                await self._manager.unseal(shares=shares, actor=actor)
            elif op == "seal":
                await self._manager.seal(actor=actor, reason="operator")
            elif op != "status":
                return {"ok": False, "error": "kms: unknown control operation"}
        except GatewayError as e:
            log.warning("kms: control %s failed: %s", op, e)
            return {"ok": False, "error": str(e), "sealed": self._manager.is_sealed}
        return {
            "ok": True,
            "sealed": self._manager.is_sealed,
            "keyring_version": self._manager.keyring_version,
        }


async def request(path: Path, message: dict[str, object]) -> Reply:
    """Send one control request to the gateway process listening on ``path``."""
    reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), TIMEOUT)
    try:
        writer.write(json.dumps(message).encode("utf-8") + b"\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), TIMEOUT)
    finally:
        writer.close()
    reply = json.loads(line) if line else {"ok": False, "error": "kms: no answer"}
    if not isinstance(reply, dict):
        return {"ok": False, "error": "kms: malformed answer"}
    return reply


def sockets(directory: Path) -> list[Path]:
    """Every control socket in ``directory`` (one per gateway process)."""
    if not directory.is_dir():
        return []
    return sorted(directory.glob("kms-*.sock"))
