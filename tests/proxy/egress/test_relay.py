"""The relay end to end: a real backend client, the relay, real HTTPS third parties.

Every allow has its deny twin: what the third party receives is asserted in
both cases (plaintext when allowed, nothing at all when refused).
"""

from __future__ import annotations

import logging
import ssl
from urllib.parse import parse_qs

import aiohttp
import pytest
from yarl import URL

from proxy.cli.gatewayfile import load_gateway_file
from tests.proxy.egress.conftest import Relay, RelayClient, RelayFactory, ThirdParty
from vault.api import DetokenizeItem, Revealed

PAN, PAN2, SSN = "4111111111111111", "5500000000000004", "123-45-6789"

ROUTES = """
egress:
  - name: payments
    match: {{host: localhost, methods: [POST], prefix: /v1/}}
    port: {port}
    release: {{classes: [pan, ssn], max_values: 3}}
    rate_limit: {{values: {rate}, window: 1m}}
    request:
      - {{field: $.card.number, action: detokenize, class: pan, allow: {{roles: [payments]}}}}
      - {{field: "$.cards[*].number", action: detokenize, class: pan, allow: {{roles: [payments]}}}}
      - {{field: "form:ssn", action: detokenize, class: ssn, allow: {{roles: [payments]}}}}
      - {{field: "query:ssn", action: detokenize, class: ssn, allow: {{roles: [payments]}}}}
      - {{field: "header:X-Card", action: detokenize, class: pan, allow: {{roles: [payments]}}}}
    response:
      - {{field: $.customer.ssn, action: tokenize, class: ssn}}
"""


async def _relay(start: RelayFactory, party: ThirdParty, *, rate: int = 100, **kw: object) -> Relay:
    return await start(
        ROUTES.format(port=party.port, rate=rate),
        upstream_ca=party.ca.cert_pem.bytes(),
        **kw,
    )


async def _id_hash(relay: Relay, class_name: str, token: str) -> str:
    spec = load_gateway_file(relay.directory / "gateway.yaml").classes[class_name].spec
    (answer,) = await relay.running.fields.vault.detokenize([DetokenizeItem(token, spec)])
    assert isinstance(answer, Revealed)
    return answer.id_hash


async def test_third_party_gets_plaintext_of_json_query_and_header_tokens(
    start_relay: RelayFactory, third_party: ThirdParty, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    relay = await _relay(start_relay, third_party)
    pan, header_pan = await relay.tokens("pan", PAN, PAN2)
    (ssn,) = await relay.tokens("ssn", SSN)
    assert PAN not in pan
    assert ssn != SSN
    url = f"https://localhost:{third_party.port}/v1/charges"
    async with RelayClient(relay) as client:
        status, body, _ = await client.call(
            "POST",
            url,
            json={"card": {"number": pan}, "amount": 10},
            params={"ssn": ssn},
            headers={"X-Card": header_pan},
        )
    assert status == 200, body
    (seen,) = third_party.seen
    assert seen.body == b'{"card":{"number":"' + PAN.encode() + b'"},"amount":10}'
    assert seen.query == {"ssn": SSN}
    assert seen.headers["X-Card"] == PAN2
    assert "Proxy-Authorization" not in seen.headers
    # Each release is audited: host, route, class, record id hash; never the value.
    entries = relay.audit_entries("egress.detokenize")
    assert {(e["host"], e["port"], e["route"], e["field_class"]) for e in entries} == {
        ("localhost", third_party.port, "payments", "pan"),
        ("localhost", third_party.port, "payments", "ssn"),
    }
    assert all(e["decision"] == "allow" and e["subject"] == "egress:backend" for e in entries)
    released = {i for e in entries for i in e["record_ids"]}
    assert released == {
        await _id_hash(relay, "pan", pan),
        await _id_hash(relay, "pan", header_pan),
        await _id_hash(relay, "ssn", ssn),
    }
    for secret in (PAN, PAN2, SSN, pan, ssn):
        assert secret not in relay.audit_text()
        assert secret not in caplog.text


async def test_form_fields_are_detokenized(
    start_relay: RelayFactory, third_party: ThirdParty
) -> None:
    relay = await _relay(start_relay, third_party)
    (ssn,) = await relay.tokens("ssn", SSN)
    async with RelayClient(relay) as client:
        status, _, _ = await client.call(
            "POST", f"https://localhost:{third_party.port}/v1/verify", data={"ssn": ssn, "x": "1"}
        )
    assert status == 200
    assert parse_qs(third_party.seen[0].body.decode()) == {"ssn": [SSN], "x": ["1"]}


async def test_answers_are_tokenized_before_the_backend_sees_them(
    start_relay: RelayFactory, third_party: ThirdParty
) -> None:
    relay = await _relay(start_relay, third_party)
    third_party.answer = {"customer": {"ssn": SSN, "name": "Ann"}}
    async with RelayClient(relay) as client:
        status, body, headers = await client.call(
            "POST", f"https://localhost:{third_party.port}/v1/lookup", json={}
        )
    assert status == 200
    assert body is not None
    token = body["customer"]["ssn"]
    assert token != SSN
    assert body["customer"]["name"] == "Ann"
    assert headers["Cache-Control"] == "no-store"
    spec = load_gateway_file(relay.directory / "gateway.yaml").classes["ssn"].spec
    (answer,) = await relay.running.fields.vault.detokenize([DetokenizeItem(token, spec)])
    assert isinstance(answer, Revealed)
    assert answer.value == SSN
    assert answer.record.owner is None  # the third party's values belong to no session


async def test_an_unreadable_answer_is_refused(
    start_relay: RelayFactory, third_party: ThirdParty
) -> None:
    relay = await start_relay(
        f"""
        egress:
          - name: lookup
            match: {{host: localhost, prefix: /}}
            port: {third_party.port}
            response:
              - {{field: "form:ssn", action: tokenize, class: ssn}}
        """,
        upstream_ca=third_party.ca.cert_pem.bytes(),
    )
    third_party.answer = {"ssn": SSN}  # JSON, which no rule of the route reads
    async with RelayClient(relay) as client:
        status, body, _ = await client.call("GET", f"https://localhost:{third_party.port}/x")
    assert status == 502
    assert body is not None
    assert body["error"] == "bad_gateway"
    assert SSN not in str(body)


async def test_unlisted_hosts_and_ports_are_refused(
    start_relay: RelayFactory, third_party: ThirdParty
) -> None:
    relay = await _relay(start_relay, third_party)
    async with RelayClient(relay) as client:
        by_ip, _, _ = await client.call("POST", f"https://127.0.0.1:{third_party.port}/v1/x")
        other_port, _, _ = await client.call("POST", "https://localhost:1/v1/x")
    assert (by_ip, other_port) == (403, 403)
    assert third_party.seen == []


async def test_unlisted_hosts_tunnel_untouched_when_configured(
    start_relay: RelayFactory, third_party: ThirdParty
) -> None:
    relay = await _relay(start_relay, third_party, egress_extra="unlisted_hosts: tunnel\n")
    (pan,) = await relay.tokens("pan", PAN)
    # Not intercepted: the client sees the third party's own certificate.
    trusting_party = ssl.create_default_context(cadata=third_party.ca.cert_pem.bytes().decode())
    client = RelayClient(relay)
    async with client:
        assert client.session is not None
        async with client.session.post(
            f"https://127.0.0.1:{third_party.port}/v1/x",
            json={"card": {"number": pan}},
            ssl=trusting_party,
            server_hostname="localhost",
        ) as resp:
            assert resp.status == 200
    assert pan.encode() in third_party.seen[0].body  # nothing released
    assert relay.audit_entries("egress.detokenize") == []


async def test_a_bad_upstream_certificate_is_refused(
    start_relay: RelayFactory, third_party: ThirdParty, impostor: ThirdParty
) -> None:
    # The relay trusts third_party's CA; the impostor, on a listed host:port, has another.
    relay = await start_relay(
        ROUTES.format(port=impostor.port, rate=100), upstream_ca=third_party.ca.cert_pem.bytes()
    )
    (pan,) = await relay.tokens("pan", PAN)
    async with RelayClient(relay) as client:
        status, body, _ = await client.call(
            "POST", f"https://localhost:{impostor.port}/v1/x", json={"card": {"number": pan}}
        )
    assert status == 502
    assert body is not None
    assert body["error"] == "upstream_certificate"
    assert impostor.seen == []
    assert relay.audit_entries("egress.detokenize") == []


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("none", None),
        ("wrong-secret", "tge_" + "a" * 52),
        ("other-clients-secret", "intruder"),
    ],
)
async def test_bad_proxy_credentials_get_407(
    start_relay: RelayFactory, third_party: ThirdParty, name: str, secret: str | None
) -> None:
    relay = await _relay(start_relay, third_party)
    url = f"https://localhost:{third_party.port}/v1/x"
    if secret is None:
        ssl_ctx = ssl.create_default_context(cadata=relay.ca_pem.decode())
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.ClientHttpProxyError) as info:
                await session.post(url, proxy=f"http://127.0.0.1:{relay.port}", ssl=ssl_ctx)
        status = info.value.status
    else:
        presented = relay.clients["intruder"].secret if secret == "intruder" else secret
        async with RelayClient(relay, secret=presented) as client:
            status, _, _ = await client.call("POST", url, json={})
    assert status == 407
    assert third_party.seen == []


async def test_a_class_the_route_does_not_release_is_refused(
    start_relay: RelayFactory, third_party: ThirdParty
) -> None:
    relay = await _relay(start_relay, third_party)
    (email,) = await relay.tokens("email", "ann@example.com")
    (ssn,) = await relay.tokens("ssn", SSN)
    url = f"https://localhost:{third_party.port}/v1/x"
    async with RelayClient(relay) as client:
        # an email token where the rule releases pan: the record is of another class
        status, body, _ = await client.call("POST", url, json={"card": {"number": email}})
        # an ssn token (released to this host, but not by this rule)
        status2, _, _ = await client.call("POST", url, json={"card": {"number": ssn}})
    assert (status, status2) == (403, 403)
    assert body is not None
    assert body["error"] == "denied"
    assert "ann@example.com" not in str(body)
    assert third_party.seen == []
    denials = relay.audit_entries("egress.detokenize")
    assert {e["decision"] for e in denials} == {"deny"}


async def test_a_client_without_the_role_is_refused(
    start_relay: RelayFactory, third_party: ThirdParty
) -> None:
    relay = await _relay(start_relay, third_party)
    (pan,) = await relay.tokens("pan", PAN)
    async with RelayClient(relay, client="intruder") as client:
        status, _, _ = await client.call(
            "POST", f"https://localhost:{third_party.port}/v1/x", json={"card": {"number": pan}}
        )
    assert status == 403
    assert third_party.seen == []
    (entry,) = relay.audit_entries("egress.detokenize")
    assert (entry["decision"], entry["subject"]) == ("deny", "egress:intruder")


async def test_more_values_than_the_cap_are_refused(
    start_relay: RelayFactory, third_party: ThirdParty
) -> None:
    relay = await _relay(start_relay, third_party)
    tokens = await relay.tokens("pan", PAN, PAN2, PAN, PAN2)
    url = f"https://localhost:{third_party.port}/v1/x"
    async with RelayClient(relay) as client:
        ok, _, _ = await client.call(
            "POST", url, json={"cards": [{"number": t} for t in tokens[:3]]}
        )
        over, body, _ = await client.call(
            "POST", url, json={"cards": [{"number": t} for t in tokens]}
        )
    assert (ok, over) == (200, 403)
    assert body is not None
    assert body["error"] == "release_cap"
    assert len(third_party.seen) == 1
    (refused,) = relay.audit_entries("egress.refused")
    assert (refused["reason"], refused["count"], refused["host"]) == ("release_cap", 4, "localhost")


async def test_the_client_rate_limit_refuses_with_429(
    start_relay: RelayFactory, third_party: ThirdParty
) -> None:
    relay = await _relay(start_relay, third_party, rate=2)
    url = f"https://localhost:{third_party.port}/v1/x"
    statuses = []
    async with RelayClient(relay) as client:
        for _ in range(3):
            (pan,) = await relay.tokens("pan", PAN)
            statuses.append((await client.call("POST", url, json={"card": {"number": pan}}))[0])
    assert statuses == [200, 200, 429]
    assert len(third_party.seen) == 2
    assert relay.audit_entries("egress.refused")[0]["reason"] == "rate_limited"


@pytest.mark.parametrize(
    ("method", "path", "headers", "status", "code"),
    [
        ("GET", "/v1/x", {}, 403, "route_not_allowed"),
        ("POST", "/v2/x", {}, 403, "route_not_allowed"),
        ("POST", "/v1/x", {"Host": "evil.example"}, 421, "misdirected_request"),
        (
            "POST",
            "/v1/x",
            {"Upgrade": "websocket", "Connection": "upgrade"},
            403,
            "upgrade_refused",
        ),
        ("POST", "/v1/%2e%2e/admin", {}, 400, "bad_request"),
        ("POST", "/v1/x%2fy", {}, 400, "bad_request"),
    ],
    ids=["method", "path", "host-header", "upgrade", "encoded-dots", "encoded-slash"],
)
async def test_calls_no_route_takes_are_refused(
    start_relay: RelayFactory,
    third_party: ThirdParty,
    method: str,
    path: str,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    relay = await _relay(start_relay, third_party)
    async with RelayClient(relay) as client:
        url = URL(f"https://localhost:{third_party.port}{path}", encoded=True)
        got, body, _ = await client.call(method, url, headers=headers)
    assert got == status
    assert body is not None
    assert body["error"] == code
    assert third_party.seen == []


async def test_plain_http_is_refused(start_relay: RelayFactory, third_party: ThirdParty) -> None:
    relay = await _relay(start_relay, third_party)
    creds = relay.clients["backend"]
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"http://localhost:{third_party.port}/v1/x",
            proxy=f"http://127.0.0.1:{relay.port}",
            # absolute-form: the credentials travel with the request itself
            headers={"Proxy-Authorization": aiohttp.encode_basic_auth(creds.name, creds.secret)},
        ) as resp:
            assert resp.status == 403
            assert (await resp.json())["error"] == "plain_http_refused"
    assert third_party.seen == []


async def test_plain_http_without_credentials_gets_407(
    start_relay: RelayFactory, third_party: ThirdParty
) -> None:
    relay = await _relay(start_relay, third_party)
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"http://localhost:{third_party.port}/v1/x", proxy=f"http://127.0.0.1:{relay.port}"
        ) as resp,
    ):
        assert resp.status == 407
        assert resp.headers["Proxy-Authenticate"].startswith("Basic ")
    assert third_party.seen == []
