"""API keys: shape, digest, constant-time table lookup, role order; and the config section."""

from __future__ import annotations

import base64
import hashlib

import pytest
from pydantic import ValidationError

from proxy.adminapi.config import AdminApiConfig
from proxy.adminapi.keys import ApiKey, KeyTable, Role, is_api_key, key_digest, new_api_key


def test_new_key_is_prefixed_unpadded_base32_of_32_random_bytes() -> None:
    key = new_api_key()
    assert key.startswith("tga_")
    assert len(key) == 4 + 52
    raw = base64.b32decode(key[4:].upper() + "====")
    assert len(raw) == 32
    assert is_api_key(key)
    assert len({new_api_key() for _ in range(64)}) == 64


@pytest.mark.parametrize(
    "value",
    ["", "tga_", "tgb_" + "a" * 52, "tga_" + "a" * 51, "tga_" + "a" * 53, "tga_" + "A" * 52,
     "tga_" + "1" * 52, "tga_" + "a" * 52 + "\n", " tga_" + "a" * 52],
)  # fmt: skip
def test_malformed_keys_are_not_keys(value: str) -> None:
    assert not is_api_key(value)


def test_digest_is_hex_sha256_of_the_key() -> None:
    key = new_api_key()
    assert key_digest(key) == hashlib.sha256(key.encode()).hexdigest()


def test_table_finds_each_key_and_only_it() -> None:
    keys = [new_api_key() for _ in range(5)]
    table = KeyTable(ApiKey(f"k{i}", Role.AUDITOR, key_digest(k)) for i, k in enumerate(keys))
    assert len(table) == 5
    for i, k in enumerate(keys):
        found = table.lookup(k)
        assert found is not None
        assert found.name == f"k{i}"
    assert table.lookup(new_api_key()) is None
    assert table.lookup(keys[0][:-1] + ("a" if keys[0][-1] != "a" else "b")) is None
    assert table.lookup("\udcff") is None  # lone surrogates hash too, and match nothing


def test_empty_table_matches_nothing() -> None:
    assert KeyTable([]).lookup(new_api_key()) is None


@pytest.mark.parametrize(
    ("role", "required", "allowed"),
    [
        (Role.AUDITOR, Role.AUDITOR, True),
        (Role.AUDITOR, Role.OPERATOR, False),
        (Role.AUDITOR, Role.ADMIN, False),
        (Role.OPERATOR, Role.AUDITOR, True),
        (Role.OPERATOR, Role.OPERATOR, True),
        (Role.OPERATOR, Role.ADMIN, False),
        (Role.ADMIN, Role.AUDITOR, True),
        (Role.ADMIN, Role.OPERATOR, True),
        (Role.ADMIN, Role.ADMIN, True),
    ],
)
def test_roles_include_every_weaker_role(role: Role, required: Role, allowed: bool) -> None:
    assert role.allows(required) is allowed


def _entry(name: str = "alice", role: str = "admin", sha256: str | None = None) -> dict[str, str]:
    return {"name": name, "role": role, "sha256": sha256 or key_digest(new_api_key())}


def test_config_builds_the_table() -> None:
    key = new_api_key()
    cfg = AdminApiConfig.model_validate(
        {"keys": [_entry("ci-deploy", "operator", key_digest(key)), _entry("bob", "auditor")]}
    )
    assert cfg.enabled
    found = cfg.key_table().lookup(key)
    assert found == ApiKey("ci-deploy", Role.OPERATOR, key_digest(key))


def test_config_defaults_to_enabled_without_keys() -> None:
    cfg = AdminApiConfig()
    assert cfg.enabled
    assert cfg.keys == []
    assert len(cfg.key_table()) == 0


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ([_entry("a"), _entry("a")], "two keys have the same name"),
        ([_entry("a", sha256="0" * 64), _entry("b", sha256="0" * 64)], "listed twice"),
        ([_entry(role="root")], "role"),
        ([_entry(sha256="A" * 64)], "sha256"),
        ([_entry(sha256="0" * 63)], "sha256"),
        ([_entry(name="Alice")], "name"),
        ([_entry(name="")], "name"),
        ([{**_entry(), "key": "tga_x"}], "Extra inputs"),
    ],
)
def test_config_refuses(keys: list[dict[str, str]], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AdminApiConfig.model_validate({"keys": keys})


def test_config_refuses_unknown_section_fields() -> None:
    with pytest.raises(ValidationError, match="Extra inputs"):
        AdminApiConfig.model_validate({"keys": [], "allow_unauthenticated": True})
