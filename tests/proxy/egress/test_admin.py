"""The relay's admin listener on a real relay: probes, readiness failures, metrics.

Metrics are read back from the exposition text with prometheus_client's own
parser; every count asserted has a twin that must stay absent or zero.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port
from tests.proxy.egress.conftest import Relay, RelayClient, RelayFactory, ThirdParty
from tests.proxy.sessions.servers import start

PAN = "4111111111111111"
ADMIN = "admin: {host: 127.0.0.1, port: 0}\n"
ROUTES = """
egress:
  - name: payments
    match: {{host: localhost, methods: [POST], prefix: /v1/}}
    port: {port}
    release: {{classes: [pan], max_values: 5}}
    rate_limit: {{values: 100, window: 1m}}
    request:
      - {{field: $.card.number, action: detokenize, class: pan, allow: {{roles: [payments]}}}}
"""


async def _get(relay: Relay, path: str) -> tuple[int, Any]:
    """(status, JSON body or text) of one admin request (no proxy involved)."""
    assert relay.running.admin_address is not None
    host, port = relay.running.admin_address
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://{host}:{port}/.tokengate/{path}") as resp,
    ):
        if resp.content_type == "application/json":
            return resp.status, await resp.json()
        return resp.status, await resp.text()


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``{(sample name, sorted labels): value}`` of an exposition text."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def _relay(start_relay: RelayFactory, party: ThirdParty, *, gateway_extra: str = "") -> Relay:
    return await start_relay(
        ROUTES.format(port=party.port),
        upstream_ca=party.ca.cert_pem.bytes(),
        egress_extra=ADMIN,
        gateway_extra=gateway_extra,
    )


async def test_probes_answer_on_a_running_relay(
    start_relay: RelayFactory, third_party: ThirdParty
) -> None:
    relay = await _relay(start_relay, third_party)
    assert relay.running.admin_address is not None
    assert relay.running.admin_address[1] not in (0, relay.port)
    assert await _get(relay, "healthz") == (200, {"status": "ok"})
    status, body = await _get(relay, "readyz")
    assert status == 200
    assert body == {"status": "ready", "checks": {"keyring": "ok", "vault": "ok", "audit": "ok"}}


async def test_no_admin_section_serves_no_admin_listener(
    start_relay: RelayFactory, third_party: ThirdParty
) -> None:
    relay = await start_relay(
        ROUTES.format(port=third_party.port), upstream_ca=third_party.ca.cert_pem.bytes()
    )
    assert relay.running.admin_address is None


async def test_metrics_count_releases_and_refusals_and_carry_no_values(
    start_relay: RelayFactory, third_party: ThirdParty
) -> None:
    relay = await _relay(start_relay, third_party)
    pan, other = await relay.tokens("pan", PAN, "5500000000000004")
    url = f"https://localhost:{third_party.port}/v1/charges"
    async with RelayClient(relay) as client:
        sent = await client.call("POST", url, json={"card": {"number": pan}})
    async with RelayClient(relay, client="intruder") as client:  # no role: denied
        denied = await client.call("POST", url, json={"card": {"number": other}})
    async with RelayClient(relay, secret="tge_wrong") as client:  # bad secret: 407
        unauthenticated = await client.call("POST", url, json={"card": {"number": other}})
    assert (sent[0], denied[0], unauthenticated[0]) == (200, 403, 407)
    assert len(third_party.seen) == 1

    status, text = await _get(relay, "metrics")
    assert status == 200
    samples = _samples(text)
    calls = "tokengate_egress_calls_total"
    assert samples[(calls, (("outcome", "sent"), ("route", "payments")))] == 1
    assert samples[(calls, (("outcome", "refused"), ("route", "payments")))] == 1
    assert samples[(calls, (("outcome", "refused"), ("route", "_none")))] == 1
    released = "tokengate_egress_released_values_total"
    # The denied call's value was withheld (audited as deny): one value released, not two.
    assert samples[(released, (("field_class", "pan"), ("route", "payments")))] == 1
    refusals = "tokengate_egress_refusals_total"
    assert samples[(refusals, (("code", "denied"),))] == 1
    assert samples[(refusals, (("code", "proxy_auth_required"),))] == 1
    codes = {dict(labels)["code"] for name, labels in samples if name == refusals}
    assert codes == {"denied", "proxy_auth_required"}
    # Labels carry config names and codes only: no value, token, path, host or client.
    for leaked in (PAN, pan, other, "/v1", "charges", "localhost", "backend", "intruder"):
        assert leaked not in text
    assert "tokengate_requests" not in text  # the gateway's registry is not the relay's


async def test_readyz_is_503_while_the_vault_is_down(
    start_relay: RelayFactory, third_party: ThirdParty, tmp_path: Path
) -> None:
    server = start(tmp_path / "redis", free_port())
    try:
        relay = await _relay(
            start_relay,
            third_party,
            gateway_extra=(
                f'vault: {{url: "redis://127.0.0.1:{server.port}/0", '
                "accept_volatile: true, timeout: 0.5}\n"
            ),
        )
        assert (await _get(relay, "readyz"))[0] == 200
        server.stop()
        # Answers are cached for a second: wait for the first uncached one.
        deadline = time.monotonic() + 15
        status, body = await _get(relay, "readyz")
        while status == 200 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            status, body = await _get(relay, "readyz")
    finally:
        server.stop()
    assert status == 503
    assert body == {
        "status": "not_ready",
        "checks": {"keyring": "ok", "vault": "failed", "audit": "ok"},
    }
    assert (await _get(relay, "healthz"))[0] == 200  # alive, just not ready


async def test_readyz_is_503_while_the_keyring_is_sealed(
    start_relay: RelayFactory, third_party: ThirdParty
) -> None:
    relay = await _relay(start_relay, third_party)
    await relay.running.keys.seal(actor="test")
    try:
        status, body = await _get(relay, "readyz")
    finally:
        await relay.running.keys.unseal(actor="test")
    assert status == 503
    assert body["checks"]["keyring"] == "failed"
