"""proxy.teesetup: the sim key, the verification settings, opening no pool or refusing a bad one.

Opening a real pool against a running KMS and workers is tests/e2e/test_tee_flow.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from proxy.teeconfig import TeeConfig
from proxy.teesetup import load_sim_key, open_tee, verification_of
from tee.sim import KEY_FILE, load_or_create_key
from tests.tee.pool_support import RecordingAuditor
from tokengate.errors import ConfigError


def config(**extra: object) -> TeeConfig:
    return TeeConfig.model_validate(
        {
            "kms": {"url": "http://127.0.0.1:1", "credential_file": "kms.credential"},
            "workers": [{"id": "tee-1", "address": "unix:/nonexistent/w.sock"}],
            **extra,
        }
    )


def test_the_sim_key_loads_from_the_private_or_the_public_pem(tmp_path: Path) -> None:
    private = load_or_create_key(tmp_path)
    raw = private.public_key().public_bytes_raw()
    assert load_sim_key(tmp_path / KEY_FILE).public_bytes_raw() == raw
    public = tmp_path / "sim.pub"
    public.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    assert load_sim_key(public).public_bytes_raw() == raw


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        (b"not a key", "is not a PEM key"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "is not a PEM key"),
        ("ec", "is not an Ed25519 key"),
    ],
    ids=["missing", "garbage", "bad-pem", "other-curve"],
)
def test_a_bad_sim_key_is_a_config_error(
    tmp_path: Path, content: bytes | str | None, message: str
) -> None:
    path = tmp_path / "sim.key"
    if content == "ec":
        key = generate_private_key(SECP256R1())
        content = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    if isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=f"tee.sim_key: .*{message}"):
        load_sim_key(path)


def test_the_sim_key_is_only_read_when_the_simulated_tee_is_allowed(tmp_path: Path) -> None:
    off = verification_of(config(), tmp_path)  # no key file: not needed, not read
    assert off.insecure_simulated_tee is False
    assert off.sim_key is None
    key = Ed25519PrivateKey.generate()
    (tmp_path / "tee").mkdir()
    (tmp_path / KEY_FILE).write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    on = verification_of(config(insecure_simulated_tee=True), tmp_path)  # relative: data dir
    assert on.insecure_simulated_tee is True
    assert on.sim_key is not None
    assert on.sim_key.public_bytes_raw() == key.public_key().public_bytes_raw()


async def test_no_section_opens_no_pool(tmp_path: Path) -> None:
    async with open_tee(None, data_dir=tmp_path, audit=RecordingAuditor()) as tee:
        assert tee is None


async def test_a_missing_kms_credential_stops_start_up(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="credential file"):
        async with open_tee(config(), data_dir=tmp_path, audit=RecordingAuditor()):
            pass
