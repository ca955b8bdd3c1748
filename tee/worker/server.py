"""Serving a worker on loopback TCP or a unix socket until told to stop.

The worker never listens beyond loopback unless the caller passes
``insecure_non_loopback`` (its name says the danger: anyone who reaches the
port can rotate the worker's keys and submit envelopes). A unix socket is
created with mode ``socket_mode`` (default 0660) and removed on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable

from aiohttp import web

from tee.address import WorkerAddress
from tee.worker.app import DEFAULT_MAX_BODY, build_app
from tee.worker.service import Worker
from tokengate.errors import ConfigError

log = logging.getLogger("tokengate.tee.worker")


async def serve(
    worker: Worker,
    address: WorkerAddress,
    stop: asyncio.Event,
    *,
    max_body: int = DEFAULT_MAX_BODY,
    socket_mode: int = 0o660,
    insecure_non_loopback: bool = False,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve ``worker`` at ``address`` until ``stop`` is set; then close cleanly."""
    if not address.is_loopback and not insecure_non_loopback:
        raise ConfigError(f"tee: refusing to listen on non-loopback {address}")
    runner = web.AppRunner(build_app(worker, max_body=max_body), access_log=None)
    await runner.setup()
    try:
        site: web.BaseSite
        if address.unix is not None:
            site = web.UnixSite(runner, str(address.unix))
            await site.start()
            os.chmod(address.unix, socket_mode)
            listening = f"unix:{address.unix}"
        else:
            site = web.TCPSite(runner, address.host, address.port)
            await site.start()
            listening = _bound(runner, address)
        log.info("tee worker: listening on %s", listening)
        if on_ready is not None:
            on_ready(listening)
        await stop.wait()
    finally:
        await runner.cleanup()
        worker.close()
        if address.unix is not None:
            with contextlib.suppress(FileNotFoundError):
                address.unix.unlink()


def _bound(runner: web.AppRunner, address: WorkerAddress) -> str:
    """The address actually bound (port 0 picks a free one)."""
    for name in runner.addresses:
        if isinstance(name, tuple) and len(name) >= 2:
            return str(WorkerAddress(host=str(name[0]), port=int(name[1])))
    return str(address)
