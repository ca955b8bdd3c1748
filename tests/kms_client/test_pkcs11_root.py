"""Pkcs11RootKey against a real SoftHSM2 token: KWK lifecycle, wrong roots, clear errors."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pkcs11
import pytest
from pkcs11 import Attribute, KeyType, ObjectClass

from kms_client import pkcs11_session
from kms_client.errors import RootAuthError, RootError, RootUnavailable, WrongRoot
from kms_client.pkcs11_root import Pkcs11RootConfig, Pkcs11RootKey
from kms_client.root import RootBackend
from tests.kms_client.conftest import SoftHsm
from tokengate.errors import ConfigError

MECHANISMS = ["aes-gcm", "aes-key-wrap-pad"]
PIN_ENV = "TG_TEST_HSM_PIN"

Factory = Callable[..., Awaitable[Pkcs11RootKey]]


@pytest.fixture
def key_label() -> str:
    return f"root-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def make_root(softhsm: SoftHsm) -> AsyncIterator[Factory]:
    """Open roots on the worker's SoftHSM2; every root is closed after the test."""
    opened: list[Pkcs11RootKey] = []

    async def make(
        key: str,
        *,
        token: str = "tg-main",
        mechanism: str = "aes-gcm",
        create: bool = False,
        pin: str | None = None,
    ) -> Pkcs11RootKey:
        config = Pkcs11RootConfig.from_uri(softhsm.uri(token=token, key=key, mechanism=mechanism))
        env = {PIN_ENV: softhsm.pin if pin is None else pin}
        root = Pkcs11RootKey(config, create_root=create, environ=env)
        await root.open()
        opened.append(root)
        return root

    yield make
    for root in opened:
        await root.close()


async def on_token[T](softhsm: SoftHsm, token: str, fn: Callable[[pkcs11.Session], T]) -> T:
    """Run ``fn`` on the process's logged-in session of ``token`` (as the root does)."""
    link = await asyncio.to_thread(pkcs11_session.acquire, softhsm.module, token, softhsm.pin)
    try:
        return await asyncio.get_running_loop().run_in_executor(link.executor, fn, link.session)
    finally:
        await asyncio.to_thread(pkcs11_session.release, link)


def data_objects(label: str) -> Callable[[pkcs11.Session], list[bytes]]:
    def find(session: pkcs11.Session) -> list[bytes]:
        query = {Attribute.CLASS: ObjectClass.DATA, Attribute.LABEL: label}
        return [bytes(o[Attribute.VALUE]) for o in session.get_objects(query)]

    return find


@pytest.mark.parametrize("mechanism", MECHANISMS)
async def test_create_open_destroy_round_trip(
    make_root: Factory, softhsm: SoftHsm, key_label: str, mechanism: str
) -> None:
    root = await make_root(key_label, mechanism=mechanism, create=True)
    backend: RootBackend = root  # mypy checks the protocol
    assert backend is root
    kwk, ref = await root.create_kwk(1)
    assert len(kwk) == 32
    assert kwk not in ref
    assert await root.open_kwk(1, ref) == kwk
    kwk2, ref2 = await root.create_kwk(2)
    assert kwk2 != kwk
    # A fresh instance (another process at unseal) opens the same KWK.
    again = await make_root(key_label, mechanism=mechanism)
    assert await again.open_kwk(1, ref) == kwk
    stored = await on_token(softhsm, "tg-main", data_objects(f"{key_label}-kwk-1"))
    assert len(stored) == 1
    assert kwk not in stored[0]

    await root.destroy_kwk(1, ref)
    assert await on_token(softhsm, "tg-main", data_objects(f"{key_label}-kwk-1")) == []
    with pytest.raises(WrongRoot, match="destroyed"):
        await again.open_kwk(1, ref)
    with pytest.raises(WrongRoot, match="destroyed"):
        await root.open_kwk(1, ref)
    await root.destroy_kwk(1, ref)  # idempotent
    assert await root.open_kwk(2, ref2) == kwk2


async def test_reference_names_label_root_and_digest_only(
    make_root: Factory, key_label: str
) -> None:
    root = await make_root(key_label, create=True)
    kwk, ref = await root.create_kwk(7)
    doc = json.loads(ref)
    assert doc["scheme"] == "pkcs11"
    assert doc["label"] == f"{key_label}-kwk-7"
    assert set(doc) == {"format", "scheme", "label", "root-id", "object-sha256"}
    assert kwk.hex() not in ref.decode()


async def test_existing_version_is_not_overwritten(make_root: Factory, key_label: str) -> None:
    root = await make_root(key_label, create=True)
    kwk, ref = await root.create_kwk(1)
    with pytest.raises(RootError, match="already exists"):
        await root.create_kwk(1)
    assert await root.open_kwk(1, ref) == kwk


async def test_missing_root_key_is_an_error(make_root: Factory, key_label: str) -> None:
    with pytest.raises(WrongRoot, match=f"no root key '{key_label}' in token 'tg-main'"):
        await make_root(key_label)


async def test_missing_root_key_created_when_allowed(make_root: Factory, key_label: str) -> None:
    root = await make_root(key_label, create=True)
    kwk, ref = await root.create_kwk(0)
    assert await root.open_kwk(0, ref) == kwk


async def test_wrong_pin(make_root: Factory, key_label: str) -> None:
    with pytest.raises(RootAuthError, match="wrong pin for token 'tg-lockable'") as info:
        await make_root(key_label, token="tg-lockable", pin="0000-wrong", create=True)
    assert "0000-wrong" not in str(info.value)


async def test_right_pin_on_the_same_token(make_root: Factory, key_label: str) -> None:
    root = await make_root(key_label, token="tg-lockable", create=True)
    assert len(await root.random(16)) == 16


async def test_wrong_pin_cannot_join_an_existing_login(
    make_root: Factory, softhsm: SoftHsm, key_label: str
) -> None:
    await make_root(key_label, create=True)
    with pytest.raises(RootAuthError, match="wrong pin"):
        await make_root(key_label, pin="0000-wrong")


async def test_pin_variable_unset(softhsm: SoftHsm, key_label: str) -> None:
    root = Pkcs11RootKey(Pkcs11RootConfig.from_uri(softhsm.uri(key=key_label)), environ={})
    with pytest.raises(RootAuthError, match=f"pin variable {PIN_ENV} is not set"):
        await root.open()


async def test_missing_token(make_root: Factory, key_label: str) -> None:
    with pytest.raises(RootUnavailable, match="no token 'tg-absent'"):
        await make_root(key_label, token="tg-absent", create=True)


async def test_missing_module(key_label: str) -> None:
    uri = f"pkcs11:token=tg-main;object={key_label}?module-path=/nonexistent/libp11.so"
    root = Pkcs11RootKey(Pkcs11RootConfig.from_uri(uri), environ={"TOKENGATE_HSM_PIN": "x"})
    with pytest.raises(RootUnavailable, match=r"cannot load module /nonexistent/libp11\.so"):
        await root.open()


async def test_kwk_of_one_root_does_not_open_under_another(
    make_root: Factory, key_label: str
) -> None:
    a = await make_root(key_label, create=True)
    b = await make_root(key_label + "-b", create=True)
    _, ref = await a.create_kwk(1)
    with pytest.raises(WrongRoot, match="reference is for another root"):
        await b.open_kwk(1, ref)
    with pytest.raises(WrongRoot, match="reference is for another root"):
        await b.destroy_kwk(1, ref)


async def test_same_label_in_another_token_is_another_root(
    make_root: Factory, key_label: str
) -> None:
    a = await make_root(key_label, create=True)
    b = await make_root(key_label, token="tg-other", create=True)
    _, ref = await a.create_kwk(1)
    with pytest.raises(WrongRoot, match="reference is for another root"):
        await b.open_kwk(1, ref)


@pytest.mark.parametrize("mechanism", MECHANISMS)
async def test_blob_wrapped_by_one_root_fails_to_unwrap_under_another(
    make_root: Factory, softhsm: SoftHsm, key_label: str, mechanism: str
) -> None:
    # Plant root A's wrapped blob under root B's label with a matching reference:
    # only the cryptography can refuse it now.
    a = await make_root(key_label, mechanism=mechanism, create=True)
    b = await make_root(key_label + "-b", mechanism=mechanism, create=True)
    _, ref_a = await a.create_kwk(1)
    _, ref_b = await b.create_kwk(2)
    [blob] = await on_token(softhsm, "tg-main", data_objects(f"{key_label}-kwk-1"))

    def plant(session: pkcs11.Session) -> None:
        session.create_object(
            {
                Attribute.CLASS: ObjectClass.DATA,
                Attribute.TOKEN: True,
                Attribute.PRIVATE: True,
                Attribute.LABEL: f"{key_label}-b-kwk-1",
                Attribute.APPLICATION: "tokengate",
                Attribute.VALUE: blob,
            }
        )

    await on_token(softhsm, "tg-main", plant)
    forged = json.loads(ref_b)
    forged["label"] = f"{key_label}-b-kwk-1"
    forged["object-sha256"] = json.loads(ref_a)["object-sha256"]
    forged_ref = json.dumps(forged).encode()
    with pytest.raises(WrongRoot, match="does not unwrap under this root"):
        await b.open_kwk(1, forged_ref)


async def test_tampered_reference_digest_refused_and_nothing_destroyed(
    make_root: Factory, softhsm: SoftHsm, key_label: str
) -> None:
    root = await make_root(key_label, create=True)
    kwk, ref = await root.create_kwk(1)
    doc = json.loads(ref)
    doc["object-sha256"] = "00" * 32
    bad = json.dumps(doc).encode()
    with pytest.raises(WrongRoot, match="does not match its reference"):
        await root.open_kwk(1, bad)
    with pytest.raises(WrongRoot, match="does not match its reference"):
        await root.destroy_kwk(1, bad)
    assert await root.open_kwk(1, ref) == kwk


@pytest.mark.parametrize("reference", [b"", b"not json", b"[]", b'{"scheme":"aws-kms"}'])
async def test_garbage_reference_refused(
    make_root: Factory, key_label: str, reference: bytes
) -> None:
    root = await make_root(key_label, create=True)
    with pytest.raises(WrongRoot, match="another root"):
        await root.open_kwk(1, reference)


async def test_version_in_reference_must_match(make_root: Factory, key_label: str) -> None:
    root = await make_root(key_label, create=True)
    _, ref = await root.create_kwk(1)
    with pytest.raises(WrongRoot, match="another root"):
        await root.open_kwk(2, ref)


async def test_mechanism_must_fit_the_root(make_root: Factory, key_label: str) -> None:
    await make_root(key_label, mechanism="aes-gcm", create=True)
    with pytest.raises(RootError, match="does not allow aes-key-wrap-pad"):
        await make_root(key_label, mechanism="aes-key-wrap-pad")


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ({Attribute.EXTRACTABLE: True}, "sensitive and unextractable"),
        ({Attribute.SENSITIVE: False}, "sensitive and unextractable"),
        ({Attribute.WRAP: True, Attribute.UNWRAP: True}, "both decrypt and unwrap"),
    ],
)
async def test_unsafe_root_keys_refused(
    make_root: Factory,
    softhsm: SoftHsm,
    key_label: str,
    template: dict[Attribute, bool],
    message: str,
) -> None:
    base = {
        Attribute.SENSITIVE: True,
        Attribute.EXTRACTABLE: False,
        Attribute.ENCRYPT: True,
        Attribute.DECRYPT: True,
        Attribute.WRAP: False,
        Attribute.UNWRAP: False,
    }

    def make_key(session: pkcs11.Session) -> None:
        session.generate_key(
            KeyType.AES, 256, label=key_label, store=True, template=base | template
        )

    await on_token(softhsm, "tg-main", make_key)
    with pytest.raises(RootError, match=message):
        await make_root(key_label)


async def test_operator_made_root_is_accepted(
    make_root: Factory, softhsm: SoftHsm, key_label: str
) -> None:
    def make_key(session: pkcs11.Session) -> None:
        session.generate_key(
            KeyType.AES,
            256,
            label=key_label,
            store=True,
            template={
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
                Attribute.WRAP: True,
                Attribute.UNWRAP: True,
                Attribute.ENCRYPT: False,
                Attribute.DECRYPT: False,
            },
        )

    await on_token(softhsm, "tg-main", make_key)
    root = await make_root(key_label, mechanism="aes-key-wrap-pad")
    kwk, ref = await root.create_kwk(1)
    assert await root.open_kwk(1, ref) == kwk


async def test_random_from_the_token(make_root: Factory, key_label: str) -> None:
    root = await make_root(key_label, create=True)
    a, b = await root.random(32), await root.random(32)
    assert len(a) == len(b) == 32
    assert a != b
    with pytest.raises(ValueError, match="random length"):
        await root.random(0)


async def test_calls_before_open_fail(softhsm: SoftHsm, key_label: str) -> None:
    root = Pkcs11RootKey.from_uri(softhsm.uri(key=key_label))
    with pytest.raises(RootUnavailable, match="not open"):
        await root.create_kwk(1)
    with pytest.raises(RootUnavailable, match="not open"):
        await root.open_kwk(1, b"{}")
    await root.close()


async def test_closing_one_root_keeps_the_other_logged_in(
    make_root: Factory, key_label: str
) -> None:
    a = await make_root(key_label, create=True)
    b = await make_root(key_label)
    kwk, ref = await a.create_kwk(1)
    await a.close()
    await a.close()
    assert await b.open_kwk(1, ref) == kwk
    with pytest.raises(RootUnavailable, match="not open"):
        await a.open_kwk(1, ref)


async def test_description_is_safe(make_root: Factory, softhsm: SoftHsm, key_label: str) -> None:
    root = await make_root(key_label, create=True)
    assert root.description == f"pkcs11:token=tg-main;object={key_label}?mechanism=aes-gcm"
    assert softhsm.pin not in root.description


async def test_concurrent_calls_are_serialized_safely(make_root: Factory, key_label: str) -> None:
    root = await make_root(key_label, create=True)
    made = await asyncio.gather(*(root.create_kwk(v) for v in range(1, 9)))
    opened = await asyncio.gather(*(root.open_kwk(v, ref) for v, (_, ref) in enumerate(made, 1)))
    assert opened == [kwk for kwk, _ in made]
    assert len(set(opened)) == 8


URI_OK = [
    (
        "pkcs11:token=tg;object=k?module-path=/m.so",
        Pkcs11RootConfig("/m.so", "tg", "k", "TOKENGATE_HSM_PIN", "aes-gcm"),
    ),
    (
        "pkcs11:token=my%20token;type=secret-key?module-path=/m.so&pin-env=P&mechanism=aes-key-wrap-pad",
        Pkcs11RootConfig("/m.so", "my token", "tokengate-root", "P", "aes-key-wrap-pad"),
    ),
]

URI_BAD = [
    ("pkcs11x:token=t?module-path=/m.so", "must start with"),
    ("pkcs11:object=k?module-path=/m.so", "needs 'token'"),
    ("pkcs11:token=t", "needs 'module-path'"),
    ("pkcs11:token=t?module-path=/m.so&pin-value=1234", "pin-value is refused"),
    ("pkcs11:token=t;token=u?module-path=/m.so", "given twice"),
    ("pkcs11:token=t;slot-id=1?module-path=/m.so", "'slot-id' is not supported"),
    ("pkcs11:token=t?module-path=/m.so&mechanism=aes-cbc", "mechanism must be"),
    ("pkcs11:token=t;type=private?module-path=/m.so", "type must be"),
    ("pkcs11:token?module-path=/m.so", "'token' is not supported"),
]


@pytest.mark.parametrize(("uri", "expected"), URI_OK)
def test_uri_parses(uri: str, expected: Pkcs11RootConfig) -> None:
    assert Pkcs11RootConfig.from_uri(uri) == expected


@pytest.mark.parametrize(("uri", "message"), URI_BAD)
def test_uri_refused(uri: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        Pkcs11RootConfig.from_uri(uri)
    assert "1234" not in str(info.value)
