"""``tokengate demo``'s TEE job: a new record's card number is checked in the (simulated) TEE.

The demo starts a KMS service and one sim worker with the demo bundle,
registers the bundle's measurement and points the gateway at them. A valid
card is created (its one-time key released by the KMS to the registered
worker, for the demo app's tenant); a card whose Luhn check fails is refused
with 400 naming the rule and never reaches the app; readiness reports the pool.
"""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.demo_session import login, start_demo, stop_demo

pytestmark = pytest.mark.slow

VALID, INVALID = "4000 0566 5566 5556", "4000 0566 5566 5557"


def events(data: Path, event: str) -> list[dict[str, object]]:
    out = []
    for f in sorted((data / "kms" / "data" / "audit").glob("*")):
        for line in f.read_text().splitlines():
            entry = json.loads(line)
            if entry["event"] == event:
                out.append(entry["fields"])
    return out


async def test_the_demo_checks_card_numbers_in_the_tee(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    demo = await start_demo(data, tmp_path / "out.log", tmp_path / "err.log")
    try:
        base = demo.base
        jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=base)
        async with aiohttp.ClientSession(cookie_jar=jar, headers={"Origin": base}) as s:
            await login(s, base, "alice")
            record = {"name": "Ada", "email": "ada@example.com", "ssn": "078-05-1120"}
            async with s.post(f"{base}/api/users", json={**record, "card_number": VALID}) as r:
                assert r.status == 201, await r.text()
            async with s.post(f"{base}/api/users", json={**record, "card_number": INVALID}) as r:
                assert r.status == 400
                body = await r.json()
            assert body["error"] == "bad_field"
            assert "refused by its tee job" in body["message"]
            assert "4000" not in body["message"]
            async with s.get(f"{base}/api/users") as r:
                assert len((await r.json())["users"]) == 1  # the refused one never reached the app
        released = events(data, "kms.release")
        assert len(released) == 2  # one job per message, the refused card's included
        assert {(e["job"], e["tenant"]) for e in released} == {("card_check", "demo")}
        assert {str(e["tee_id"]).startswith("demo-cards-") for e in released} == {True}
    finally:
        assert stop_demo(demo.proc) == 0
    out = demo.stdout.read_bytes() + demo.stderr.read_bytes()
    assert b"SIMULATED" in out  # the banner says what the TEE is
    for number in (VALID, INVALID):
        assert number.encode() not in out
        assert number.replace(" ", "").encode() not in out
