"""hash through the real registry and keyring: format, known answers, versions, separation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

import pytest

from kms_client.manager import KeyManager
from plugins.base import Outcome, Scalar
from plugins.hash import hash_input
from plugins.registry import create_action
from tests.plugins.support import EMAIL, SSN, Env, replaced, run

FORMAT = re.compile(r"^h1_(\d+)_([a-z2-7]{52})$")


def test_the_hmac_input_is_length_framed() -> None:
    assert hash_input("ssn", "acme", "1") == (
        b"\x00\x00\x00\x11tokengate/hash/v1\x00\x00\x00\x03ssn\x00\x00\x00\x04acme\x00\x00\x00\x011"
    )
    # framing keeps the boundaries: moving bytes between parts changes the input
    assert hash_input("ss", "nacme", "1") != hash_input("ssn", "acme", "1")


async def test_the_output_is_the_keyed_hmac_of_the_primary_version(
    env: Env, keys: KeyManager
) -> None:
    [out] = replaced(await run(create_action("hash", {"class": SSN}), env.ctx(), "123-45-6789"))
    match = FORMAT.match(str(out))
    assert match is not None
    assert int(match.group(1)) == keys.primary_version("hash") == 1
    expected = keys.hmac("hash", hash_input("ssn", "acme", "123-45-6789"), version=1).digest
    assert base64.b32decode(match.group(2).upper() + "====") == expected
    # not an unkeyed hash of the value
    unkeyed = hashlib.sha256(b"123-45-6789").digest()
    assert expected != unkeyed
    assert expected != hmac.new(b"", b"123-45-6789", "sha256").digest()


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        (("ssn", "acme", "123-45-6789"), ("ssn", "acme", "123-45-6789"), True),
        (("ssn", "acme", "123-45-6789"), ("ssn", "acme", "123-45-6780"), False),
        (("ssn", "acme", "123-45-6789"), ("email", "acme", "123-45-6789"), False),
        (("ssn", "acme", "123-45-6789"), ("ssn", "globex", "123-45-6789"), False),
        (("ssn", "acme", 42), ("ssn", "acme", "42"), True),  # integers hash as their text
    ],
)
async def test_equality_leaks_only_within_class_and_tenant(
    env: Env, a: tuple[str, str, Scalar], b: tuple[str, str, Scalar], equal: bool
) -> None:
    classes = {"ssn": SSN, "email": EMAIL}

    async def one(cls: str, tenant: str, value: Scalar) -> Scalar:
        action = create_action("hash", {"class": classes[cls]})
        [out] = replaced(await run(action, env.ctx(tenant=tenant), value))
        return out

    assert (await one(*a) == await one(*b)) is equal


async def test_a_new_key_version_is_explicit_and_breaks_equality(
    env: Env, keys: KeyManager
) -> None:
    action = create_action("hash", {})
    [old] = replaced(await run(action, env.ctx(), "x"))
    await keys.rotate("hash", actor="test")
    [new] = replaced(await run(action, env.ctx(), "x"))
    assert str(old).startswith("h1_1_")
    assert str(new).startswith("h1_2_")
    assert old != new


@pytest.mark.parametrize(
    ("value", "outcome", "shown"),
    [
        (None, Outcome.REPLACE, None),
        ("", Outcome.REPLACE, ""),
        (1.5, Outcome.INVALID, None),
        (True, Outcome.INVALID, None),
    ],
)
async def test_null_empty_and_non_text(
    env: Env, value: Scalar, outcome: Outcome, shown: Scalar
) -> None:
    [result] = await run(create_action("hash", {}), env.ctx(), value)
    assert (result.outcome, result.value) == (outcome, shown)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"class": "ssn"}, "hash: option 'class': must name a field class"),
        ({"key": "mine"}, "hash: option 'key': Extra inputs are not permitted"),
    ],
)
def test_bad_options_are_load_errors(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        create_action("hash", options)
