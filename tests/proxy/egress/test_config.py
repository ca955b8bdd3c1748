"""The egress: section: loopback unless said otherwise, unique clients."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from proxy.egress.config import EgressConfig, EgressListen, is_loopback

DIGEST_A, DIGEST_B = "a" * 64, "b" * 64


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("10.0.0.5", False),
        ("relay.internal", False),
        ("::", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_a_non_loopback_listener_must_be_allowed() -> None:
    with pytest.raises(ValidationError, match="allow_remote_clients"):
        EgressListen(host="0.0.0.0")
    assert EgressListen(host="0.0.0.0", allow_remote_clients=True).host == "0.0.0.0"


def test_defaults_refuse_unlisted_hosts_and_listen_on_loopback() -> None:
    config = EgressConfig()
    assert (config.unlisted_hosts, config.listen.host, config.clients) == (
        "refuse",
        "127.0.0.1",
        [],
    )


@pytest.mark.parametrize(
    "clients",
    [
        [{"name": "a", "sha256": DIGEST_A}, {"name": "a", "sha256": DIGEST_B}],
        [{"name": "a", "sha256": DIGEST_A}, {"name": "b", "sha256": DIGEST_A}],
    ],
    ids=["same-name", "same-secret"],
)
def test_clients_are_unique(clients: list[dict[str, str]]) -> None:
    with pytest.raises(ValidationError, match=r"egress\.clients"):
        EgressConfig.model_validate({"clients": clients})


def test_unknown_keys_are_errors() -> None:
    with pytest.raises(ValidationError, match="extra"):
        EgressConfig.model_validate({"ssl_insecure": True})
