"""Failures around a call: the vault or the keyring down (nothing is forwarded), and a
third party that drops the call after its values were released (audited as undelivered)."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import trustme

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


async def test_a_call_dropped_after_release_is_audited_as_undelivered(
    start_relay: RelayFactory,
) -> None:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    got: list[bytes] = []

    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got.append(await reader.readuntil(b"\r\n\r\n"))  # the request head arrived ...
        writer.close()  # ... and the third party hangs up without an answer

    dropper = await asyncio.start_server(drop, "127.0.0.1", 0, ssl=server_ctx)
    port = dropper.sockets[0].getsockname()[1]
    try:
        relay = await start_relay(ROUTES.format(port=port), upstream_ca=ca.cert_pem.bytes())
        (pan,) = await relay.tokens("pan", PAN)
        async with RelayClient(relay) as client:
            status, _, _ = await client.call(
                "POST", f"https://localhost:{port}/v1/x", json={"card": {"number": pan}}
            )
    finally:
        dropper.close()
        await dropper.wait_closed()
    assert status == 502
    assert len(got) == 1
    (released,) = relay.audit_entries("egress.detokenize")
    assert released["decision"] == "allow"
    (undelivered,) = relay.audit_entries("egress.undelivered")
    assert undelivered == {
        "event": "egress.undelivered",
        "host": "localhost",
        "port": port,
        "route": "payments",
        "subject": "egress:backend",
        "released": 1,
        "error": "closed",
        "request_id": released["request_id"],
    }
    assert PAN not in relay.audit_text()
