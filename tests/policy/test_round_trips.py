"""One message, many field rules, one vault round trip (DESIGN.md "Request path")."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kms_client.manager import KeyManager
from plugins.base import ActionContext, Subject
from plugins.ratelimit import MemoryRateLimiter
from policy.message import Message
from tests.kms_client.support import RecordingAuditor, open_manager
from tests.policy.test_compile import policies
from tests.vault.support import CountingStore
from vault.engine import Vault

POLICY = """
classes:
  ssn: {format: ssn, keep_last: 4}
  pan: {format: pan, keep_last: 4}
  email: {format: opaque, prefix: eml}
  phone: {format: numeric}
routes:
  - name: people
    match: {path: /people}
    auth: {}
    request:
      - {field: $.ssn, action: tokenize, class: ssn}
      - {field: $.card, action: tokenize, class: pan}
      - {field: $.email, action: tokenize, class: email}
      - {field: "$.phones[*]", action: tokenize, class: phone}
    response:
      - {field: $.ssn, action: detokenize, class: ssn, allow: {owner: true}}
      - {field: $.card, action: detokenize, class: pan, allow: {owner: true}}
      - {field: $.email, action: detokenize, class: email, allow: {owner: true}}
      - {field: "$.phones[*]", action: detokenize, class: phone, allow: {owner: true}}
"""
BODY = {
    "ssn": "123-45-6789",
    "card": "4111 1111 1111 1111",
    "email": "a@example.com",
    "phones": ["5551234567", "5559876543"],
}


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[KeyManager]:
    m = await open_manager(tmp_path / "keys")
    yield m
    await m.close()


async def test_four_rules_one_put_then_one_get(tmp_path: Path, manager: KeyManager) -> None:
    from policy.compile import compile_fields

    fields = compile_fields(policies(tmp_path, people=POLICY))["people"]
    assert fields.request is not None
    assert fields.response is not None
    store = CountingStore()
    ctx = ActionContext(
        route="people",
        rule="",
        direction="request",
        subject=Subject(sub="alice"),
        vault=Vault(store, manager),
        keys=manager,
        audit=RecordingAuditor(),
        limiter=MemoryRateLimiter(),
        now=0.0,
        request_id="r1",
    )
    headers = (("Content-Type", "application/json"),)
    sent = await fields.request.apply(
        Message(headers=headers, body=json.dumps(BODY).encode(), limit=4096), ctx
    )
    assert store.calls == ["put_new"]
    assert store.sizes == [5]
    held = json.loads(sent.body)
    assert held["ssn"] != BODY["ssn"]
    store.calls.clear()
    back = await fields.response.apply(
        Message(headers=sent.headers, body=sent.body, limit=4096),
        dataclasses.replace(ctx, direction="response"),
    )
    assert store.calls == ["get_many"]
    assert json.loads(back.body) == BODY
