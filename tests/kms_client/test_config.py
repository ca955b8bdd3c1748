"""KeysConfig: defaults, per-purpose settings, and the refusals with their YAML paths."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from kms_client.config import BUILTIN_PURPOSES, MAX_NONCE_ENCRYPTIONS, KeysConfig
from kms_client.keyring import KeyKind


def test_defaults_cover_every_builtin_purpose() -> None:
    settings = KeysConfig().purpose_settings()
    assert set(BUILTIN_PURPOSES) <= set(settings)
    assert settings["tokenize"].kind is KeyKind.AEAD
    assert settings["session-signing"].max_age == timedelta(days=30)
    for prf in ("index", "convergent", "hash"):
        assert settings[prf].kind is KeyKind.PRF
        assert settings[prf].max_age is None
        assert settings[prf].rotate_after_encryptions is None


def test_every_field_has_a_description_and_default() -> None:
    for name, field in KeysConfig.model_fields.items():
        assert field.description, name
        assert not field.is_required(), name


def test_overrides_and_custom_purposes() -> None:
    cfg = KeysConfig.model_validate(
        {
            "purposes": {
                "tokenize": {"max_age_days": 7, "rotate_after_encryptions": 1000},
                "webhook-secrets": {"kind": "aead"},
                "partner-signing": {"kind": "signing", "max_age_days": 10},
                "mfa-secrets": {"never_rotate": True},
            }
        }
    )
    s = cfg.purpose_settings()
    assert s["tokenize"].max_age == timedelta(days=7)
    assert s["tokenize"].rotate_after_encryptions == 1000
    assert s["webhook-secrets"].rotate_after_encryptions == MAX_NONCE_ENCRYPTIONS // 2
    assert s["partner-signing"].kind is KeyKind.SIGNING
    assert s["mfa-secrets"].max_age is None
    assert s["mfa-secrets"].rotate_after_encryptions is None


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"purposes": {"index": {"max_age_days": 30}}}, "purposes.index: prf keys"),
        ({"purposes": {"hash": {"rotate_after_encryptions": 5}}}, "purposes.hash: prf keys"),
        ({"purposes": {"custom": {}}}, "purposes.custom: a custom purpose must set 'kind'"),
        ({"purposes": {"tokenize": {"kind": "signing"}}}, "built-in purpose is 'aead'"),
        (
            {"purposes": {"upstream-signing": {"rotate_after_encryptions": 5}}},
            "signing keys do not encrypt",
        ),
        ({"purposes": {"Bad_Name": {"kind": "aead"}}}, "purpose names are lowercase"),
        ({"purposes": {"tokenize": {"max_age_days": 0}}}, "greater than or equal to 1"),
        ({"purposes": {"tokenize": {"rotate_after_encryptions": 2**40}}}, "less than or equal"),
        ({"keyring_name": "has space"}, "keyring_name"),
        ({"refresh_interval": 0}, "refresh_interval"),
        ({"unknown": 1}, "Extra inputs are not permitted"),
        ({"purposes": {"tokenize": {"typo": 1}}}, "Extra inputs are not permitted"),
    ],
)
def test_refusals(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        KeysConfig.model_validate(doc)
