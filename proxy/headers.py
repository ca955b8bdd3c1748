"""Header rules for forwarding, pure functions with no IO.

Rules:
- Hop-by-hop headers (RFC 9110 section 7.6.1) never cross the gateway, nor does
  any header named in ``Connection``. ``Transfer-Encoding`` and framing are
  re-done by each side's HTTP stack; ``Content-Length`` is kept only when the
  body is passed unchanged.
- ``X-Forwarded-For/-Proto/-Host`` and ``Forwarded`` from the client are kept
  (and appended to) only when the TCP peer is a configured trusted proxy;
  otherwise they are replaced with what the gateway itself saw.
- A client's ``X-Request-ID`` is kept only if it is short and plain, so it
  cannot inject into logs; otherwise the gateway makes a new one.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from multidict import CIMultiDict, CIMultiDictProxy

HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Proxy-Connection",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
    )
)
FORWARDING = frozenset(("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded"))
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
_TOKEN_CHARS = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def connection_listed(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> set[str]:
    """Lower-cased header names listed in every ``Connection`` header."""
    names: set[str] = set()
    for value in headers.getall("Connection", []):
        names.update(t.strip().lower() for t in value.split(",") if t.strip())
    return names


def strip_hop_by_hop(
    headers: CIMultiDictProxy[str] | CIMultiDict[str], *, drop: Iterable[str] = ()
) -> CIMultiDict[str]:
    """A copy without hop-by-hop headers, those listed in Connection, and ``drop``."""
    banned = _banned(tuple(drop))
    if "Connection" in headers:
        banned = banned | connection_listed(headers)
    return CIMultiDict([(k, v) for k, v in headers.items() if k.lower() not in banned])


@functools.lru_cache(maxsize=32)
def _banned(drop: tuple[str, ...]) -> frozenset[str]:
    """HOP_BY_HOP plus ``drop``, lower-cased (callers pass a few constant tuples)."""
    return HOP_BY_HOP | {d.lower() for d in drop}


def is_trusted(peer: str | None, trusted: Sequence[IPNetwork]) -> bool:
    """Whether the TCP peer address is inside a trusted-proxies network."""
    if not peer or not trusted:
        return False
    try:
        addr = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(addr in net for net in trusted)


@dataclass(frozen=True, slots=True)
class ClientView:
    """What the gateway itself saw of a request."""

    peer: str | None
    scheme: str
    host: str


def _forwarded_node(addr: str | None) -> str:
    if not addr:
        return '"unknown"'
    if ":" in addr:
        return f'"[{addr}]"'
    return addr


def _forwarded_value(value: str) -> str:
    return (
        value if _TOKEN_CHARS.match(value) else '"' + value.replace('"', "").replace("\\", "") + '"'
    )


def set_forwarding(
    out: CIMultiDict[str],
    incoming: CIMultiDictProxy[str] | CIMultiDict[str],
    view: ClientView,
    *,
    trusted: bool,
) -> None:
    """Write X-Forwarded-* and Forwarded into ``out`` per the trust rule above."""
    for name in FORWARDING:
        out.popall(name, None)
    prior_xff = incoming.getall("X-Forwarded-For", []) if trusted else []
    chain = [p.strip() for v in prior_xff for p in v.split(",") if p.strip()]
    out["X-Forwarded-For"] = ", ".join([*chain, view.peer or "unknown"])
    proto = incoming.get("X-Forwarded-Proto") if trusted else None
    out["X-Forwarded-Proto"] = proto or view.scheme
    fhost = incoming.get("X-Forwarded-Host") if trusted else None
    out["X-Forwarded-Host"] = fhost or view.host
    element = (
        f"for={_forwarded_node(view.peer)};proto={view.scheme};host={_forwarded_value(view.host)}"
    )
    prior = incoming.getall("Forwarded", []) if trusted else []
    out["Forwarded"] = ", ".join([*prior, element])


def request_id(supplied: str | None) -> str:
    """The client's request id when it is safe to log and forward, else a new one."""
    if supplied and _REQUEST_ID.match(supplied):
        return supplied
    return secrets.token_hex(16)
