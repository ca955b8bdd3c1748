"""mask through the real registry: patterns, the reveal limit, options."""

from __future__ import annotations

import pytest

from plugins.base import Outcome, Scalar
from plugins.mask import MIN_HIDDEN, MaskPattern
from plugins.registry import create_action
from tests.plugins.support import CARD, EMAIL, SSN, Env, replaced, run


@pytest.mark.parametrize(
    ("pattern", "value", "shown"),
    [
        ("***-**-{last4}", "123-45-6789", "***-**-6789"),
        ("***-**-{last4}", "123456789", "***-**-6789"),  # separators do not count
        ("***-**-{last4}", 123456789, "***-**-6789"),  # integers: decimal text
        ("{first6}******{last4}", "4111 1111 1111 1234", "411111******1234"),
        ("{first1}***@***", "alice@example.com", "a***@***"),
        ("{last2}", "abcdef", "ef"),
        ("fixed", "anything at all", "fixed"),
        # fewer than MIN_HIDDEN characters would stay hidden: nothing of the value shows
        ("***-**-{last4}", "12345678", "***-**-5678"),  # 4 hidden: still fine
        ("***-**-{last4}", "1234567", "***-**-****"),  # 3 hidden: nothing shows
        ("{last4}", "12", "****"),  # shorter than asked: never the whole value
        ("{first6}******{last4}", "4111-1111-1234", "*" * 16),
        ("{first1}{last1}", "ab", "**"),
    ],
)
async def test_patterns(env: Env, pattern: str, value: Scalar, shown: str) -> None:
    action = create_action("mask", {"pattern": pattern})
    assert replaced(await run(action, env.ctx(), value)) == [shown]


@pytest.mark.parametrize("length", range(0, 20))
def test_the_output_length_depends_on_the_pattern_only(length: int) -> None:
    pattern = MaskPattern("{first2}-{last3}")
    assert len(pattern.render("9" * length)) == len("xx-xxx")
    shown = sum(c not in {"*", "-"} for c in pattern.render("9" * length))
    assert shown == (5 if length - 5 >= MIN_HIDDEN else 0)


@pytest.mark.parametrize(
    ("cls", "value", "shown"),
    [(SSN, "123-45-6789", "***-**-6789"), (CARD, "4111111111111234", "411111******1234")],
)
async def test_the_class_mask_is_the_default(env: Env, cls: object, value: str, shown: str) -> None:
    action = create_action("mask", {"class": cls})
    assert replaced(await run(action, env.ctx(), value)) == [shown]
    override = create_action("mask", {"class": cls, "pattern": "#{last1}"})
    assert replaced(await run(override, env.ctx(), value)) == ["#" + value[-1]]


@pytest.mark.parametrize(
    ("value", "outcome", "shown"),
    [
        (None, Outcome.REPLACE, None),
        ("", Outcome.REPLACE, ""),
        (1.25, Outcome.INVALID, None),
        (False, Outcome.INVALID, None),
    ],
)
async def test_null_empty_and_non_text(
    env: Env, value: Scalar, outcome: Outcome, shown: Scalar
) -> None:
    [result] = await run(create_action("mask", {"pattern": "{last4}"}), env.ctx(), value)
    assert (result.outcome, result.value) == (outcome, shown)


async def test_batches_keep_their_order(env: Env) -> None:
    action = create_action("mask", {"pattern": "*{last1}"})
    assert replaced(await run(action, env.ctx(), "aaaaa1", None, "bbbbb2", "")) == [
        "*1",
        None,
        "*2",
        "",
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "mask: needs 'pattern' or a class with a mask"),
        ({"class": EMAIL}, "mask: needs 'pattern' or a class with a mask"),
        ({"pattern": ""}, "mask: option 'pattern': mask pattern is empty"),
        ({"pattern": "{last0}"}, "must reveal 1 to 32"),
        ({"pattern": "{last33}"}, "must reveal 1 to 32"),
        ({"pattern": "{middle4}"}, "only {firstN} and {lastN} placeholders"),
        ({"pattern": "{last4"}, "only {firstN} and {lastN} placeholders"),
        ({"pattern": "a}b"}, "only {firstN} and {lastN} placeholders"),
        ({"pattern": 4}, "option 'pattern': Input should be a valid string"),
        ({"pattern": "x", "replace": "y"}, "option 'replace': Extra inputs are not permitted"),
        ({"class": "ssn", "pattern": "x"}, "option 'class': must name a field class"),
    ],
)
def test_bad_options_are_load_errors(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=r"^mask: ") as caught:
        create_action("mask", options)
    assert message.removeprefix("mask: ") in str(caught.value)
