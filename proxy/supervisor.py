"""The parent process of ``tokengate serve``: validates, spawns and watches workers.

The config is validated once here so an invalid file fails fast with one clear
message. One worker runs in-process; several are spawned (each binds the ports
with SO_REUSEPORT) and share Prometheus metrics through a fresh multiprocess
directory. Signals: SIGTERM/SIGINT are passed on and the parent waits for the
workers to drain; SIGHUP is passed on (each worker reloads). A worker that
dies unexpectedly is restarted, unless workers keep dying, which stops all.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType

from kms_client.keysetup import audited_keys
from proxy.logs import setup_logging
from proxy.settings import Settings, load_settings

log = logging.getLogger("tokengate.supervisor")
_MAX_RESTARTS = 5
_RESTART_WINDOW = 30.0


def worker_count(requested: int | None, configured: int) -> int:
    """``--workers`` wins, then the config; 0 means one per CPU."""
    n = requested if requested is not None else configured
    return n if n > 0 else (os.cpu_count() or 1)


def _worker_main(config_path: str, index: int, level: str, workers: int) -> None:
    setup_logging(level)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    from proxy.worker import run

    run(Path(config_path), worker_index=index, workers=workers)


class Supervisor:
    """Spawns N workers and keeps them running until told to stop."""

    def __init__(
        self, config_path: Path, workers: int, *, drain_timeout: float, level: str
    ) -> None:
        self._config = str(config_path)
        self._n = workers
        self._drain = drain_timeout
        self._level = level
        self._ctx = multiprocessing.get_context("spawn")
        self._procs: dict[int, BaseProcess] = {}
        self._stopping = False
        self._restarts: list[float] = []

    def _spawn(self, index: int) -> None:
        proc = self._ctx.Process(
            target=_worker_main,
            args=(self._config, index, self._level, self._n),
            name=f"tokengate-worker-{index}",
        )
        proc.start()
        self._procs[index] = proc

    def _signal_all(self, signum: int) -> None:
        for proc in self._procs.values():
            if proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, signum)

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True
        self._signal_all(signal.SIGTERM)

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        self._signal_all(signal.SIGHUP)

    def run(self) -> int:
        """Run until stopped; the exit status is 0 after a clean drain."""
        from prometheus_client import multiprocess

        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)
        for i in range(self._n):
            self._spawn(i)
        status = 0
        while not self._stopping:
            time.sleep(0.2)
            for index, proc in list(self._procs.items()):
                if proc.is_alive() or self._stopping:
                    continue
                if proc.pid is not None:
                    multiprocess.mark_process_dead(proc.pid)  # type: ignore[no-untyped-call]
                if not self._may_restart():
                    log.error("workers keep dying; stopping", extra={"worker": index})
                    self._stopping, status = True, 1
                    self._signal_all(signal.SIGTERM)
                    break
                log.error(
                    "worker died; restarting", extra={"worker": index, "status": proc.exitcode}
                )
                self._spawn(index)
        return max(status, self._wait_all())

    def _may_restart(self) -> bool:
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < _RESTART_WINDOW]
        self._restarts.append(now)
        return len(self._restarts) <= _MAX_RESTARTS

    def _wait_all(self) -> int:
        deadline = time.monotonic() + self._drain + 10.0
        status = 0
        for proc in self._procs.values():
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                log.error("worker did not drain in time; killing", extra={"worker": proc.name})
                proc.kill()
                proc.join()
                status = 1
            elif proc.exitcode not in (0, None):
                status = 1
        return status


async def _prepare(settings: Settings) -> None:
    async with audited_keys(
        keys=settings.gateway.keys,
        audit=settings.gateway.audit,
        data_dir=settings.data_dir,
        production=settings.production,
        background=False,
    ):
        pass


def serve_main(config_path: Path, workers: int | None) -> int:
    """``tokengate serve``: raises PolicyError when the config is invalid."""
    settings = load_settings(config_path)
    setup_logging(settings.gateway.logging.level)
    # Create the dev root, keyring and checkpoint key once, before workers race for them.
    asyncio.run(_prepare(settings))
    n = worker_count(workers, settings.gateway.workers)
    if n == 1:
        from proxy.worker import run

        run(config_path, workers=1)
        return 0
    metrics_dir = tempfile.mkdtemp(prefix="tokengate-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        sup = Supervisor(
            config_path,
            n,
            drain_timeout=settings.gateway.drain_timeout,
            level=settings.gateway.logging.level,
        )
        return sup.run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
