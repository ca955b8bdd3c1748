"""Custom authorizers in a detokenize rule, end to end on the real vault.

The entry points are real ``EntryPoint`` objects loading a class of this
module, handed to the registry in place of the installed ones (the pip path
is test_third_party.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from importlib.metadata import EntryPoint
from typing import ClassVar

import pytest

from plugins import authorizers
from plugins.base import Decision, Subject
from plugins.registry import create_action
from tests.plugins.support import ALICE, BOB, SSN, Env, replaced, run
from vault.api import RecordInfo


class SameInitial:
    """Allow when the subject's sub starts like the record owner's (a toy, but pure)."""

    name: ClassVar[str] = "same_initial"
    instances: ClassVar[int] = 0

    def configure(self, options: Mapping[str, object]) -> None:
        if set(options) - {"length"}:
            raise ValueError("same_initial: unknown option")
        length = options.get("length", 1)
        if not isinstance(length, int) or length < 1:
            raise ValueError("same_initial: length must be a positive integer")
        self.length = length
        SameInitial.instances += 1

    def decide(self, subject: Subject, record: RecordInfo, now: float) -> Decision:
        if (
            subject.sub
            and record.owner
            and subject.sub[: self.length] == record.owner[: self.length]
        ):
            return Decision.allowed("same_initial")
        return Decision.denied("different_initial")


class Exploding(SameInitial):
    name: ClassVar[str] = "exploding"

    def decide(self, subject: Subject, record: RecordInfo, now: float) -> Decision:
        raise RuntimeError("authorizer bug")


class NotADecision(SameInitial):
    name: ClassVar[str] = "sloppy"

    def decide(self, subject: Subject, record: RecordInfo, now: float) -> Decision:
        return True  # type: ignore[return-value]


@pytest.fixture(autouse=True)
def installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    eps = [
        EntryPoint(cls.name, f"{__name__}:{cls.__name__}", authorizers.GROUP)
        for cls in (SameInitial, Exploding, NotADecision)
    ]
    monkeypatch.setattr(authorizers, "group_entry_points", lambda group: eps)
    authorizers.authorizer_table.cache_clear()
    yield
    authorizers.authorizer_table.cache_clear()


async def _token(env: Env, owner: Subject) -> str:
    action = create_action("tokenize", {"class": SSN})
    [token] = replaced(await run(action, env.ctx(owner, direction="request"), "123-45-6789"))
    return str(token)


@pytest.mark.parametrize(
    ("subject", "length", "shown", "reason"),
    [
        (ALICE, 1, "123-45-6789", "authorizer"),
        (Subject(sub="anna"), 1, "123-45-6789", "authorizer"),
        (Subject(sub="anna"), 2, "***-**-6789", "same_initial:different_initial"),
        (BOB, 1, "***-**-6789", "same_initial:different_initial"),
    ],
)
async def test_a_custom_authorizer_decides(
    env: Env, subject: Subject, length: int, shown: str, reason: str
) -> None:
    token = await _token(env, ALICE)
    rule = create_action(
        "detokenize",
        {"class": SSN, "allow": {"authorizer": "same_initial", "options": {"length": length}}},
    )
    assert replaced(await run(rule, env.ctx(subject), token)) == [shown]
    [entry] = env.audit.find("token.detokenize")
    assert entry["reason"] == reason


def test_each_rule_gets_its_own_configured_authorizer() -> None:
    before = SameInitial.instances
    for _ in range(3):
        create_action("detokenize", {"class": SSN, "allow": {"authorizer": "same_initial"}})
    assert SameInitial.instances == before + 3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"length": 0}, "same_initial: length must be a positive integer"),
        ({"colour": "red"}, "same_initial: unknown option"),
    ],
)
def test_authorizer_options_are_load_errors(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_action(
            "detokenize",
            {"class": SSN, "allow": {"authorizer": "same_initial", "options": options}},
        )


@pytest.mark.parametrize(("name", "error"), [("exploding", RuntimeError), ("sloppy", TypeError)])
async def test_a_broken_authorizer_fails_the_message_closed(
    env: Env, name: str, error: type[Exception]
) -> None:
    token = await _token(env, ALICE)
    rule = create_action("detokenize", {"class": SSN, "allow": {"authorizer": name}})
    with pytest.raises(error):
        await run(rule, env.ctx(ALICE), token)
    assert env.audit.events == []


def test_names() -> None:
    assert authorizers.authorizer_names() == {"same_initial", "exploding", "sloppy"}
