"""X-Forwarded-* and Forwarded: kept only from trusted proxies."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from multidict import CIMultiDict

from proxy.headers import (
    ClientView,
    connection_listed,
    request_id,
    set_forwarding,
    strip_hop_by_hop,
)
from tests.proxy.conftest import Backend, GatewayFactory, write_config

SPOOFED = {
    "X-Forwarded-For": "6.6.6.6",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "evil.example",
    "Forwarded": "for=6.6.6.6;proto=https",
}


@pytest.mark.parametrize(
    ("trusted", "xff", "proto", "fhost", "forwarded"),
    [
        ("[]", "127.0.0.1", "http", "{host}", 'for=127.0.0.1;proto=http;host="{host}"'),
        (
            "[127.0.0.0/8]",
            "6.6.6.6, 127.0.0.1",
            "https",
            "evil.example",
            'for=6.6.6.6;proto=https, for=127.0.0.1;proto=http;host="{host}"',
        ),
    ],
)
async def test_forwarded_headers_trust(
    tmp_path: Path,
    backend: Backend,
    start_gateway: GatewayFactory,
    trusted: str,
    xff: str,
    proto: str,
    fhost: str,
    forwarded: str,
) -> None:
    gw = await start_gateway(
        write_config(tmp_path, backend.url, gateway_extra=f"trusted_proxies: {trusted}\n")
    )
    host = f"127.0.0.1:{gw.port}"
    async with aiohttp.ClientSession() as s, s.get(f"{gw.url}/echo", headers=SPOOFED) as r:
        seen = (await r.json())["headers"]
    assert seen["X-Forwarded-For"] == xff
    assert seen["X-Forwarded-Proto"] == proto
    assert seen["X-Forwarded-Host"] == fhost.format(host=host)
    assert seen["Forwarded"] == forwarded.format(host=host)


def test_untrusted_peer_headers_replaced_not_appended() -> None:
    out: CIMultiDict[str] = CIMultiDict(SPOOFED)
    set_forwarding(out, CIMultiDict(SPOOFED), ClientView("10.0.0.5", "http", "app"), trusted=False)
    assert out.getall("X-Forwarded-For") == ["10.0.0.5"]
    assert out.getall("Forwarded") == ["for=10.0.0.5;proto=http;host=app"]


def test_ipv6_peer_is_quoted_in_forwarded() -> None:
    out: CIMultiDict[str] = CIMultiDict()
    set_forwarding(out, CIMultiDict(), ClientView("::1", "https", "app"), trusted=False)
    assert out["Forwarded"] == 'for="[::1]";proto=https;host=app'


def test_connection_listed_and_strip() -> None:
    headers = CIMultiDict(
        [
            ("Connection", "close, X-A"),
            ("Connection", "x-b"),
            ("X-A", "1"),
            ("X-B", "2"),
            ("X-C", "3"),
        ]
    )
    assert connection_listed(headers) == {"close", "x-a", "x-b"}
    assert dict(strip_hop_by_hop(headers)) == {"X-C": "3"}


@pytest.mark.parametrize(
    ("given", "kept"),
    [("abcdef12", True), ("a" * 129, False), ("x\ny1234567", False), (None, False)],
)
def test_request_id_rules(given: str | None, kept: bool) -> None:
    assert (request_id(given) == given) is kept
