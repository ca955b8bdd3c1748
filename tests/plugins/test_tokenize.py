"""tokenize through the real registry, the real vault engine (memory store) and keyring."""

from __future__ import annotations

import pytest

from kms_client.errors import KmsError
from kms_client.manager import KeyManager
from plugins.base import FieldClass, Outcome, Scalar, Subject
from plugins.registry import create_action
from tests.plugins.support import (
    ALICE,
    ANONYMOUS,
    CARD,
    EMAIL,
    SSN,
    CountingVault,
    Env,
    replaced,
    run,
)
from vault.api import ClassSpec, DetokenizeItem, FormatKind, Revealed, TokenFormat

ON_MISMATCH_OPAQUE = FieldClass(
    ClassSpec("ssn_lenient", TokenFormat(kind=FormatKind.SSN, on_mismatch="opaque"))
)


@pytest.mark.parametrize(
    ("cls", "value", "plain"),
    [
        (SSN, "123-45-6789", "123-45-6789"),
        (SSN, "123456789", "123456789"),
        (CARD, "4111111111111111", "4111111111111111"),
        (CARD, 4111111111111111, "4111111111111111"),  # JSON number: its decimal text
        (EMAIL, "alice@example.com", "alice@example.com"),
        (EMAIL, "ünïcødé ✓", "ünïcødé ✓"),
        (ON_MISMATCH_OPAQUE, "not an ssn", "not an ssn"),
    ],
)
async def test_values_become_tokens_that_detokenize_to_them(
    env: Env, cls: FieldClass, value: Scalar, plain: str
) -> None:
    action = create_action("tokenize", {"class": cls})
    [token] = replaced(await run(action, env.ctx(ALICE, direction="request"), value))
    assert isinstance(token, str)
    assert token != plain
    [back] = await env.vault.detokenize([DetokenizeItem(token, cls.spec)])
    assert isinstance(back, Revealed)
    assert back.value == plain
    assert (back.record.owner, back.record.tenant, back.record.field_class) == (
        "alice",
        "acme",
        cls.name,
    )


@pytest.mark.parametrize(
    ("value", "outcome", "reason"),
    [
        (None, Outcome.REPLACE, ""),
        ("", Outcome.REPLACE, ""),
        (1.5, Outcome.INVALID, "value is not text or an integer"),
        (True, Outcome.INVALID, "value is not text or an integer"),
        (False, Outcome.INVALID, "value is not text or an integer"),
        ("12-34", Outcome.INVALID, "value does not fit format ssn"),
        ("abc-de-fghi", Outcome.INVALID, "value does not fit format ssn"),
    ],
)
async def test_values_that_are_not_tokenized(
    env: Env, value: Scalar, outcome: Outcome, reason: str
) -> None:
    action = create_action("tokenize", {"class": SSN})
    [result] = await run(action, env.ctx(direction="request"), value)
    assert (result.outcome, result.reason) == (outcome, reason)
    if outcome is Outcome.REPLACE:
        assert result.value == value  # null and "" are left as they are
    else:
        assert result.value is None
        assert str(value) not in result.reason


async def test_one_vault_call_per_batch_in_order(env: Env) -> None:
    counting = CountingVault(env.vault)
    env.vault = counting
    action = create_action("tokenize", {"class": SSN})
    raw: list[Scalar] = ["111-11-1111", None, "222-22-2222", 1.0, "333-33-3333", "bad", ""]
    results = await run(action, env.ctx(direction="request"), *raw)
    assert counting.calls == ["tokenize"]
    assert [r.outcome for r in results] == [
        "replace",
        "replace",
        "replace",
        "invalid",
        "replace",
        "invalid",
        "replace",
    ]
    tokens = [results[i].value for i in (0, 2, 4)]
    answers = await env.vault.detokenize([DetokenizeItem(str(t), SSN.spec) for t in tokens])
    assert [a.value for a in answers if isinstance(a, Revealed)] == [
        "111-11-1111",
        "222-22-2222",
        "333-33-3333",
    ]


async def test_a_batch_with_nothing_to_tokenize_makes_no_vault_call(env: Env) -> None:
    counting = CountingVault(env.vault)
    env.vault = counting
    action = create_action("tokenize", {"class": SSN})
    assert replaced(await run(action, env.ctx(), None, "")) == [None, ""]
    assert await action.apply([], env.ctx()) == []
    assert counting.calls == []


@pytest.mark.parametrize(
    ("subject", "tenant", "owner"),
    [(ALICE, "acme", "alice"), (ANONYMOUS, "public", None), (ALICE, "", "alice")],
)
async def test_records_are_owned_by_the_session_and_made_for_the_tenant(
    env: Env, subject: Subject, tenant: str, owner: str | None
) -> None:
    action = create_action("tokenize", {"class": EMAIL})
    ctx = env.ctx(subject, tenant=tenant)
    [token] = replaced(await run(action, ctx, "x@example.com"))
    [back] = await env.vault.detokenize([DetokenizeItem(str(token), EMAIL.spec)])
    assert isinstance(back, Revealed)
    assert (back.record.owner, back.record.tenant) == (owner, tenant)


async def test_a_sealed_keyring_fails_the_whole_batch(env: Env, keys: KeyManager) -> None:
    action = create_action("tokenize", {"class": SSN})
    await keys.seal()
    with pytest.raises(KmsError):
        await run(action, env.ctx(), "123-45-6789")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "tokenize: option 'class': Field required"),
        ({"class": "ssn"}, "tokenize: option 'class': must name a field class declared"),
        ({"class": SSN, "mask": "x"}, "tokenize: option 'mask': Extra inputs are not permitted"),
    ],
)
def test_bad_options_are_load_errors(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match="^" + message):
        create_action("tokenize", options)
