"""Run the demo app: ``python -m demo_backend --host 127.0.0.1 --port 8000 --data-dir DIR``.

Logs one line when it listens and stops cleanly on SIGINT or SIGTERM. Runs on
uvloop when it is installed, on asyncio's own loop otherwise. The
``--tokengate-*`` options put it behind tokengate (see README.md); a start-up
failure (unusable secret file, JWKS not fetched) is one log line and exit 1.
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

from demo_backend.app import TokengateOptions, create_app
from demo_backend.jwks import JwksError
from demo_backend.sessions import SecretFileError

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
    parser.add_argument(
        "--tokengate-login-secret-file",
        type=Path,
        metavar="PATH",
        help="HS256 secret shared with tokengate (>= 32 bytes, base64url or raw, mode 0600); "
        "answers logins that carry Tokengate-Login-Nonce with a Tokengate-Login assertion",
    )
    parser.add_argument(
        "--tokengate-jwks-url",
        metavar="URL",
        help="tokengate's /.well-known/tokengate/jwks.json; every request but GET /healthz "
        "must then carry a valid tokengate signature and identity (401 otherwise)",
    )
    parser.add_argument(
        "--tokengate-audience",
        default="tokengate",
        help="aud of the Tokengate-Login assertion (default: tokengate)",
    )
    parser.add_argument(
        "--tokengate-identity-audience",
        default="demo-app",
        help="aud the Tokengate-Identity token must carry (default: demo-app)",
    )
    parser.add_argument(
        "--no-verify-tokengate",
        action="store_true",
        help="accept requests without tokengate proofs (baseline benchmarks; the default "
        "without --tokengate-jwks-url, named here so that a run says so)",
    )
    args = parser.parse_args(argv)
    if args.no_verify_tokengate and args.tokengate_jwks_url is not None:
        parser.error("--no-verify-tokengate contradicts --tokengate-jwks-url")
    try:
        args.tokengate = TokengateOptions(
            login_secret_file=args.tokengate_login_secret_file,
            jwks_url=args.tokengate_jwks_url,
            audience=args.tokengate_audience,
            identity_audience=args.tokengate_identity_audience,
        )
    except ValueError as e:
        parser.error(str(e))
    return args


async def _serve(args: argparse.Namespace) -> None:
    app = create_app(args.data_dir, cookie_secure=args.secure_cookie, tokengate=args.tokengate)
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
    try:
        with (
            contextlib.suppress(KeyboardInterrupt),
            asyncio.Runner(loop_factory=_loop_factory()) as runner,
        ):
            runner.run(_serve(args))
    except (SecretFileError, JwksError, OSError, ImportError) as e:
        logger.error("demo_backend: cannot start: %s", str(e).removeprefix("demo_backend: "))
        raise SystemExit(1) from e


if __name__ == "__main__":
    main()
