"""detokenize through the real registry, vault engine (memory store), keyring and limiters."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from kms_client.errors import KmsError
from kms_client.manager import KeyManager
from plugins.base import FieldAction, FieldClass, Outcome, Scalar, Subject
from plugins.ratelimit import MemoryRateLimiter, RedisRateLimiter
from plugins.redact import REDACTED
from plugins.registry import create_action
from tests.plugins.support import (
    ALICE,
    ANONYMOUS,
    BOB,
    CARD,
    EMAIL,
    NOW,
    SSN,
    SUPPORT_MFA,
    CountingVault,
    Env,
    RecordingAuditor,
    replaced,
    run,
    values,
)
from vault.api import DetokenizeItem, Refused, Revealed

DEMO_ALLOW: list[object] = [
    {"owner": True},
    {"roles": ["support"], "mfa": True, "max_age": "15m"},
]
SUPPORT_NO_MFA = replace(SUPPORT_MFA, amr=("pwd",))
SUPPORT_STALE = replace(SUPPORT_MFA, auth_time=int(NOW) - 16 * 60)
SUPPORT_NO_AUTH_TIME = replace(SUPPORT_MFA, auth_time=None)


def detokenize(cls: FieldClass = SSN, **options: object) -> FieldAction:
    """A detokenize rule of ``cls`` (default: the demo's allow rule)."""
    options.setdefault("allow", DEMO_ALLOW)
    return create_action("detokenize", {"class": cls, **options})


async def tokens_of(env: Env, cls: FieldClass, *plain: str, owner: Subject = ALICE) -> list[str]:
    """Tokenize ``plain`` as ``owner`` would (request direction)."""
    action = create_action("tokenize", {"class": cls})
    out = replaced(await run(action, env.ctx(owner, direction="request"), *plain))
    return [str(t) for t in out]


@pytest.mark.parametrize(
    ("subject", "shown", "decision", "reason"),
    [
        (ALICE, "123-45-6789", "allow", "owner"),
        (SUPPORT_MFA, "123-45-6789", "allow", "roles+mfa+max_age"),
        (BOB, "***-**-6789", "deny", "not_owner|missing_role"),
        (SUPPORT_NO_MFA, "***-**-6789", "deny", "not_owner|mfa_required"),
        (SUPPORT_STALE, "***-**-6789", "deny", "not_owner|auth_too_old"),
        (SUPPORT_NO_AUTH_TIME, "***-**-6789", "deny", "not_owner|auth_too_old"),
        (ANONYMOUS, "***-**-6789", "deny", "anonymous|missing_role"),
    ],
)
async def test_the_demo_rule_reveals_to_the_owner_and_fresh_mfa_support_only(
    env: Env, subject: Subject, shown: str, decision: str, reason: str
) -> None:
    [token] = await tokens_of(env, SSN, "123-45-6789")
    assert replaced(await run(detokenize(), env.ctx(subject), token)) == [shown]
    [entry] = env.audit.find("token.detokenize")
    assert entry["decision"] == decision
    assert entry["reason"] == reason
    assert entry["subject"] == (subject.sub or "anonymous")
    assert entry["count"] == 1
    assert entry["otherwise"] == (None if decision == "allow" else "mask")
    assert entry["record_ids"] == [
        _id_hash(await env.vault.detokenize([DetokenizeItem(token, SSN.spec)]))
    ]
    assert "123-45-6789" not in env.audit.dump()
    assert token not in env.audit.dump()


def _id_hash(answers: Sequence[Revealed | Refused]) -> str | None:
    return answers[0].id_hash


@pytest.mark.parametrize(
    ("otherwise", "outcome", "shown"),
    [
        ("mask", Outcome.REPLACE, "***-**-6789"),
        ("redact", Outcome.REPLACE, REDACTED),
        ("keep-token", Outcome.REPLACE, "<token>"),
        ("deny", Outcome.DENY, None),
    ],
)
@pytest.mark.parametrize("subject", [BOB, ALICE])
async def test_otherwise_is_what_a_denied_subject_gets(
    env: Env, otherwise: str, outcome: Outcome, shown: str | None, subject: Subject
) -> None:
    [token] = await tokens_of(env, SSN, "123-45-6789")
    action = detokenize(allow={"owner": True}, otherwise=otherwise)
    [result] = await run(action, env.ctx(subject), token)
    if subject is ALICE:  # the allow twin: the owner sees the value whatever otherwise says
        assert (result.outcome, result.value) == (Outcome.REPLACE, "123-45-6789")
        return
    assert result.outcome == outcome
    assert result.value == (token if shown == "<token>" else shown)
    if outcome is Outcome.DENY:
        assert result.reason == "not_owner"


@pytest.mark.parametrize(
    ("cls", "options", "shown"),
    [
        (SSN, {}, "***-**-6789"),  # the class's mask
        (SSN, {"mask": "xxx-xx-{last2}"}, "xxx-xx-89"),  # the rule's pattern wins
        (EMAIL, {}, REDACTED),  # no mask known: redact
        (EMAIL, {"mask": "{first1}***"}, "a***"),
    ],
)
async def test_default_otherwise(
    env: Env, cls: FieldClass, options: dict[str, object], shown: str
) -> None:
    plain = "123-45-6789" if cls is SSN else "alice@example.com"
    [token] = await tokens_of(env, cls, plain)
    assert replaced(await run(detokenize(cls, **options), env.ctx(BOB), token)) == [shown]
    assert replaced(await run(detokenize(cls, **options), env.ctx(ALICE), token)) == [plain]


@pytest.mark.parametrize(
    ("otherwise", "outcome", "shown"),
    [
        ("mask", Outcome.REPLACE, "***-**-4321"),
        ("redact", Outcome.REPLACE, REDACTED),
        ("keep-token", Outcome.REPLACE, REDACTED),  # it may be plaintext: never kept
        ("deny", Outcome.DENY, None),
    ],
)
@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("987-65-4321", "unknown"),  # plaintext shaped like a token: no record
        ("tok_987654321", "malformed"),
        ("hello 4321", "malformed"),
    ],
)
async def test_what_is_not_a_token_of_the_class_never_reveals_or_stays(
    env: Env, otherwise: str, outcome: Outcome, shown: str | None, text: str, reason: str
) -> None:
    action = detokenize(allow={"owner": True}, otherwise=otherwise)
    [result] = await run(action, env.ctx(ALICE), text)
    assert result.outcome == outcome
    assert result.value == shown
    assert text not in str(result.value)
    [entry] = env.audit.find("token.detokenize")
    assert (entry["decision"], entry["reason"]) == ("deny", reason)


async def test_an_erased_record_is_refused_and_audited_with_its_id(env: Env) -> None:
    [token] = await tokens_of(env, SSN, "123-45-6789")
    [before] = await env.vault.detokenize([DetokenizeItem(token, SSN.spec)])
    assert await env.vault.delete([DetokenizeItem(token, SSN.spec)]) == 1
    assert replaced(await run(detokenize(), env.ctx(ALICE), token)) == [f"***-**-{token[-4:]}"]
    [entry] = env.audit.find("token.detokenize")
    assert (entry["decision"], entry["reason"]) == ("deny", "unknown")
    assert entry["record_ids"] == [before.id_hash]


async def test_a_token_of_another_class_is_refused(env: Env) -> None:
    [token] = await tokens_of(env, EMAIL, "alice@example.com")
    action = detokenize(SSN, otherwise="redact")
    assert replaced(await run(action, env.ctx(ALICE), token)) == [REDACTED]
    assert env.audit.find("token.detokenize", decision="deny")


@pytest.mark.parametrize(
    ("value", "shown", "audited"),
    [
        (None, None, False),
        ("", "", False),
        (1.5, REDACTED, True),
        (True, REDACTED, True),
    ],
)
async def test_null_empty_and_non_text_values(
    env: Env, value: Scalar, shown: Scalar, audited: bool
) -> None:
    action = detokenize(EMAIL)
    assert replaced(await run(action, env.ctx(ALICE), value)) == [shown]
    entries = env.audit.find("token.detokenize", reason="not_text")
    assert bool(entries) is audited


async def test_an_integer_is_read_as_its_decimal_text(env: Env) -> None:
    [token] = await tokens_of(env, CARD, "4111111111111111")
    assert token.isdigit()
    action = detokenize(CARD)
    assert replaced(await run(action, env.ctx(ALICE), int(token))) == ["4111111111111111"]
    assert replaced(await run(action, env.ctx(BOB), int(token))) == ["411111******1111"]


async def test_one_vault_call_and_grouped_audit_for_a_large_mixed_batch(env: Env) -> None:
    alice = await tokens_of(env, SSN, *[f"100-00-{i:04d}" for i in range(60)])
    bob = await tokens_of(env, SSN, *[f"200-00-{i:04d}" for i in range(40)], owner=BOB)
    counting = CountingVault(env.vault)
    env.vault = counting
    batch = [t for pair in zip(alice[:40], bob, strict=True) for t in pair] + alice[40:]
    results = await run(detokenize(), env.ctx(ALICE), *batch)
    assert counting.calls == ["detokenize"]
    shown = replaced(results)
    assert shown[0:4] == ["100-00-0000", "***-**-0000", "100-00-0001", "***-**-0001"]
    assert shown[-1] == "100-00-0059"
    entries = env.audit.find("token.detokenize")
    assert sorted((str(e["decision"]), e["count"]) for e in entries) == [
        ("allow", 60),
        ("deny", 40),
    ]
    assert all(len(e["record_ids"]) == e["count"] for e in entries)  # type: ignore[arg-type]
    dump = env.audit.dump()
    assert not re.search(r"\d{3}-\d\d-\d{4}", dump)
    assert not any(t in dump for t in batch)


async def test_ids_are_chunked_past_the_declared_list_size(env: Env) -> None:
    tokens = await tokens_of(env, EMAIL, *[f"u{i}@example.com" for i in range(520)])
    await run(detokenize(EMAIL), env.ctx(ALICE), *tokens)
    entries = env.audit.find("token.detokenize")
    assert [(e["count"], len(e["record_ids"])) for e in entries] == [(500, 500), (20, 20)]  # type: ignore[arg-type]


async def test_an_audit_failure_fails_the_message(env: Env) -> None:
    [token] = await tokens_of(env, SSN, "123-45-6789")
    env.audit = RecordingAuditor(fail=True)
    with pytest.raises(OSError, match="audit sink down"):
        await run(detokenize(), env.ctx(ALICE), token)


async def test_a_sealed_keyring_fails_the_whole_batch(env: Env, keys: KeyManager) -> None:
    [token] = await tokens_of(env, SSN, "123-45-6789")
    await keys.seal()
    with pytest.raises(KmsError):
        await run(detokenize(), env.ctx(ALICE), token)
    assert env.audit.events == []


@pytest.mark.parametrize(
    ("allow", "subject", "revealed"),
    [
        ({"tenants": "same"}, ALICE, True),
        ({"tenants": "same"}, replace(ALICE, tenant="globex"), False),
        ({"tenants": ["acme", "globex"]}, replace(ALICE, tenant="globex"), True),
        ({"tenants": ["globex"]}, ALICE, False),
        ({"claims": {"dept": "billing"}}, replace(BOB, claims={"dept": "billing"}), True),
        ({"claims": {"dept": "billing"}}, replace(BOB, claims={"dept": "sales"}), False),
    ],
)
async def test_record_metadata_reaches_the_allow_rule(
    env: Env, allow: dict[str, object], subject: Subject, revealed: bool
) -> None:
    [token] = await tokens_of(env, SSN, "123-45-6789")
    [shown] = replaced(await run(detokenize(allow=allow), env.ctx(subject), token))
    assert (shown == "123-45-6789") is revealed


# ---- rate limits ----


class Clock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture(params=["memory", "redis"])
async def limited(
    request: pytest.FixtureRequest, env: Env, redis_url: str, unique_prefix: str
) -> AsyncIterator[tuple[Env, Clock]]:
    """The env with a memory limiter (own clock) or one on the shared Redis (unique prefix)."""
    clock = Clock()
    if request.param == "memory":
        env.limiter = MemoryRateLimiter(clock=clock)
        yield env, clock
        return
    limiter = RedisRateLimiter.from_url(redis_url, prefix=f"{unique_prefix}:")
    env.limiter = limiter
    try:
        yield env, clock
    finally:
        await limiter.close()


def _rate_limited_metric(field_class: str) -> float:
    value = REGISTRY.get_sample_value(
        "tokengate_detokenize_rate_limited_total", {"route": "records", "field_class": field_class}
    )
    return value or 0.0


async def test_the_rate_limit_withholds_a_batch_past_the_limit_and_alerts(
    limited: tuple[Env, Clock],
) -> None:
    env, _ = limited
    tokens = await tokens_of(env, SSN, "111-11-1111", "222-22-2222", "333-33-3333")
    action = detokenize(rate_limit={"limit": 3, "window": "1h"})
    before = _rate_limited_metric("ssn")
    assert replaced(await run(action, env.ctx(ALICE), *tokens[:2])) == [
        "111-11-1111",
        "222-22-2222",
    ]
    # 2 more would make 4 > 3: the whole batch is withheld and nothing is taken
    assert replaced(await run(action, env.ctx(ALICE), *tokens[1:])) == [
        "***-**-2222",
        "***-**-3333",
    ]
    [alert] = env.audit.find("token.rate_limited")
    assert alert == {
        "route": "records",
        "rule": "response[0]",
        "field_class": "ssn",
        "subject": "alice",
        "count": 2,
        "limit": 3,
        "window": 3600,
        "request_id": "req-1",
    }
    assert (
        env.audit.find("token.detokenize", decision="deny", reason="rate_limited")[0]["count"] == 2
    )
    assert _rate_limited_metric("ssn") == before + 1
    # the allow twin: one more still fits (the refused batch took nothing)
    assert replaced(await run(action, env.ctx(ALICE), tokens[2])) == ["333-33-3333"]
    assert replaced(await run(action, env.ctx(ALICE), tokens[0])) == ["***-**-1111"]


async def test_the_rate_limit_is_per_subject_and_class_and_counts_only_reveals(
    limited: tuple[Env, Clock],
) -> None:
    env, _ = limited
    ssn = await tokens_of(env, SSN, "111-11-1111", "222-22-2222")
    email = await tokens_of(env, EMAIL, "a@example.com", "b@example.com")
    ssn_rule = detokenize(rate_limit={"limit": 2, "window": 60})
    email_rule = detokenize(EMAIL, rate_limit={"limit": 2, "window": 60})
    for _ in range(3):  # Bob is denied: masks cost nothing
        assert replaced(await run(ssn_rule, env.ctx(BOB), *ssn)) == ["***-**-1111", "***-**-2222"]
    assert replaced(await run(ssn_rule, env.ctx(ALICE), *ssn)) == ["111-11-1111", "222-22-2222"]
    assert replaced(await run(email_rule, env.ctx(ALICE), *email)) == [
        "a@example.com",
        "b@example.com",
    ]
    assert replaced(await run(ssn_rule, env.ctx(SUPPORT_MFA), *ssn)) == [
        "111-11-1111",
        "222-22-2222",
    ]
    assert replaced(await run(ssn_rule, env.ctx(ALICE), ssn[0])) == ["***-**-1111"]


async def test_the_window_ends(
    limited: tuple[Env, Clock], redis_url: str, unique_prefix: str
) -> None:
    env, clock = limited
    [token] = await tokens_of(env, SSN, "111-11-1111")
    action = detokenize(rate_limit={"limit": 1, "window": 60})
    assert replaced(await run(action, env.ctx(ALICE), token)) == ["111-11-1111"]
    assert replaced(await run(action, env.ctx(ALICE), token)) == ["***-**-1111"]
    if isinstance(env.limiter, MemoryRateLimiter):
        clock.t += 60.0
        assert replaced(await run(action, env.ctx(ALICE), token)) == ["111-11-1111"]
        return
    # Redis ends the window by its own clock: the key carries the window as its TTL,
    # set by the first take and not re-armed by the refused one.
    client = Redis.from_url(redis_url)
    try:
        ttl = await client.pttl(f"{unique_prefix}:detokenize:ssn:alice")
        assert 59_000 < ttl <= 60_000
    finally:
        await client.aclose()


async def test_a_limiter_that_does_not_answer_fails_the_message(env: Env, unused_port: int) -> None:
    env.limiter = RedisRateLimiter.from_url(f"redis://127.0.0.1:{unused_port}/0", timeout=0.2)
    [token] = await tokens_of(env, SSN, "111-11-1111")
    action = detokenize(rate_limit={"limit": 5, "window": 60})
    with pytest.raises(Exception, match="ratelimit: redis did not answer"):
        await run(action, env.ctx(ALICE), token)
    assert env.audit.find("token.detokenize", decision="allow") == []
    # the deny twin needs no limiter: nothing is revealed, nothing is counted
    assert replaced(await run(action, env.ctx(BOB), token)) == ["***-**-1111"]


# ---- options ----


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"class": SSN}, "option 'allow': Field required"),
        ({"class": SSN, "allow": []}, "option 'allow': List should have at least 1 item"),
        ({"class": SSN, "allow": {}}, "option 'allow.0': an allow alternative needs at least one"),
        ({"class": SSN, "allow": "owner"}, "option 'allow': Input should be a valid list"),
        ({"class": SSN, "allow": {"owner": False}}, "option 'allow.0.owner': Input should be True"),
        (
            {"class": SSN, "allow": [{"owner": True}, {"rolez": ["a"]}]},
            "option 'allow.1.rolez': Extra",
        ),
        ({"class": SSN, "allow": {"owner": True}, "otherwise": "show"}, "option 'otherwise'"),
        (
            {"class": EMAIL, "allow": {"owner": True}, "otherwise": "mask"},
            "'otherwise: mask' needs",
        ),
        (
            {"class": SSN, "allow": {"owner": True}, "otherwise": "redact", "mask": "{last4}"},
            "'mask' is only used",
        ),
        (
            {"class": SSN, "allow": {"owner": True}, "mask": "{middle4}"},
            "only {firstN} and {lastN}",
        ),
        (
            {"class": SSN, "allow": {"owner": True}, "rate_limit": {"limit": 0, "window": 1}},
            "'rate_limit.limit'",
        ),
        (
            {"class": SSN, "allow": {"owner": True}, "rate_limit": {"limit": 1, "window": "soon"}},
            "'rate_limit.window'",
        ),
        (
            {"class": SSN, "allow": {"owner": True}, "rate_limit": {"limit": 1}},
            "'rate_limit.window': Field required",
        ),
        ({"class": SSN, "allow": {"max_age": "0s"}}, "option 'allow.0.max_age'"),
        ({"class": SSN, "allow": {"authorizer": "no_such"}}, "unknown authorizer 'no_such'"),
        (
            {"class": SSN, "allow": {"roles": ["a"], "options": {}}},
            "'options' belongs to an 'authorizer'",
        ),
        ({"allow": {"owner": True}}, "option 'class': Field required"),
    ],
)
def test_bad_options_are_load_errors(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        create_action("detokenize", options)
    assert str(caught.value).startswith("detokenize: ")


def test_each_rule_gets_its_own_instance() -> None:
    one, two = detokenize(), detokenize(otherwise="redact")
    assert one is not two
    assert type(one) is type(two)


async def test_the_batch_contract_holds_for_an_empty_batch(env: Env) -> None:
    assert await detokenize().apply(values(), env.ctx()) == []
    assert env.audit.events == []
