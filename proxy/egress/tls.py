"""mitmproxy's TLS addon with the relay's CA in memory and the third party named by CONNECT.

Two departures from mitmproxy's own :class:`~mitmproxy.addons.tlsconfig.TlsConfig`:
- its certificate store is the relay's CA (:mod:`proxy.egress.ca`), built in
  memory: mitmproxy's ``confdir`` (which would hold an unencrypted CA key) is
  never read or written;
- the third party's certificate is verified against the host the backend
  CONNECTed to, never against a TLS server name the backend chose: a tunnel
  opened to an allow-listed host cannot be pointed at another name served
  from the same address.
Verification itself is mitmproxy's (``ssl_insecure`` stays False; the trust
store is set by :mod:`proxy.egress.relay`).
"""

from __future__ import annotations

from pathlib import Path

from mitmproxy import certs, connection, tls
from mitmproxy.addons import tlsconfig

from proxy.egress.ca import RelayCa

# Options whose change makes mitmproxy rebuild its store from confdir: ignored here.
_STORE_OPTIONS = frozenset({"certs", "confdir", "key_size", "cert_passphrase"})


def cert_store(ca: RelayCa, dhparam: Path) -> certs.CertStore:
    """mitmproxy's certificate store around the relay's CA (``dhparam``: public DH parameters)."""
    return certs.CertStore(
        default_privatekey=ca.key,
        default_ca=certs.Cert(ca.cert),
        default_chain_file=None,
        default_crl=certs.dummy_crl(ca.key, ca.cert),
        dhparams=certs.CertStore.load_dhparam(dhparam),
    )


class RelayTlsConfig(tlsconfig.TlsConfig):
    """TLS for both legs, with the relay's CA and CONNECT-named upstream verification."""

    name = "tlsconfig"

    def __init__(self, store: certs.CertStore) -> None:
        self.certstore = store

    def configure(self, updated: set[str]) -> None:
        """mitmproxy's option checks, without rebuilding the store from confdir."""
        super().configure(set(updated) - _STORE_OPTIONS)  # type: ignore[no-untyped-call]

    def running(self) -> None:
        """mitmproxy re-reads confdir here; the relay's store is already in place."""

    def tls_start_server(self, tls_start: tls.TlsData) -> None:
        """Verify the third party as the CONNECT target, whatever name the client sent."""
        server = tls_start.conn
        if isinstance(server, connection.Server) and server.address is not None:
            server.sni = str(server.address[0])
        super().tls_start_server(tls_start)
