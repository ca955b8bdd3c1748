"""Reloading the relay: new routes and clients swap in whole; a broken config keeps the old.

Driven through the real relay (open_egress), a real HTTPS third party and a
real client finding the relay through HTTPS_PROXY. The SIGHUP wiring of
``tokengate egress serve`` is tested with the command (tests/proxy/cli).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from audit.errors import AuditUnavailableError
from tests.proxy.egress.conftest import Relay, RelayClient, RelayFactory, ThirdParty

ROUTES = """
egress:
  - name: payments
    match: {{host: localhost, methods: [POST], prefix: /v1/}}
    port: {port}
"""
MORE_ROUTES = (
    ROUTES
    + """\
  - name: refunds
    match: {{host: localhost, methods: [POST], prefix: /v2/}}
    port: {port}
"""
)


async def _relay(start: RelayFactory, party: ThirdParty) -> Relay:
    return await start(ROUTES.format(port=party.port), upstream_ca=party.ca.cert_pem.bytes())


def _routes_file(relay: Relay) -> Path:
    return relay.directory / "egress" / "routes.yaml"


async def _post(client: RelayClient, party: ThirdParty, path: str) -> int:
    status, _, _ = await client.call("POST", f"https://localhost:{party.port}{path}", json={})
    return status


async def test_a_new_route_serves_after_reload_and_is_audited(
    start_relay: RelayFactory, third_party: ThirdParty
) -> None:
    relay = await _relay(start_relay, third_party)
    async with RelayClient(relay) as client:
        assert await _post(client, third_party, "/v2/refunds") == 403
        _routes_file(relay).write_text(MORE_ROUTES.format(port=third_party.port))
        assert await relay.running.reloader.reload("test") is True
        assert await _post(client, third_party, "/v2/refunds") == 200
        assert await _post(client, third_party, "/v1/charges") == 200
    assert [s.path for s in third_party.seen] == ["/v2/refunds", "/v1/charges"]
    (entry,) = relay.audit_entries("egress.reload")
    assert entry["result"] == "ok"
    assert entry["trigger"] == "test"
    assert (entry["routes"], entry["clients"]) == (2, 2)


@pytest.mark.parametrize(
    ("broken", "problem"),
    [
        ("egress: [{name: x}]\n", r"egress/routes\.yaml: egress\[0\]"),
        ("egress:\n  - name: payments\n    match: {host: '*'}\n", r"egress/routes\.yaml"),
        (": not yaml :\n  - [\n", r"egress/routes\.yaml"),
    ],
    ids=["missing-keys", "bare-wildcard-host", "not-yaml"],
)
async def test_a_broken_route_file_keeps_the_running_routes(
    start_relay: RelayFactory,
    third_party: ThirdParty,
    caplog: pytest.LogCaptureFixture,
    broken: str,
    problem: str,
) -> None:
    relay = await _relay(start_relay, third_party)
    _routes_file(relay).write_text(broken)
    caplog.set_level(logging.ERROR, logger="tokengate.egress")
    assert await relay.running.reloader.reload("test") is False
    async with RelayClient(relay) as client:
        assert await _post(client, third_party, "/v1/charges") == 200
    (record,) = [r for r in caplog.records if "reload rejected" in r.getMessage()]
    assert any(re.search(problem, p) for p in record.problems)  # type: ignore[attr-defined]
    (entry,) = relay.audit_entries("egress.reload")
    assert entry["result"] == "rejected"
    assert (entry["routes"], entry["clients"]) == (None, None)


async def test_a_removed_client_is_cut_off_on_its_open_tunnel(
    start_relay: RelayFactory, third_party: ThirdParty
) -> None:
    relay = await _relay(start_relay, third_party)
    config = relay.directory / "gateway.yaml"
    # One client at a time: RelayClient finds the relay through the process's HTTPS_PROXY.
    async with RelayClient(relay, client="intruder") as intruder:
        assert await _post(intruder, third_party, "/v1/a") == 200  # its tunnel is open now
        lines = config.read_text().splitlines(keepends=True)
        config.write_text("".join(line for line in lines if "name: intruder" not in line))
        assert await relay.running.reloader.reload("test") is True
        assert await _post(intruder, third_party, "/v1/b") == 407  # same connection, refused
    async with RelayClient(relay, client="intruder") as again:
        assert await _post(again, third_party, "/v1/c") == 407  # a new CONNECT, refused
    async with RelayClient(relay) as backend:
        assert await _post(backend, third_party, "/v1/d") == 200
    assert [s.path for s in third_party.seen] == ["/v1/a", "/v1/d"]


async def test_an_unexpected_failure_keeps_the_running_routes(
    start_relay: RelayFactory, third_party: ThirdParty, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay = await _relay(start_relay, third_party)
    _routes_file(relay).write_text(MORE_ROUTES.format(port=third_party.port))

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk went away")

    monkeypatch.setattr("proxy.egress.reload.load_egress", broken)
    assert await relay.running.reloader.reload("test") is False
    assert list(relay.running.relay.addon.table.routes) == ["payments"]
    monkeypatch.undo()
    assert await relay.running.reloader.reload("test") is True  # the next one still works
    results = [e["result"] for e in relay.audit_entries("egress.reload")]
    assert results == ["rejected", "ok"]


async def test_a_reload_may_not_remove_every_client(
    start_relay: RelayFactory, third_party: ThirdParty
) -> None:
    relay = await _relay(start_relay, third_party)
    config = relay.directory / "gateway.yaml"
    lines = config.read_text().splitlines(keepends=True)
    config.write_text("".join(line for line in lines if "sha256:" not in line))
    assert await relay.running.reloader.reload("test") is False
    async with RelayClient(relay) as client:
        assert await _post(client, third_party, "/v1/charges") == 200


async def test_settings_bound_at_start_warn_and_the_rest_applies(
    start_relay: RelayFactory, third_party: ThirdParty, caplog: pytest.LogCaptureFixture
) -> None:
    relay = await _relay(start_relay, third_party)
    config = relay.directory / "gateway.yaml"
    text = re.sub(r"port: \d+\}", "port: 1}", config.read_text(), count=1)
    config.write_text(text.replace("upstreams:", "mode: development\nupstreams:"))
    _routes_file(relay).write_text(MORE_ROUTES.format(port=third_party.port))
    caplog.set_level(logging.WARNING, logger="tokengate.egress")
    assert await relay.running.reloader.reload("test") is True
    warned = [r.getMessage() for r in caplog.records if "after a restart" in r.getMessage()]
    assert warned == ["egress reload: egress.listen changed; takes effect after a restart"]
    async with RelayClient(relay) as client:  # still on the port it started with
        assert await _post(client, third_party, "/v2/refunds") == 200


async def test_an_unpersisted_audit_entry_refuses_the_reload(
    start_relay: RelayFactory, third_party: ThirdParty, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay = await _relay(start_relay, third_party)
    _routes_file(relay).write_text(MORE_ROUTES.format(port=third_party.port))

    async def unpersisted(event: str, **fields: object) -> None:
        raise AuditUnavailableError("audit: sink down")

    monkeypatch.setattr(relay.running.audit, "emit", unpersisted)
    assert await relay.running.reloader.reload("test") is False
    assert list(relay.running.relay.addon.table.routes) == ["payments"]
