"""The vault or the keyring down: the call fails with a JSON error and nothing is forwarded."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import free_port
from tests.proxy.egress.conftest import RelayClient, RelayFactory, ThirdParty
from tests.proxy.sessions.servers import start

PAN = "4111111111111111"

ROUTES = """
egress:
  - name: payments
    match: {{host: localhost, prefix: /}}
    port: {port}
    release: {{classes: [pan], max_values: 5}}
    rate_limit: {{values: 100, window: 1m}}
    request:
      - {{field: $.card.number, action: detokenize, class: pan, allow: {{roles: [payments]}}}}
"""


async def test_vault_down_fails_the_call_and_forwards_nothing(
    start_relay: RelayFactory, third_party: ThirdParty, tmp_path: Path
) -> None:
    server = start(tmp_path / "redis", free_port())
    try:
        relay = await start_relay(
            ROUTES.format(port=third_party.port),
            upstream_ca=third_party.ca.cert_pem.bytes(),
            gateway_extra=(
                f'vault: {{url: "redis://127.0.0.1:{server.port}/0", '
                "accept_volatile: true, timeout: 0.5}\n"
            ),
        )
        (pan,) = await relay.tokens("pan", PAN)
        url = f"https://localhost:{third_party.port}/v1/x"
        async with RelayClient(relay) as client:
            up, _, _ = await client.call("POST", url, json={"card": {"number": pan}})
            server.stop()
            down, body, headers = await client.call("POST", url, json={"card": {"number": pan}})
    finally:
        server.stop()
    assert (up, down) == (200, 503)
    assert body is not None
    assert body["error"] == "vault_unavailable"
    assert body["request_id"] == headers["X-Request-ID"]
    assert len(third_party.seen) == 1  # only the call made while the vault answered
    assert pan not in str(body)
    assert PAN not in str(body)


async def test_sealed_keyring_fails_the_call_and_forwards_nothing(
    start_relay: RelayFactory, third_party: ThirdParty
) -> None:
    relay = await start_relay(
        ROUTES.format(port=third_party.port), upstream_ca=third_party.ca.cert_pem.bytes()
    )
    (pan,) = await relay.tokens("pan", PAN)
    await relay.running.keys.seal(actor="test")
    async with RelayClient(relay) as client:
        status, body, _ = await client.call(
            "POST", f"https://localhost:{third_party.port}/v1/x", json={"card": {"number": pan}}
        )
    assert status == 503
    assert body is not None
    assert body["error"] in {"service_unavailable", "vault_unavailable"}
    assert third_party.seen == []
    await relay.running.keys.unseal(actor="test")
