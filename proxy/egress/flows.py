"""mitmproxy flows as the relay's checks and field rules read and write them.

Headers cross between mitmproxy (bytes pairs) and field rules (text pairs,
:data:`policy.message.HeaderList`) with UTF-8 and ``surrogateescape``, so any
byte a header held comes back unchanged. A call's Host header and TLS server
name must name the host the client CONNECTed to: a tunnel opened to an
allow-listed host cannot carry calls meant for another name served from the
same address.
"""

from __future__ import annotations

from mitmproxy import http

from policy.message import HeaderList
from proxy.egress.errors import EgressError


def same_target(flow: http.HTTPFlow, host: str) -> None:
    """The Host header and TLS server name, when present, are the CONNECT target."""
    sni = flow.client_conn.sni
    if sni is not None and sni.lower().rstrip(".") != host:
        raise EgressError("misdirected_request", "TLS server name is not the CONNECT target")
    header = flow.request.host_header
    if header is not None and authority_host(header) != host:
        raise EgressError("misdirected_request", "Host header is not the CONNECT target")


def authority_host(authority: str) -> str:
    """The host part of ``host[:port]`` / ``[v6][:port]``, lowercased."""
    authority = authority.strip().lower()
    if authority.startswith("["):
        return authority[1 : authority.find("]")] if "]" in authority else authority
    return authority.rsplit(":", 1)[0].rstrip(".") if ":" in authority else authority.rstrip(".")


def header_list(headers: http.Headers) -> HeaderList:
    """The headers as field rules read them: text pairs, wire order."""
    return tuple(
        (k.decode("utf-8", "surrogateescape"), v.decode("utf-8", "surrogateescape"))
        for k, v in headers.fields
    )


def mitm_headers(pairs: HeaderList) -> http.Headers:
    """Field rules' headers back as mitmproxy's."""
    return http.Headers(
        [
            (k.encode("utf-8", "surrogateescape"), v.encode("utf-8", "surrogateescape"))
            for k, v in pairs
        ]
    )
