"""Run the demo app: ``python -m demo_backend --host 127.0.0.1 --port 8000 --data-dir DIR``.

Logs one line when it listens and stops cleanly on SIGINT or SIGTERM. Runs on
uvloop when it is installed, on asyncio's own loop otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Sequence
from pathlib import Path

from aiohttp import web

from demo_backend.app import create_app

logger = logging.getLogger("demo_backend")


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m demo_backend",
        description="A small existing app to put tokengate in front of.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="TCP port to listen on")
    parser.add_argument(
        "--data-dir",
        type=Path,
        required=True,
        help="directory for the SQLite file and the session secret (created 0700)",
    )
    parser.add_argument(
        "--secure-cookie",
        action="store_true",
        help="mark the session cookie Secure (when served over HTTPS)",
    )
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    app = create_app(args.data_dir, cookie_secure=args.secure_cookie)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, args.host, args.port)
        await site.start()
        logger.info(
            "demo_backend: listening on http://%s:%d (data dir %s)",
            args.host,
            args.port,
            args.data_dir,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def main(argv: Sequence[str] | None = None) -> None:
    """Parse arguments and serve until SIGINT/SIGTERM."""
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    with (
        contextlib.suppress(KeyboardInterrupt),
        asyncio.Runner(loop_factory=_loop_factory()) as runner,
    ):
        runner.run(_serve(args))


if __name__ == "__main__":
    main()
