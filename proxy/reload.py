"""Atomic configuration reload: on SIGHUP and when a config file changes.

A reload builds a complete new :class:`Settings` off the event loop; only if
it is valid, and its audit entry is persisted, is it swapped in. Otherwise the
old settings keep serving and the log says why (file, YAML path, problem).
Listeners, workers, data_dir and TLS files are bound at start: changing them
in a reload is reported as needing a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from policy.errors import PolicyError
from proxy import metrics
from proxy.settings import Settings, load_settings, policy_paths
from proxy.state import Live
from proxy.upstreams import UpstreamPool

log = logging.getLogger("tokengate.reload")
_RESTART_ONLY = ("listen", "admin", "workers", "data_dir", "mode")

AuditHook = Callable[[str, Settings | None, str], Awaitable[None]]


def _fingerprint(settings: Settings) -> tuple[tuple[str, int, int], ...]:
    """(path, mtime_ns, size) of every config file, including newly globbed policies."""
    paths = [settings.config_path, *policy_paths(settings.gateway, settings.config_path.parent)]
    out = []
    for p in paths:
        try:
            st = p.stat()
            out.append((str(p), st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((str(p), -1, -1))
    return tuple(out)


class Reloader:
    """Reloads ``live`` from its config path; one reload at a time."""

    def __init__(self, live: Live, pool: UpstreamPool, *, audit: AuditHook) -> None:
        self._live = live
        self._pool = pool
        self._audit = audit
        self._lock = asyncio.Lock()
        self._seen = _fingerprint(live.settings)

    async def reload(self, reason: str) -> bool:
        """Try a reload; True when the new settings now serve."""
        async with self._lock:
            old = self._live.settings
            try:
                new = await asyncio.to_thread(load_settings, old.config_path)
            except PolicyError as e:
                metrics.RELOADS.labels("rejected").inc()
                log.error(
                    "reload rejected, old config keeps serving", extra={"problems": e.problems}
                )
                await self._record("rejected", None, reason)
                return False
            if not await self._record("ok", new, reason):
                log.error("reload refused: its audit entry could not be persisted")
                return False
            for key in _RESTART_ONLY:
                if getattr(old.gateway, key) != getattr(new.gateway, key):
                    log.warning("config key %r changed: takes effect after a restart", key)
            self._pool.update(new.gateway.upstreams)
            self._live.settings = new
            self._seen = await asyncio.to_thread(_fingerprint, new)
            metrics.RELOADS.labels("ok").inc()
            log.info("config reloaded (%s)", reason, extra={"digest": new.digest[:16]})
            return True

    async def _record(self, result: str, new: Settings | None, reason: str) -> bool:
        try:
            await self._audit(result, new, reason)
        except Exception as e:  # any audit failure refuses the act it records
            log.error("audit of reload failed", extra={"error": type(e).__name__})
            return False
        return True

    async def watch(self, interval: float) -> None:
        """Poll config files every ``interval`` seconds and reload on change."""
        while True:
            await asyncio.sleep(interval)
            current = await asyncio.to_thread(_fingerprint, self._live.settings)
            if current != self._seen:
                self._seen = current
                await self.reload("file change")
