"""tee.address: one spelling of worker addresses for both sides."""

from __future__ import annotations

from pathlib import Path

import pytest

from tee.address import WorkerAddress
from tokengate.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "want", "url", "loopback"),
    [
        ("unix:/run/w.sock", WorkerAddress(unix=Path("/run/w.sock")), "http://worker", True),
        (
            "127.0.0.1:8700",
            WorkerAddress(host="127.0.0.1", port=8700),
            "http://127.0.0.1:8700",
            True,
        ),
        (
            "http://127.0.0.1:8700/",
            WorkerAddress(host="127.0.0.1", port=8700),
            "http://127.0.0.1:8700",
            True,
        ),
        ("[::1]:8700", WorkerAddress(host="::1", port=8700), "http://[::1]:8700", True),
        ("localhost:1", WorkerAddress(host="localhost", port=1), "http://localhost:1", True),
        ("10.0.0.1:8700", WorkerAddress(host="10.0.0.1", port=8700), "http://10.0.0.1:8700", False),
        ("0.0.0.0:8700", WorkerAddress(host="0.0.0.0", port=8700), "http://0.0.0.0:8700", False),
        (
            "worker.svc:8700",
            WorkerAddress(host="worker.svc", port=8700),
            "http://worker.svc:8700",
            False,
        ),
    ],
    ids=["unix", "v4", "http-prefix", "v6", "localhost", "private", "any", "name"],
)
def test_parse(text: str, want: WorkerAddress, url: str, loopback: bool) -> None:
    got = WorkerAddress.parse(text)
    assert got == want
    assert got.base_url == url
    assert got.is_loopback is loopback
    assert WorkerAddress.parse(str(got)) == got


@pytest.mark.parametrize(
    "text",
    ["unix:", "127.0.0.1", ":80", "host:0", "host:65536", "host:port", ""],
    ids=["unix-empty", "no-port", "no-host", "port0", "port-high", "port-name", "empty"],
)
def test_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="tee"):
        WorkerAddress.parse(text)
