"""redact through the real registry."""

from __future__ import annotations

import pytest

from plugins.base import FieldResult, Outcome, Scalar
from plugins.redact import REDACTED
from plugins.registry import create_action
from tests.plugins.support import SSN, Env, run

ANY_VALUES: tuple[Scalar, ...] = ("123-45-6789", 42, 1.5, True, None, "")


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, FieldResult.replace(REDACTED)),
        ({"class": SSN}, FieldResult.replace(REDACTED)),
        ({"replacement": "xxx"}, FieldResult.replace("xxx")),
        ({"replacement": None}, FieldResult.replace(None)),
        ({"replacement": 0}, FieldResult.replace(0)),
        ({"replacement": False}, FieldResult.replace(False)),
        ({"remove": True}, FieldResult.remove()),
        ({"remove": False}, FieldResult.replace(REDACTED)),
    ],
)
async def test_every_value_gets_the_same_result(
    env: Env, options: dict[str, object], expected: FieldResult
) -> None:
    results = await run(create_action("redact", options), env.ctx(), *ANY_VALUES)
    assert results == [expected] * len(ANY_VALUES)
    assert all(type(r.value) is type(expected.value) for r in results)


async def test_nothing_of_the_value_survives(env: Env) -> None:
    [result] = await run(create_action("redact", {}), env.ctx(), "123-45-6789")
    assert result.outcome is Outcome.REPLACE
    assert "6789" not in repr(result)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"remove": True, "replacement": "x"},
            "'replacement' and 'remove: true' exclude each other",
        ),
        ({"remove": "yes"}, "option 'remove'"),
        ({"replacement": ["a"]}, "option 'replacement"),
        ({"with": "x"}, "option 'with': Extra inputs are not permitted"),
    ],
)
def test_bad_options_are_load_errors(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=r"^redact: ") as caught:
        create_action("redact", options)
    assert message in str(caught.value)
