"""mitmproxy embedded in our event loop: a plain Master with exactly the addons the relay needs.

Rules:
- The addons are an explicit list: the relay's addon first (its hooks run
  before mitmproxy's: authentication and the allow list decide before a
  tunnel or a layer exists), then mitmproxy's proxy server, layer selection
  and the relay's TLS addon. No dumper, no event log, no terminal log, no
  flow store, no scripts, no web or console UI: nothing prints or keeps a
  flow. mitmproxy's own loggers are held at WARNING (connection chatter
  would name every peer); none of them prints a body.
- Options are set once, here: regular (forward) proxy mode on the configured
  address; upstream certificates always verified (``ssl_insecure`` False)
  against ``egress.upstream_ca`` or the system's trust store; ``eager``
  connections, so the third party's certificate is checked at CONNECT,
  before the backend's request is read; bodies buffered (never streamed)
  up to the largest route limit.
- :meth:`Relay.start` returns only once the listener is bound; a bind that
  fails raises, so the relay never runs without listening.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path

from mitmproxy import options
from mitmproxy.addons import next_layer, proxyserver
from mitmproxy.master import Master

from proxy.cli.gatewayfile import GatewayFile
from proxy.egress.addon import EgressAddon
from proxy.egress.ca import RelayCa
from proxy.egress.compile import EgressTable
from proxy.egress.errors import EgressError
from proxy.egress.tls import RelayTlsConfig, cert_store
from tokengate.errors import ConfigError


@dataclass(frozen=True, slots=True)
class RelaySettings:
    """What mitmproxy is told: where to listen, whom to trust upstream, how much to buffer."""

    host: str
    port: int
    upstream_ca: Path | None
    max_body: int
    dhparam: Path  # public DH parameters file (created with mitmproxy's defaults if absent)
    confdir: Path  # mitmproxy's own state directory: named so that it is never ~/.mitmproxy,
    # and never created (the relay's TLS addon reads nothing from it)

    @classmethod
    def of(cls, gf: GatewayFile, table: EgressTable) -> RelaySettings:
        """The settings ``egress:`` asks for (paths relative to gateway.yaml's directory)."""
        egress = gf.gateway.egress
        upstream_ca = egress.upstream_ca
        if upstream_ca is not None and not upstream_ca.is_absolute():
            upstream_ca = gf.config_path.parent / upstream_ca
        if upstream_ca is not None and not upstream_ca.is_file():
            raise ConfigError(f"egress.upstream_ca: no such file: {upstream_ca}")
        largest = max([int(egress.max_body), *(r.max_body for r in table.routes.values())])
        return cls(
            host=egress.listen.host,
            port=egress.listen.port,
            upstream_ca=upstream_ca,
            max_body=largest,
            dhparam=gf.data_dir / "egress" / "dhparam.pem",
            confdir=gf.data_dir / "egress" / "mitmproxy",
        )


def upstream_trust(upstream_ca: Path | None) -> tuple[str | None, str | None]:
    """(CA file, CA directory) that verify third parties: the configured file, else the system's.

    When the system has neither (no OpenSSL default file or directory), both
    are None and mitmproxy verifies against certifi's Mozilla bundle.
    """
    if upstream_ca is not None:
        return str(upstream_ca), None
    paths = ssl.get_default_verify_paths()
    cafile = paths.cafile if paths.cafile and Path(paths.cafile).is_file() else None
    capath = paths.capath if paths.capath and Path(paths.capath).is_dir() else None
    return cafile, None if cafile else capath


class Relay:
    """One embedded mitmproxy instance serving the relay's addon."""

    def __init__(self, addon: EgressAddon, ca: RelayCa, settings: RelaySettings) -> None:
        self._addon = addon
        self._ca = ca
        self._settings = settings
        self._master: Master | None = None
        self._server: proxyserver.Proxyserver | None = None

    @property
    def addon(self) -> EgressAddon:
        """The relay's addon (a reload swaps its routes and clients)."""
        return self._addon

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); only after :meth:`start`."""
        if self._server is None or not self._server.listen_addrs():
            raise RuntimeError("egress: the relay is not listening")
        host, port, *_ = self._server.listen_addrs()[0]
        return str(host), int(port)

    @property
    def addon_names(self) -> tuple[str, ...]:
        """The addons mitmproxy runs, in hook order (the explicit list; nothing else)."""
        if self._master is None:
            return ()
        return tuple(self._master.addons.lookup)

    async def start(self) -> None:
        """Build the master, bind the listener; EgressError if it cannot listen."""
        logging.getLogger("mitmproxy").setLevel(logging.WARNING)
        s = self._settings
        cafile, capath = upstream_trust(s.upstream_ca)
        opts = options.Options(
            confdir=str(s.confdir),
            listen_host=s.host,
            listen_port=s.port,
            mode=["regular"],
            ssl_insecure=False,
            ssl_verify_upstream_trusted_ca=cafile,
            ssl_verify_upstream_trusted_confdir=capath,
            upstream_cert=True,
            add_upstream_certs_to_client_chain=False,
        )
        master = Master(opts, event_loop=asyncio.get_running_loop(), with_termlog=False)
        store = await asyncio.to_thread(cert_store, self._ca, s.dhparam)
        # mitmproxy leaves these three untyped.
        server = proxyserver.Proxyserver()  # type: ignore[no-untyped-call]
        addons = (self._addon, server, next_layer.NextLayer(), RelayTlsConfig(store))
        master.addons.add(*addons)  # type: ignore[no-untyped-call]
        master.options.update(  # type: ignore[no-untyped-call]
            connection_strategy="eager",
            body_size_limit=str(s.max_body),
            stream_large_bodies=None,
            validate_inbound_headers=True,
        )
        self._master, self._server = master, server
        if not await server.setup_servers() or not server.listen_addrs():
            await self.stop()
            raise EgressError("internal_error", f"cannot listen on {s.host}:{s.port}")
        await master.running()

    async def stop(self) -> None:
        """Close the listener, then let mitmproxy's addons finish."""
        master, server = self._master, self._server
        self._master = self._server = None
        if server is not None:
            await server.servers.update([])
        if master is not None:
            await master.done()
