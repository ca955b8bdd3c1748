"""Reloading the egress relay on SIGHUP: new routes and clients swap in whole, or not at all.

A reload reads gateway.yaml and the egress policy files again, off the event
loop, and compiles them exactly as a start does (:func:`load_egress`). Only a
complete, valid result is swapped into the addon, in one synchronous step;
otherwise the running routes and clients keep serving and the log says why
(file, YAML path, problem), as the gateway's own reload does.

What a reload changes: the egress routes (and the field classes they use),
``egress.clients`` and ``egress.unlisted_hosts``. What the relay opened at
start stays as it is: listener and admin listener, ``upstream_ca``, the
relay's buffer limit (``max_body``, the largest route limit at start), the
keyring, vault, audit log, CA name, data_dir and mode. A reload that changes
those still applies the rest and warns, per setting, that it takes effect
after a restart.

Every attempt is audited (``egress.reload``, result ``ok`` or ``rejected``)
before it takes effect; a reload whose entry cannot be persisted is not
applied. A removed client, or one given a new secret, loses access at once,
including tunnels it already opened (:meth:`EgressAddon.replace_rules`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from audit.errors import AuditError
from audit.log import AuditLog
from policy.errors import PolicyError
from proxy.cli.gatewayfile import GatewayFile, load_gateway_file
from proxy.egress.addon import EgressAddon
from proxy.egress.clients import ClientTable
from proxy.egress.compile import EgressTable, load_egress
from proxy.egress.relay import RelaySettings
from tokengate.errors import ConfigError

log = logging.getLogger("tokengate.egress")


@dataclass(frozen=True, slots=True)
class _Loaded:
    gf: GatewayFile
    table: EgressTable
    settings: RelaySettings


class EgressReloader:
    """Reloads one running relay's routes and clients from its config path; one at a time."""

    def __init__(
        self,
        config_path: Path,
        *,
        addon: EgressAddon,
        audit: AuditLog,
        started: GatewayFile,
        settings: RelaySettings,
    ) -> None:
        self._path = config_path
        self._addon = addon
        self._audit = audit
        self._started = started
        self._settings = settings
        self._lock = asyncio.Lock()

    async def reload(self, trigger: str) -> bool:
        """Try a reload; True when the new routes and clients now serve."""
        async with self._lock:
            try:
                new = await asyncio.to_thread(self._load)
            except (PolicyError, ConfigError) as e:
                problems = e.problems if isinstance(e, PolicyError) else [str(e)]
                log.error(
                    "egress reload rejected, the running routes keep serving",
                    extra={"problems": problems},
                )
                await self._record("rejected", trigger, None)
                return False
            except Exception:  # a file vanished mid-read, a bug: still nothing half-applied
                log.exception("egress reload failed, the running routes keep serving")
                await self._record("rejected", trigger, None)
                return False
            if not await self._record("ok", trigger, new):
                log.error("egress reload refused: its audit entry could not be persisted")
                return False
            for setting in _restart_only(self._started, self._settings, new):
                log.warning("egress reload: %s changed; takes effect after a restart", setting)
            egress = new.gf.gateway.egress
            self._addon.replace_rules(
                table=new.table,
                clients=ClientTable(egress.clients),
                unlisted_hosts=egress.unlisted_hosts,
            )
            log.info(
                "egress reloaded (%s): %d routes, %d clients",
                trigger,
                len(new.table),
                len(egress.clients),
            )
            return True

    def _load(self) -> _Loaded:
        """Read and compile everything (in a thread): PolicyError or ConfigError if invalid."""
        gf = load_gateway_file(self._path)
        egress = gf.gateway.egress
        if not egress.clients:
            raise ConfigError("egress.clients: a reload may not remove every client")
        table = load_egress(egress, gf.config_path.parent, gf.classes)
        return _Loaded(gf, table, RelaySettings.of(gf, table))

    async def _record(self, result: str, trigger: str, new: _Loaded | None) -> bool:
        """The ``egress.reload`` entry; False (nothing applied) if it cannot be persisted."""
        try:
            await self._audit.emit(
                "egress.reload",
                result=result,
                trigger=trigger,
                routes=len(new.table) if new is not None else None,
                clients=len(new.gf.gateway.egress.clients) if new is not None else None,
            )
        except AuditError as e:
            log.error("audit of egress reload failed", extra={"error": type(e).__name__})
            return False
        return True


def _restart_only(started: GatewayFile, settings: RelaySettings, new: _Loaded) -> Iterator[str]:
    """The settings bound at start that ``new`` changes, by config name."""
    old_gw, new_gw = started.gateway, new.gf.gateway
    relay = (
        ("egress.listen", (settings.host, settings.port), (new.settings.host, new.settings.port)),
        ("egress.upstream_ca", settings.upstream_ca, new.settings.upstream_ca),
        ("egress.max_body (the relay's buffer limit)", settings.max_body, new.settings.max_body),
        ("egress.admin", old_gw.egress.admin, new_gw.egress.admin),
        ("egress.ca_common_name", old_gw.egress.ca_common_name, new_gw.egress.ca_common_name),
        ("data_dir", started.data_dir, new.gf.data_dir),
    )
    for name, before, after in relay:
        if before != after:
            yield name
    for key in ("mode", "keys", "vault", "audit", "tokenization"):
        if getattr(old_gw, key) != getattr(new_gw, key):
            yield key
