"""The action registry: the explicit built-ins, new instances per rule, unknown names."""

from __future__ import annotations

import re

import pytest

from plugins.registry import (
    BUILTIN_ACTIONS,
    action_names,
    action_table,
    authorizer_names,
    create_action,
)
from tests.plugins.support import SSN

OPTIONS: dict[str, dict[str, object]] = {
    "tokenize": {"class": SSN},
    "detokenize": {"class": SSN, "allow": {"owner": True}},
    "redact": {},
    "mask": {"pattern": "{last4}"},
    "hash": {},
    "tee": {"job": "card_check", "accept": ["valid"], "class": SSN},
}


def test_the_built_ins_are_listed_explicitly() -> None:
    names = [cls.name for cls in BUILTIN_ACTIONS]
    assert names == ["tokenize", "detokenize", "redact", "mask", "hash", "tee"]
    assert action_names() == frozenset(names)  # nothing third-party in this environment
    assert authorizer_names() == frozenset()
    assert all(action_table()[n].source.startswith("built-in plugins.") for n in names)


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_every_rule_gets_a_new_configured_instance(name: str) -> None:
    one, two = create_action(name, OPTIONS[name]), create_action(name, OPTIONS[name])
    assert one is not two
    assert type(one).name == name


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        (
            "upper",
            {},
            "unknown action 'upper' (known: detokenize, hash, mask, redact, tee, tokenize)",
        ),
        ("", {}, "unknown action ''"),
        ("Mask", {"pattern": "x"}, "unknown action 'Mask'"),
        ("mask", {}, "mask: needs 'pattern' or a class with a mask"),
        ("tokenize", {"class": SSN, "owner": "x"}, "tokenize: option 'owner'"),
    ],
)
def test_unknown_names_and_bad_options_are_value_errors(
    name: str, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)) as caught:
        create_action(name, options)
    assert str(caught.value).startswith(message)
